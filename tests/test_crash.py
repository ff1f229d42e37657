"""Crash safety: a real server is SIGKILLed at random points while it renders misses.

After every kill no cached file is partial (each .jpg decodes whole), nothing
half-written is ever served, and temporary files do not pile up: start-up
removes the temporary and lock files a crash left behind.
"""

import io
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.conftest import wait_until
from tests.images import encode, quadrants
from tests.live_server import LiveServer

PASSWORD = "crash-test-password"
# Each costs one server start-up, the bulk of this test: ~3 s on the first
# machine, ~5 s on the second, which leaves the suite's 300 s limit too close.
CYCLES = 50
SIZES = ("small", "medium", "large")


def photos() -> list[bytes]:
    scenes = [quadrants(2400, 1600), Image.effect_noise((2000, 1500), 60).convert("RGB")]
    return [encode(scene, fmt) for scene in scenes for fmt in ("JPEG", "PNG")]


def check_cache(cache: Path) -> int:
    """Every thumbnail on disk decodes whole; returns how many temporary and lock
    files (a crash's leftovers) there are."""
    for path in cache.rglob("*.jpg"):
        data = path.read_bytes()
        assert data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9"), path
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    return len(list(cache.rglob("*.tmp"))) + len(list(cache.rglob("*.lock")))


@pytest.mark.timeout(600)
def test_sigkill_during_renders(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {"MOSAIC_ADMIN_PASSWORD": PASSWORD, "MOSAIC_RENDER_THREADS": "2"}
    rng = random.Random(7)
    server = LiveServer(data_dir, env=env)
    headers = server.token("admin", PASSWORD)
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        urls = []
        for index, photo in enumerate(photos() * 2):
            files = {"file": (f"p{index}.jpg", photo, "image/jpeg")}
            urls.append(client.post("/api/media", files=files).json()["thumbnail_url"])
    server.stop()
    cache = data_dir / "cache"
    most_temps = 0

    for _ in range(CYCLES):
        # Evict some thumbnails so this round has misses to render.
        for path in list(cache.rglob("*.jpg")):
            if rng.random() < 0.6:
                path.unlink()
        server = LiveServer(data_dir, env=env)
        stop = threading.Event()

        def hammer(url: str, server: LiveServer = server, stop: threading.Event = stop) -> None:
            with httpx.Client(base_url=server.url, headers=headers, timeout=5) as client:
                while not stop.is_set():
                    try:
                        response = client.get(url, params={"size": rng.choice(SIZES)})
                    except httpx.TransportError:
                        return
                    if response.status_code == 200:
                        with Image.open(io.BytesIO(response.content)) as image:
                            image.load()  # what was served is whole
                    else:
                        assert response.status_code == 503, response.text

        with ThreadPoolExecutor(4) as pool:
            for url in rng.sample(urls, 4):
                pool.submit(hammer, url)
            time.sleep(rng.uniform(0.02, 0.4))
            server.kill()
            stop.set()
        most_temps = max(most_temps, check_cache(cache))

    # A clean start removes what the crashes left, and every thumbnail is served whole.
    server = LiveServer(data_dir, env=env)
    try:
        wait_until(lambda: check_cache(cache) == 0, seconds=10)
        assert check_cache(cache) == 0
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            for url in urls:
                for size in SIZES:
                    response = client.get(url, params={"size": size})
                    assert response.status_code == 200
                    with Image.open(io.BytesIO(response.content)) as image:
                        assert max(image.size) <= {"small": 128, "medium": 256, "large": 512}[size]
    finally:
        server.stop()
    assert most_temps <= 6 * len(SIZES) * 2  # never more than the renders in flight at a kill
