"""`mosaic serve` as a real process on 127.0.0.1, for tests that need a real server."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_processes(root: int) -> list[int]:
    """`root` and every process under it (a server's supervisor and workers)."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(root)], capture_output=True, text=True)
    children = [int(pid) for pid in out.stdout.split()]
    return [root, *[p for child in children for p in server_processes(child)]]


def proc_files(pids: list[int], name: str) -> Iterator[str]:
    """`/proc/<pid>/<name>` of each of the processes still running."""
    for pid in pids:
        try:
            yield Path(f"/proc/{pid}/{name}").read_text()
        except FileNotFoundError:
            continue


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user and system, every thread) the processes have used so far."""
    total = 0
    for stat in proc_files(pids, "stat"):
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def healthy_within(url: str, *, seconds: float) -> bool:
    """Whether `url`/healthz answers 200 within `seconds` (polled every 0.1 s)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            time.sleep(0.1)
    return False


class LiveServer:
    """Starts `mosaic serve` with its data in `data_dir`; `stop()` returns what it printed."""

    def __init__(
        self,
        data_dir: Path,
        *,
        workers: int | None = 1,
        env: dict[str, str] | None = None,
        logs: bool = False,
    ) -> None:
        """`workers=None` leaves the count to the server (one per core); with
        `logs`, what it logs (stderr) is in what `stop()` returns."""
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")},
            "MOSAIC_DATA_DIR": str(data_dir),
            "MOSAIC_HOST": "127.0.0.1",
            "MOSAIC_PORT": str(port),
            **({} if workers is None else {"MOSAIC_WORKERS": str(workers)}),
            "MOSAIC_FRONTEND_DIR": str(data_dir / "no-frontend"),
            "MOSAIC_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        mosaic = Path(sys.executable).with_name("mosaic")
        self.process = subprocess.Popen(
            [str(mosaic), "serve"],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if logs else subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # its own process group: kill() reaches the workers too
        )
        if not healthy_within(self.url, seconds=30):
            self.stop()
            raise AssertionError("the server did not start")

    def token(self, username: str, password: str) -> dict[str, str]:
        response = httpx.post(
            f"{self.url}/api/auth/token", data={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def kill(self) -> None:
        """SIGKILL the server and its workers at once: a crash, not a shutdown."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.communicate(timeout=20)

    def stop(self) -> str:
        self.process.terminate()
        try:
            out, _ = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        return out
