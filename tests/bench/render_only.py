"""The least a thumbnail server can do for a cold gallery: target 5's yardstick.

An ASGI app that answers `GET /<anything>/<name>.jpg` with the thumbnail of the
file of that name in one folder, rendered by the same function as Mosaic's
(`render_thumbnail`) in the same pool (one render thread per core, shared out
between the workers) under the same server (granian, one worker per core),
and `/healthz` with "ok". No token, no database, no cache, no lock, nothing
written. A cold gallery through it, with the same client, shows what a
server that renders over HTTP reaches on this machine at that moment; Mosaic's
own gallery set against it shows what the contract costs: authentication,
authorization and the single-flight cache written with fsync and rename.

`tests/bench/misses.py` runs it beside every gallery (`RenderOnlyServer`).
"""

import asyncio
import os
import re
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from starlette.types import Receive, Scope, Send

from mosaic.thumbnails import SPECS, render_thumbnail
from tests.live_server import free_port, healthy_within

ROOT_VARIABLE = "MOSAIC_BENCH_RENDER_ROOT"
THREADS_VARIABLE = "MOSAIC_BENCH_RENDER_THREADS"
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\.jpg")
_REPOSITORY = Path(__file__).resolve().parents[2]
# Set in the server's workers; this module is imported by the benchmark too,
# where they stay unused (the pool starts no thread before its first job).
_ROOT = Path(os.environ.get(ROOT_VARIABLE, "."))
_POOL = ThreadPoolExecutor(int(os.environ.get(THREADS_VARIABLE, "1")))


def bare_render(path: Path) -> bytes:
    """The medium thumbnail of `path` with nothing around it: what this server
    answers and what the benchmark's single-thread baseline times."""
    return render_thumbnail(path, SPECS["medium"], max_pixels=10**8)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(scope, receive, send)
        return
    name = scope["path"].rsplit("/", 1)[-1]
    if scope["path"] == "/healthz":
        status, body = 200, b"ok"
    elif _NAME.fullmatch(name):
        loop = asyncio.get_running_loop()
        status, body = 200, await loop.run_in_executor(_POOL, bare_render, _ROOT / name)
    else:
        status, body = 404, b""
    length = str(len(body)).encode()
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-length", length)]}
    )
    await send({"type": "http.response.body", "body": body})


async def _lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            _POOL.shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


class RenderOnlyServer:
    """`app` under granian on 127.0.0.1, rendering the files in `root`, with
    Mosaic's default of one worker per core unless `workers` says otherwise."""

    def __init__(self, root: Path, workers: int | None = None) -> None:
        cores = os.cpu_count() or 2
        workers = workers or cores
        self.url = f"http://127.0.0.1:{free_port()}"
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("granian")),
                *("--interface", "asgi", "--loop", "uvloop", "--no-ws", "--log-level", "warning"),
                *("--host", "127.0.0.1", "--port", self.url.rsplit(":", 1)[1]),
                *("--workers", str(workers)),
                "tests.bench.render_only:app",
            ],
            env={
                **os.environ,
                ROOT_VARIABLE: str(root),
                THREADS_VARIABLE: str(max(1, cores // workers)),
                "PYTHONPATH": str(_REPOSITORY),
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        if not healthy_within(self.url, seconds=30):
            self.stop()
            raise AssertionError("the render-only server did not start")

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
