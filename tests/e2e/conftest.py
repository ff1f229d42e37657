"""A real server (built frontend + backend, temp data dir) and Debian's Chromium."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.live_server import LiveServer

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


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    if not (DIST / "index.html").exists() or not list((DIST / "assets").glob("*.js")):
        pytest.fail("frontend/dist is not built: run `make install` (make test does it)")
    env = {"MOSAIC_ADMIN_PASSWORD": ADMIN_PASSWORD, "MOSAIC_FRONTEND_DIR": str(DIST)}
    live = LiveServer(tmp_path_factory.mktemp("e2e") / "data", env=env)
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
