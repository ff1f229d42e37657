import asyncio
import io
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from PIL import Image

from mosaic.config import Settings
from mosaic.main import create_app

ADMIN_PASSWORD = "admin-password-for-tests"
USER_PASSWORD = "user-password-for-tests"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_image(
    fmt: str = "JPEG",
    size: tuple[int, int] = (640, 480),
    mode: str = "RGB",
    color: Any = (200, 30, 30),
    **save_args: Any,
) -> bytes:
    """A real image, drawn with Pillow, encoded in memory."""
    image = Image.new(mode, size, color)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save_args)
    return buffer.getvalue()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        secret_key="a-test-secret-key-that-is-long-enough-0123456789",
        admin_password=ADMIN_PASSWORD,
        frontend_dir=tmp_path / "no-frontend",
        render_threads=2,
        max_upload_bytes=5 * 1024 * 1024,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mosaic.test") as http:
        yield http


async def login(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    response = await client.post(
        "/api/auth/token", data={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    client.cookies.clear()  # tests choose bearer or cookie explicitly
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
async def admin_headers(client: httpx.AsyncClient) -> dict[str, str]:
    return await login(client, "admin", ADMIN_PASSWORD)


UserFactory = Callable[[str], Any]


@pytest.fixture
def create_user(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> UserFactory:
    async def create(username: str, *, is_admin: bool = False) -> dict[str, str]:
        response = await client.post(
            "/api/users",
            json={"username": username, "password": USER_PASSWORD, "is_admin": is_admin},
            headers=admin_headers,
        )
        assert response.status_code == 201, response.text
        return await login(client, username, USER_PASSWORD)

    return create


@pytest.fixture
async def alice(create_user: UserFactory) -> dict[str, str]:
    headers: dict[str, str] = await create_user("alice")
    return headers


@pytest.fixture
async def bob(create_user: UserFactory) -> dict[str, str]:
    headers: dict[str, str] = await create_user("bob")
    return headers


async def upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    data: bytes,
    filename: str = "photo.jpg",
    content_type: str = "image/jpeg",
) -> httpx.Response:
    return await client.post(
        "/api/media", files={"file": (filename, data, content_type)}, headers=headers
    )


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


def wait_until(condition: Callable[[], object], seconds: float) -> None:
    """Poll `condition` until it holds or `seconds` pass, for work a server does
    in the background; the caller asserts what it expects afterwards."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


async def wait_until_async(condition: Callable[[], object], seconds: float) -> None:
    """`wait_until` inside a coroutine: the event loop runs on meanwhile."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Sync Playwright keeps its own event loop alive while it runs; the browser
    # suite goes last so it never overlaps the async (anyio) tests.
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)
