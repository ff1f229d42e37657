import asyncio
import io
import re
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from PIL import Image

from mosaic.config import Settings
from mosaic.main import create_app
from mosaic.thumbnails import RENDER_VERSION
from tests.conftest import ADMIN_PASSWORD, files_under, login, upload, wait_until_async
from tests.images import encode, jpeg_with_gps, oriented_jpeg

pytestmark = pytest.mark.anyio
IMMUTABLE = "private, max-age=31536000, immutable"


def big_photo() -> bytes:
    return encode(Image.effect_noise((1600, 1200), 50).convert("RGB"), "JPEG", quality=90)


async def new_media(
    client: httpx.AsyncClient, headers: dict[str, str], data: bytes
) -> dict[str, str]:
    response = await upload(client, headers, data)
    assert response.status_code == 201, response.text
    media: dict[str, str] = response.json()
    return media


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, name
    return float(match.group(1))


async def metrics(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return response.text


class TestThumbnail:
    @pytest.mark.parametrize(
        ("size", "edge"), [("small", 128), ("medium", 256), ("large", 512), (None, 256)]
    )
    async def test_sizes(
        self, client: httpx.AsyncClient, alice: dict[str, str], size: str | None, edge: int
    ) -> None:
        media = await new_media(client, alice, big_photo())
        params = {"size": size} if size else {}
        response = await client.get(media["thumbnail_url"], params=params, headers=alice)
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/jpeg"
        assert response.headers["cache-control"] == IMMUTABLE
        assert int(response.headers["content-length"]) == len(response.content)
        with Image.open(io.BytesIO(response.content)) as image:
            assert image.format == "JPEG"
            assert max(image.size) == edge

    async def test_unknown_size_is_422(
        self, client: httpx.AsyncClient, alice: dict[str, str]
    ) -> None:
        media = await new_media(client, alice, big_photo())
        for size in ["huge", "256", "", "SMALL"]:
            response = await client.get(
                f"/api/media/{media['id']}/thumbnail", params={"size": size}, headers=alice
            )
            assert response.status_code == 422, size
            assert response.json()["error"]["code"] == "validation_error"

    async def test_upright_and_without_metadata(
        self, client: httpx.AsyncClient, alice: dict[str, str]
    ) -> None:
        media = await new_media(client, alice, oriented_jpeg(8))
        response = await client.get(media["thumbnail_url"], headers=alice)
        with Image.open(io.BytesIO(response.content)) as image:
            assert image.size == (256, 128)
            red = image.getpixel((64, 32))
            assert isinstance(red, tuple) and red[0] > 200 and red[1] < 60
        media = await new_media(client, alice, jpeg_with_gps())
        response = await client.get(media["thumbnail_url"], headers=alice)
        assert b"Exif" not in response.content

    async def test_etag_from_content_not_file(
        self, client: httpx.AsyncClient, alice: dict[str, str], settings: Settings
    ) -> None:
        data = big_photo()
        media = await new_media(client, alice, data)
        first = await client.get(media["thumbnail_url"], headers=alice)
        etag = first.headers["etag"]
        assert etag.startswith('"') and not etag.startswith("W/")
        assert media["sha256"][:16] in etag
        small = await client.get(media["thumbnail_url"], params={"size": "small"}, headers=alice)
        assert small.headers["etag"] != etag
        # Regenerated file (new mtime, new inode): same ETag.
        for path in settings.resolved_cache_dir.rglob("*.jpg"):
            path.unlink()
        again = await client.get(media["thumbnail_url"], headers=alice)
        assert again.headers["etag"] == etag
        # The same bytes uploaded twice are two media with the same thumbnail ETag.
        twin = await new_media(client, alice, data)
        assert (await client.get(twin["thumbnail_url"], headers=alice)).headers["etag"] == etag

    async def test_not_modified_without_reading_the_file(
        self, client: httpx.AsyncClient, alice: dict[str, str], settings: Settings
    ) -> None:
        media = await new_media(client, alice, big_photo())
        etag = (await client.get(media["thumbnail_url"], headers=alice)).headers["etag"]
        cached = next(settings.resolved_cache_dir.rglob("medium.jpg"))
        cached.write_bytes(b"not read for a 304")
        opaque = etag.strip('"')
        for header in [etag, f"W/{etag}", f'"other", {etag}', f'W/"x", W/{etag}', "*"]:
            response = await client.get(
                media["thumbnail_url"], headers={**alice, "If-None-Match": header}
            )
            assert response.status_code == 304, header
            assert response.content == b""
            assert response.headers["etag"] == etag
            assert response.headers["cache-control"] == IMMUTABLE
        assert cached.read_bytes() == b"not read for a 304"
        for header in ['"other"', f'"{opaque}x"', "W/"]:
            response = await client.get(
                media["thumbnail_url"], headers={**alice, "If-None-Match": header}
            )
            assert response.status_code == 200, header
        text = await metrics(client)
        assert metric(text, 'mosaic_thumbnail_requests_total{result="not_modified"}') == 5

    async def test_head(self, client: httpx.AsyncClient, alice: dict[str, str]) -> None:
        media = await new_media(client, alice, big_photo())
        get = await client.get(media["thumbnail_url"], headers=alice)
        head = await client.head(media["thumbnail_url"], headers=alice)
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["etag"] == get.headers["etag"]
        assert head.headers["content-type"] == "image/jpeg"
        assert head.headers["content-length"] == str(len(get.content))
        assert (await client.head(media["thumbnail_url"])).status_code == 401

    async def test_hit_and_miss_are_counted(
        self, client: httpx.AsyncClient, alice: dict[str, str], settings: Settings
    ) -> None:
        media = await new_media(client, alice, big_photo())
        assert files_under(settings.resolved_cache_dir) == []
        miss = await client.get(media["thumbnail_url"], headers=alice)
        cached = list(settings.resolved_cache_dir.rglob("medium.jpg"))
        assert len(cached) == 1 and cached[0].read_bytes() == miss.content
        assert cached[0].parent.name == media["id"]
        assert cached[0].parent.parent.name == media["id"].replace("-", "")[:2]
        hit = await client.get(media["thumbnail_url"], headers=alice)
        assert hit.content == miss.content
        text = await metrics(client)
        assert metric(text, 'mosaic_thumbnail_requests_total{result="miss"}') == 1
        assert metric(text, 'mosaic_thumbnail_requests_total{result="hit"}') == 1
        assert metric(text, "mosaic_thumbnail_generations_total") == 1
        assert metric(text, "mosaic_thumbnail_generation_seconds_count") == 1
        assert metric(text, "mosaic_thumbnail_cache_errors_total") == 0

    async def test_truncated_cache_file_is_rewritten(
        self, client: httpx.AsyncClient, alice: dict[str, str], settings: Settings
    ) -> None:
        media = await new_media(client, alice, big_photo())
        good = (await client.get(media["thumbnail_url"], headers=alice)).content
        cached = next(settings.resolved_cache_dir.rglob("medium.jpg"))
        for damaged in [b"", good[:-2], good[: len(good) // 3]]:
            cached.write_bytes(damaged)
            response = await client.get(media["thumbnail_url"], headers=alice)
            assert response.content == good
            assert cached.read_bytes() == good

    async def test_fifty_concurrent_misses_one_generation(
        self, client: httpx.AsyncClient, alice: dict[str, str], settings: Settings
    ) -> None:
        media = await new_media(client, alice, big_photo())
        responses = await asyncio.gather(
            *(client.get(media["thumbnail_url"], headers=alice) for _ in range(50))
        )
        assert {r.status_code for r in responses} == {200}
        assert len({r.content for r in responses}) == 1
        assert metric(await metrics(client), "mosaic_thumbnail_generations_total") == 1
        names = sorted(p.name for p in files_under(settings.resolved_cache_dir))
        assert names == ["medium.jpg"]

    async def test_delete_racing_generation_leaves_no_orphan(
        self, client: httpx.AsyncClient, alice: dict[str, str], settings: Settings
    ) -> None:
        data = big_photo()
        for iteration in range(25):
            media = await new_media(client, alice, data)
            requests = [
                asyncio.ensure_future(
                    client.get(media["thumbnail_url"], params={"size": size}, headers=alice)
                )
                for size in ["small", "medium", "large"]
            ]
            await asyncio.sleep((iteration % 5) * 0.003)
            response = await client.delete(f"/api/media/{media['id']}", headers=alice)
            assert response.status_code == 204
            # After DELETE returns nothing of that id is on disk, lock files included.
            assert not any(media["id"] in str(p) for p in settings.data_dir.rglob("*")), iteration
            for result in await asyncio.gather(*requests):
                assert result.status_code in {200, 404}
            assert not any(media["id"] in str(p) for p in settings.data_dir.rglob("*")), iteration
            after = await client.get(media["thumbnail_url"], headers=alice)
            assert after.status_code == 404
        assert not list(settings.resolved_cache_dir.glob("*/*"))


class TestUnwritableCache:
    async def test_served_uncached_and_counted(self, tmp_path: Path, settings: Settings) -> None:
        blocker = tmp_path / "blocker"
        blocker.write_text("a regular file: nothing can be created below it")
        app = create_app(settings.model_copy(update={"cache_dir": blocker / "cache"}))
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                headers = await login(client, "admin", ADMIN_PASSWORD)
                media = await new_media(client, headers, big_photo())
                for _ in range(3):
                    response = await client.get(media["thumbnail_url"], headers=headers)
                    assert response.status_code == 200
                    with Image.open(io.BytesIO(response.content)) as image:
                        assert max(image.size) == 256
                text = await metrics(client)
        assert metric(text, "mosaic_thumbnail_cache_errors_total") == 3
        assert metric(text, "mosaic_thumbnail_generations_total") == 3


class TestLifespanOptional:
    async def test_works_without_lifespan(self, settings: Settings) -> None:
        # Some hosts (and tests) skip the ASGI lifespan: the first request starts the app.
        app: FastAPI = create_app(settings)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            responses = await asyncio.gather(
                *(
                    client.post(
                        "/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD}
                    )
                    for _ in range(3)
                )
            )
            assert {r.status_code for r in responses} == {200}
        app.state.cache.close()
        await app.state.engine.dispose()


class TestRenderVersion:
    """Thumbnails on disk made by another render version are not served under this one."""

    async def fetch(self, settings: Settings, media: dict[str, str] | None) -> dict[str, str]:
        app = create_app(settings)
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                headers = await login(client, "admin", ADMIN_PASSWORD)
                media = media or await new_media(client, headers, big_photo())
                response = await client.get(media["thumbnail_url"], headers=headers)
                assert response.status_code == 200
                with Image.open(io.BytesIO(response.content)) as image:
                    media["served_size"] = str(max(image.size))
                media["generations"] = str(
                    metric(await metrics(client), "mosaic_thumbnail_generations_total")
                )
        return media

    async def test_older_version_renders_again_current_one_is_kept(
        self, settings: Settings
    ) -> None:
        media = await self.fetch(settings, None)
        stamp = settings.data_dir / "render-version"
        assert stamp.read_text().strip() == str(RENDER_VERSION)
        cached = next(settings.resolved_cache_dir.rglob("medium.jpg"))
        # A thumbnail this version did not make: 8 pixels wide, as no render gives.
        cached.write_bytes(encode(Image.new("RGB", (8, 8), "red"), "JPEG"))

        kept = await self.fetch(settings, media)
        assert (kept["served_size"], kept["generations"]) == ("8", "0.0")

        stamp.write_text(f"{RENDER_VERSION - 1}\n")
        again = await self.fetch(settings, media)
        assert (again["served_size"], again["generations"]) == ("256", "1.0")
        assert stamp.read_text().strip() == str(RENDER_VERSION)
        # The retired folder is removed in the background once the app is up.
        shard = cached.parent.parent
        await wait_until_async(
            lambda: [p.name for p in shard.parent.iterdir()] == [shard.name], seconds=5
        )
        assert [p.name for p in shard.parent.iterdir()] == [shard.name]
