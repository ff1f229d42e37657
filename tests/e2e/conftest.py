"""A real server (built frontend + backend, temp data dir) and Debian's Chromium."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "frontend" / "dist"
ARTIFACTS = ROOT / "test-results" / "e2e"
CHROMIUM = Path(os.environ.get("MOSAIC_E2E_CHROMIUM", "/usr/bin/chromium"))
ADMIN_PASSWORD = "e2e-admin-password"
# Chromium must not try to reach the outside: this machine has no network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    def __init__(self, data_dir: Path) -> None:
        self.url = f"http://127.0.0.1:{_free_port()}"
        env = {
            **os.environ,
            "MOSAIC_DATA_DIR": str(data_dir),
            "MOSAIC_HOST": "127.0.0.1",
            "MOSAIC_PORT": self.url.rsplit(":", 1)[1],
            "MOSAIC_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "MOSAIC_FRONTEND_DIR": str(DIST),
            "MOSAIC_LOG_LEVEL": "WARNING",
        }
        mosaic = Path(sys.executable).with_name("mosaic")
        self.process = subprocess.Popen([str(mosaic), "serve"], env=env, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError("the server did not start")

    def token(self, username: str, password: str) -> dict[str, str]:
        response = httpx.post(
            f"{self.url}/api/auth/token", data={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    if not (DIST / "index.html").exists() or not list((DIST / "assets").glob("*.js")):
        pytest.fail("frontend/dist is not built: run `make install` (make test does it)")
    live = LiveServer(tmp_path_factory.mktemp("e2e") / "data")
    yield live
    live.stop()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: make test installs Debian's chromium")
    instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield instance
    instance.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
