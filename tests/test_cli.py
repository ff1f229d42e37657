"""`mosaic serve` as a real process: migrations, first admin, several workers."""

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image

from mosaic.thumbnails import RENDER_VERSION
from tests.conftest import wait_until
from tests.images import encode
from tests.live_server import LiveServer


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "data"


def test_serve_with_two_workers(data_dir: Path) -> None:
    server = LiveServer(data_dir, workers=2)
    out_first = server.stop()
    lines = [line for line in out_first.splitlines() if "with password:" in line]
    assert len(lines) == 1, out_first
    password = lines[0].rsplit(": ", 1)[1]
    assert (data_dir / "secret_key").stat().st_mode & 0o777 == 0o600
    assert (data_dir / "mosaic.db").exists()

    # A restart keeps the admin (no new password) and the data.
    server = LiveServer(data_dir, workers=2)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            login = client.post("/api/auth/token", data={"username": "admin", "password": password})
            assert login.status_code == 200
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            data = encode(Image.effect_noise((1200, 900), 40).convert("RGB"), "JPEG")
            files = {"file": ("p.jpg", data, "image/jpeg")}
            media = client.post("/api/media", files=files, headers=headers).json()

            def fetch(_: int) -> httpx.Response:
                return client.get(media["thumbnail_url"], headers=headers)

            # Both workers race for the same miss; the file lock makes one write.
            with ThreadPoolExecutor(8) as pool:
                responses = list(pool.map(fetch, range(16)))
            assert {r.status_code for r in responses} == {200}
            assert len({r.content for r in responses}) == 1
            cache_files = sorted(p.name for p in (data_dir / "cache").rglob("*") if p.is_file())
            assert cache_files == ["medium.jpg"]

            # /metrics adds up every worker, whichever answers (new connections
            # spread over both): one render, sixteen thumbnail requests.
            for _ in range(6):
                with httpx.Client(base_url=server.url, timeout=30) as fresh:
                    text = fresh.get("/metrics").text
                assert re.search(r"^mosaic_thumbnail_generations_total 1\.0$", text, re.M), text
                answered = re.findall(
                    r'^mosaic_thumbnail_requests_total\{result="\w+"\} (\S+)$', text, re.M
                )
                assert sum(float(value) for value in answered) == 16
            assert client.delete(f"/api/media/{media['id']}", headers=headers).status_code == 204
            assert not any(media["id"] in str(p) for p in data_dir.rglob("*"))
    finally:
        out_second = server.stop()
    assert "with password:" not in out_second


def test_stop_while_a_worker_is_still_starting(data_dir: Path) -> None:
    # Stopped as soon as one worker answers, the other is often still loading
    # the app. Every process must exit at once: a worker that ignored SIGTERM
    # would only go when the server kills it, 10 seconds later.
    for _ in range(3):
        server = LiveServer(data_dir, workers=2)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 8
        with pytest.raises(ProcessLookupError):
            os.killpg(server.process.pid, 0)  # nothing left in the server's process group


def test_serve_retires_thumbnails_of_an_older_render_version(data_dir: Path) -> None:
    # What an upgrade finds: a cache made by version 1 and the stamp that says so.
    entry = data_dir / "cache" / "ab" / "ab5e1c1e-0000-4000-8000-000000000000"
    entry.mkdir(parents=True)
    (entry / "medium.jpg").write_bytes(b"\xff\xd8\xff\xd9")
    (data_dir / "render-version").write_text("1\n")

    server = LiveServer(data_dir, workers=2, env={"MOSAIC_LOG_LEVEL": "INFO"}, logs=True)
    try:
        assert (data_dir / "render-version").read_text() == f"{RENDER_VERSION}\n"
        # The retired folder is removed in the background.
        wait_until(lambda: not any((data_dir / "cache").iterdir()), seconds=5)
        assert list((data_dir / "cache").iterdir()) == []
    finally:
        out = server.stop()
    assert f"render version {RENDER_VERSION} (was 1): 1 cache folders retired" in out, out


# A granian RSGI worker's steps, in granian 2.8's order (granian.server.mp),
# with the stop signal sent between two runs of the worker's uvloop loop.
_WORKER_TOLD_TO_STOP_BETWEEN_RUNS = """
import asyncio, os, signal, sys
from granian._loops import loops
import mosaic.main

if sys.argv[1] == "unkept":
    mosaic.main.keep_stop_signals = lambda loop: None

loop = loops.get("auto")  # uvloop, made the current loop
app = mosaic.main.served_rsgi_app()
stopped = asyncio.Event()
for sig in (signal.SIGINT, signal.SIGTERM):  # as granian._signals.set_loop_signals
    loop.add_signal_handler(sig, stopped.set)
app.__rsgi_init__(loop)  # the lifespan's start-up: one run
os.kill(os.getpid(), signal.SIGTERM)

async def serve() -> None:
    try:
        await asyncio.wait_for(stopped.wait(), 5)
    except TimeoutError:
        sys.exit(3)

loop.run_until_complete(serve())
app.__rsgi_del__(loop)
"""


@pytest.mark.parametrize("kept", [True, False], ids=["kept", "unkept"])
def test_a_stop_signal_between_loop_runs_is_kept(data_dir: Path, kept: bool) -> None:
    # uvloop hears signals only while its loop runs; `keep_stop_signals` raises
    # one that came in between again in the next run. Unkept, it is lost: if
    # that case ever fails, uvloop has stopped losing it.
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")},
        "MOSAIC_DATA_DIR": str(data_dir),
        "MOSAIC_FRONTEND_DIR": str(data_dir / "no-frontend"),
        "MOSAIC_LOG_LEVEL": "WARNING",
    }
    worker = subprocess.run(
        [sys.executable, "-c", _WORKER_TOLD_TO_STOP_BETWEEN_RUNS, "kept" if kept else "unkept"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode == (0 if kept else 3), worker.stderr
