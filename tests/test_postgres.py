"""The same contract on PostgreSQL (MOSAIC_DATABASE_URL), against a throwaway server.

Starts PostgreSQL from the machine's server binaries on 127.0.0.1 (as the
`postgres` user, since initdb refuses root) and gives each test its own database.
"""

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from PIL import Image

from mosaic.config import Settings
from mosaic.main import create_app
from tests.conftest import ADMIN_PASSWORD, USER_PASSWORD, login, upload
from tests.images import encode
from tests.live_server import free_port

pytestmark = pytest.mark.anyio
PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))


def _as_postgres(*args: str) -> None:
    command = list(args)
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[str]:
    if not PG_BIN or not (PG_BIN[-1] / "initdb").exists():
        pytest.skip("PostgreSQL server binaries are not installed")
    bindir = PG_BIN[-1]
    root = Path(tempfile.mkdtemp(prefix="mosaic-pg-"))
    port = free_port()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    root.chmod(0o700)
    _as_postgres(
        str(bindir / "initdb"), "-D", f"{root}/data", "-U", "postgres", "--auth=trust", "--no-sync"
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
    _as_postgres(
        str(bindir / "pg_ctl"),
        "-D",
        f"{root}/data",
        "-l",
        f"{root}/log",
        "-w",
        "-t",
        "30",
        "-o",
        options,
        "start",
    )
    try:
        yield f"postgres@127.0.0.1:{port}"
    finally:
        _as_postgres(str(bindir / "pg_ctl"), "-D", f"{root}/data", "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def pg_client(postgres_server: str, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    name = f"mosaic_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(f"postgresql://{postgres_server}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = f"postgresql+asyncpg://{postgres_server}/{name}"
    app = create_app(settings.model_copy(update={"database_url": url}))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://pg") as client:
            yield client


async def test_contract_on_postgres(pg_client: httpx.AsyncClient) -> None:
    client = pg_client
    admin = await login(client, "admin", ADMIN_PASSWORD)
    body = {"username": "alice", "password": USER_PASSWORD}
    assert (await client.post("/api/users", json=body, headers=admin)).status_code == 201
    assert (await client.post("/api/users", json=body, headers=admin)).status_code == 409
    alice = await login(client, "alice", USER_PASSWORD)

    ids = []
    for i in range(5):
        data = encode(Image.new("RGB", (300 + i, 200), (i * 40, 90, 160)), "JPEG")
        response = await upload(client, alice, data)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])

    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/media", params=params, headers=alice)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))

    media = (await client.get(f"/api/media/{ids[0]}", headers=alice)).json()
    thumb = await client.get(media["thumbnail_url"], headers=alice)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert (await client.get(f"/api/media/{ids[0]}", headers=admin)).status_code == 200
    assert (await client.delete(f"/api/media/{ids[0]}", headers=alice)).status_code == 204
    assert (await client.get(media["thumbnail_url"], headers=alice)).status_code == 404
