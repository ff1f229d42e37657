"""Races across server processes: two workers share one cache folder and one database.

Deletes race renders (and uploads go on meanwhile) for hundreds of rounds;
at the end nothing of a deleted media is left anywhere, and `mosaic fsck`
finds rows, originals and cache in agreement. After a DELETE returns, no
worker serves that media's thumbnail again.
"""

import asyncio
from pathlib import Path

import httpx
from PIL import Image

from mosaic import fsck
from mosaic.config import Settings
from mosaic.db import create_engine
from tests.images import encode, quadrants
from tests.live_server import LiveServer

PASSWORD = "race-test-password"
ROUNDS = 200


async def race(server: LiveServer, headers: dict[str, str], photo: bytes) -> list[str]:
    deleted: list[str] = []
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(
        base_url=server.url, headers=headers, timeout=30, limits=limits
    ) as client:

        async def one_round(index: int) -> None:
            files = {"file": (f"r{index}.jpg", photo, "image/jpeg")}
            media = (await client.post("/api/media", files=files)).json()
            renders = [
                asyncio.ensure_future(client.get(media["thumbnail_url"], params={"size": size}))
                for size in ("small", "medium", "large")
            ]
            await asyncio.sleep((index % 7) * 0.004)
            assert (await client.delete(f"/api/media/{media['id']}")).status_code == 204
            for late in await asyncio.gather(
                *(client.get(media["thumbnail_url"]) for _ in range(4))
            ):
                assert late.status_code == 404  # on whichever worker answers
            for render in await asyncio.gather(*renders):
                assert render.status_code in {200, 404}
            deleted.append(media["id"])

        for start in range(0, ROUNDS, 4):  # four rounds at a time, on two workers
            await asyncio.gather(*(one_round(i) for i in range(start, start + 4)))
    return deleted


def test_delete_races_render_across_workers(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = LiveServer(data_dir, workers=2, env={"MOSAIC_ADMIN_PASSWORD": PASSWORD})
    try:
        headers = server.token("admin", PASSWORD)
        keep = httpx.post(
            f"{server.url}/api/media",
            files={"file": ("keep.png", encode(quadrants(), "PNG"), "image/png")},
            headers=headers,
        ).json()
        photo = encode(Image.effect_noise((1600, 1200), 40).convert("RGB"), "JPEG")
        deleted = asyncio.run(race(server, headers, photo))
        assert httpx.get(f"{server.url}{keep['thumbnail_url']}", headers=headers).status_code == 200
    finally:
        server.stop()

    assert len(deleted) == ROUNDS
    leftovers = [p for p in data_dir.rglob("*") if any(media_id in str(p) for media_id in deleted)]
    assert leftovers == []

    async def consistency() -> fsck.Report:
        settings = Settings(data_dir=data_dir)
        engine = create_engine(settings.resolved_database_url)
        try:
            return await fsck.check(engine, settings, grace=0)
        finally:
            await engine.dispose()

    report = asyncio.run(consistency())
    assert report.clean, report.lines()
