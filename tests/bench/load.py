"""Load test: Mosaic's thumbnail hit path against nginx serving the same file, in one run.

Each app run is set against nginx measured just before it, as the machine's
speed drifts within a minute. For the default server the hit and the 304 runs
alternate, so target 2 (a 304 at least as fast as a hit) is also read off the
two runs of each repeat, back to back.

Hypothesis: with the memory tier, the token memory, the SQLite access index
and hits answered before routing, an authenticated, authorized hit costs a
few tens of microseconds of Python, so the app reaches a sizeable fraction
of nginx's static-file rate on the same machine, and a 304 is no slower.

Run: make bench  (or: uv run python -m tests.bench.load [--seconds 8])
Needs nginx and wrk (make bench installs them with apt). Everything listens
on 127.0.0.1 and every run is bounded in time; wrk shares the 2 cores.
"""

import argparse
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from PIL import Image

from tests.live_server import LiveServer, cpu_seconds, free_port, server_processes

PASSWORD = "load-test-password"
CONNECTIONS = 64


@dataclass
class Result:
    name: str
    requests_per_second: float
    non_2xx: int
    nginx: float = 0.0  # nginx's req/s measured just before this run
    # The server's CPU time per request (every process and thread), in microseconds:
    # steadier than req/s on a machine whose speed drifts, as work is counted, not time.
    cpu_us: float = 0.0
    nginx_cpu_us: float = 0.0
    # With repeats: every pair's ratio to nginx, lowest first (this one is the median),
    # and the app's CPU per request in each of those pairs.
    ratios: list[float] = field(default_factory=list)
    pair_cpu_us: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.requests_per_second / self.nginx


def wrk(name: str, url: str, seconds: int, headers: dict[str, str], server: int) -> Result:
    """One wrk run against the server whose process tree starts at `server`."""
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
    for key, value in headers.items():
        command += ["-H", f"{key}: {value}"]
    pids = server_processes(server)
    before = cpu_seconds(pids)
    out = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=seconds + 30
    ).stdout
    used = cpu_seconds(pids) - before
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if rate is None or count is None:
        raise RuntimeError(f"wrk failed for {name}:\n{out}")
    return Result(
        name,
        float(rate.group(1)),
        int(errors.group(1)) if errors else 0,
        cpu_us=used / max(int(count.group(1)), 1) * 1e6,
    )


def photo() -> bytes:
    """12 MP with detail that survives downscaling: a medium thumbnail of about 20 KB."""
    detail = Image.effect_noise((900, 675), 70).convert("RGB")
    image = detail.resize((4000, 3000), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


class Nginx:
    def __init__(self, root: Path, work: Path) -> None:
        self.port = free_port()
        conf = work / "nginx.conf"
        conf.write_text(
            f"""
worker_processes 2;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path {work}/body;
  proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fastcgi;
  uwsgi_temp_path {work}/uwsgi;
  scgi_temp_path {work}/scgi;
  server {{
    listen 127.0.0.1:{self.port};
    root {root};
    location / {{ default_type image/jpeg; }}
  }}
}}
"""
        )
        self.process = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work)])
        for _ in range(100):
            try:
                response = httpx.get(f"http://127.0.0.1:{self.port}/thumb.jpg", timeout=1)
                if response.status_code != 200:
                    raise RuntimeError(f"nginx answered {response.status_code}")
                return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


class Reference:
    """nginx serving the app's own thumbnail, measured beside every app run:
    this machine's speed drifts by 10-20% within a minute (a shared host)."""

    def __init__(self, work: Path, seconds: int) -> None:
        self.static = work / "static"
        self.static.mkdir(mode=0o755)
        self.work = work
        self.seconds = seconds
        self.nginx: Nginx | None = None

    def serve(self, thumbnail: bytes) -> None:
        if self.nginx is None:
            (self.static / "thumb.jpg").write_bytes(thumbnail)
            self.nginx = Nginx(self.static, self.work)

    def measure(self) -> Result:
        assert self.nginx is not None
        url = f"http://127.0.0.1:{self.nginx.port}/thumb.jpg"
        return wrk("nginx: static file, sendfile", url, self.seconds, {}, self.nginx.process.pid)

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()


def beside(
    reference: Reference, name: str, url: str, headers: dict[str, str], server: int
) -> Result:
    """One app run set against nginx's run just before it."""
    nginx = reference.measure()
    result = wrk(name, url, reference.seconds, headers, server)
    result.nginx = nginx.requests_per_second
    result.nginx_cpu_us = nginx.cpu_us
    return result


def median_run(runs: list[Result]) -> Result:
    """The median of several runs by their ratio to nginx (one pair moves by up
    to ~30% here), carrying every pair's ratio and CPU per request."""
    ordered = sorted(runs, key=lambda run: run.ratio)
    median = ordered[len(ordered) // 2]
    if len(runs) > 1:
        median.name = f"{median.name} (median of {len(runs)})"
        median.ratios = [run.ratio for run in ordered]
        median.pair_cpu_us = [run.cpu_us for run in ordered]
        median.non_2xx = sum(run.non_2xx for run in runs)
    return median


@dataclass
class Revalidation:
    """Target 2 read off runs back to back: in each repeat a hit run and a 304
    run (each after its own nginx run, the order alternating), so the two sides
    of a ratio are measured seconds apart rather than minutes."""

    rate: list[float]  # 304 req/s / hit req/s, per repeat
    cpu: list[float]  # hit CPU per request / 304 CPU per request, per repeat


def measure_app(
    server: str, workers: int, work: Path, data: bytes, reference: Reference, repeats: int = 1
) -> tuple[list[Result], bytes, Revalidation]:
    """Hit and 304 runs of one server setting; with `repeats`, that many of
    each, interleaved, and the median of each kind."""
    live = LiveServer(
        work / f"data-{server}-{workers}",
        workers=workers,
        env={"MOSAIC_SERVER": server, "MOSAIC_ADMIN_PASSWORD": PASSWORD},
    )
    server = f"{server} x{workers}"
    try:
        headers = live.token("admin", PASSWORD)
        files = {"file": ("photo.jpg", data, "image/jpeg")}
        media = httpx.post(f"{live.url}/api/media", files=files, headers=headers, timeout=60).json()
        url = f"{live.url}{media['thumbnail_url']}"
        first = httpx.get(url, headers=headers, timeout=60)
        assert first.status_code == 200, first.text
        reference.serve(first.content)
        pid = live.process.pid
        revalidate = {**headers, "If-None-Match": first.headers["etag"]}
        hits: list[Result] = []
        not_modified: list[Result] = []
        kinds = [
            (f"{server}: authenticated hit", headers, hits),
            (f"{server}: 304 revalidation", revalidate, not_modified),
        ]
        for repeat in range(repeats):
            for name, sent, runs in kinds if repeat % 2 == 0 else kinds[::-1]:
                runs.append(beside(reference, name, url, sent, pid))
        both = list(zip(hits, not_modified, strict=True))
        paired = Revalidation(
            rate=[b.requests_per_second / a.requests_per_second for a, b in both],
            cpu=[a.cpu_us / b.cpu_us for a, b in both],
        )
        return [median_run(hits), median_run(not_modified)], first.content, paired
    finally:
        live.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=8, help="wrk duration per run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 2],
        help="worker processes to try with granian over RSGI (the others run one per core)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="pairs (nginx, then the app) of hits and of 304s for the default server,"
        " interleaved; the median of each is reported",
    )
    args = parser.parse_args()
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install -y nginx wrk")

    work = Path(tempfile.mkdtemp(prefix="mosaic-load-"))
    work.chmod(0o755)  # nginx workers run as an unprivileged user
    data = photo()
    results: list[Result] = []
    thumbnail = b""
    paired: Revalidation | None = None
    reference = Reference(work, args.seconds)
    try:
        cores = os.cpu_count() or 2
        # granian over ASGI and uvicorn with the default worker count: what RSGI
        # is set against (uvicorn with one worker too cost make bench ~40 s of
        # its ten minutes, and was slower than granian at every count tried).
        for server, counts in (
            ("granian", args.workers),
            ("granian-asgi", [cores]),
            ("uvicorn", [cores]),
        ):
            for workers in counts:
                # Targets 1 and 2 are read off `mosaic serve`'s default: granian, one worker a core.
                default = server == "granian" and workers == cores
                repeats = args.repeats if default else 1
                measured, thumbnail, revalidation = measure_app(
                    server, workers, work, data, reference, repeats
                )
                results += measured
                if default:
                    paired = revalidation
    finally:
        reference.stop()
    shutil.rmtree(work, ignore_errors=True)

    print(
        f"\nthumbnail: {len(thumbnail)} bytes, {CONNECTIONS} connections, {args.seconds} s per run;"
        " nginx serves the same file just before each run\n"
    )
    print(
        f"| {'server and handler':<48} | {'req/s':>9} | {'nginx':>9} | {'vs nginx':>8}"
        f" | {'CPU us/req':>10} | {'nginx':>6} | non-2xx/3xx |"
    )
    print(f"|{'-' * 50}|{'-' * 11}|{'-' * 11}|{'-' * 10}|{'-' * 12}|{'-' * 8}|-------------|")
    for result in results:
        print(
            f"| {result.name:<48} | {result.requests_per_second:>9.0f} | {result.nginx:>9.0f}"
            f" | {result.ratio:>7.1%} | {result.cpu_us:>10.1f} | {result.nginx_cpu_us:>6.1f}"
            f" | {result.non_2xx:>11} |"
        )
    print(
        "\nCPU us/req: the server's CPU time (every process and thread) per request in that"
        " run; nginx's in the run just before it"
    )
    for result in results:
        if result.ratios:
            pairs = ", ".join(
                f"{ratio:.1%} ({cpu:.0f} us)"
                for ratio, cpu in zip(result.ratios, result.pair_cpu_us, strict=True)
            )
            print(f"{result.name}: each pair {pairs}")
    if paired is not None and len(paired.rate) > 1:
        rates = ", ".join(f"{value:.2f}" for value in paired.rate)
        cpus = ", ".join(f"{value:.2f}" for value in paired.cpu)
        print(
            f"304 / hit, each repeat's two runs back to back (target 2): req/s"
            f" {statistics.median(paired.rate):.2f}x median ({rates});"
            f" hit CPU / 304 CPU per request {statistics.median(paired.cpu):.2f}x ({cpus})"
        )
    if args.json:
        rows = [
            {
                "name": r.name,
                "rps": r.requests_per_second,
                "nginx_rps": r.nginx,
                "cpu_us_per_request": r.cpu_us,
                "nginx_cpu_us_per_request": r.nginx_cpu_us,
                "non_2xx": r.non_2xx,
                "pair_ratios": r.ratios,
                "pair_cpu_us_per_request": r.pair_cpu_us,
            }
            for r in results
        ]
        report = {"thumbnail_bytes": len(thumbnail), "results": rows}
        if paired is not None:
            report["not_modified_over_hit"] = {"rate": paired.rate, "cpu": paired.cpu}
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
