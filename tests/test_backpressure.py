"""Backpressure and readiness: a full render queue answers 503, hits go on; /readyz tells the truth."""

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from PIL import Image

from mosaic.config import Settings
from mosaic.main import create_app
from mosaic.thumbnails import SPECS, Overloaded, ThumbnailCache
from tests.conftest import ADMIN_PASSWORD, login, upload
from tests.images import encode

pytestmark = pytest.mark.anyio


def slow_png() -> bytes:
    # A PNG has no draft mode: a full 12 MP decode keeps a render busy for a while.
    return encode(Image.effect_noise((4000, 3000), 80), "PNG", compress_level=1)


class TestRenderQueue:
    async def test_full_queue_refuses_new_misses_but_joins_and_hits_go_on(
        self, tmp_path: Path
    ) -> None:
        source = tmp_path / "slow.png"
        source.write_bytes(slow_png())
        small = tmp_path / "small.jpg"
        small.write_bytes(encode(Image.new("RGB", (64, 64)), "JPEG"))
        cache = ThumbnailCache(tmp_path / "cache", max_pixels=10**8, threads=1, max_pending=1)
        try:
            cached_id = uuid.uuid4()
            await cache.get(cached_id, SPECS["small"], source=small)
            busy_id = uuid.uuid4()
            first = asyncio.ensure_future(cache.get(busy_id, SPECS["medium"], source=source))
            await asyncio.sleep(0)  # the render is now pending
            joined = asyncio.ensure_future(cache.get(busy_id, SPECS["medium"], source=source))
            with pytest.raises(Overloaded):
                await cache.get(uuid.uuid4(), SPECS["medium"], source=source)
            hit = await cache.get(cached_id, SPECS["small"], source=small)
            assert not hit.generated
            assert (await first).data == (await joined).data
            # Drained: new misses are accepted again.
            assert (await cache.get(uuid.uuid4(), SPECS["small"], source=small)).generated
        finally:
            cache.close()

    async def test_http_503_with_retry_after(self, settings: Settings) -> None:
        app = create_app(
            settings.model_copy(
                update={"render_queue": 1, "render_threads": 1, "max_upload_bytes": 2**26}
            )
        )
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                headers = await login(client, "admin", ADMIN_PASSWORD)
                ids = [
                    (await upload(client, headers, slow_png(), "a.png")).json() for _ in range(2)
                ]
                warm = (
                    await upload(client, headers, encode(Image.new("RGB", (64, 64)), "JPEG"))
                ).json()
                assert (await client.get(warm["thumbnail_url"], headers=headers)).status_code == 200
                first = asyncio.ensure_future(client.get(ids[0]["thumbnail_url"], headers=headers))
                await asyncio.sleep(0.05)
                refused = await client.get(ids[1]["thumbnail_url"], headers=headers)
                assert refused.status_code == 503
                assert refused.headers["retry-after"] == "1"
                assert refused.json()["error"]["code"] == "overloaded"
                hit = await client.get(warm["thumbnail_url"], headers=headers)
                assert hit.status_code == 200
                assert (await first).status_code == 200


class TestReadiness:
    async def test_ready(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/readyz")
        assert response.status_code == 200
        assert response.json() == {"status": "ready"}

    @pytest.mark.parametrize("problem", ["cache", "disk"])
    async def test_not_ready(self, settings: Settings, tmp_path: Path, problem: str) -> None:
        blocker = tmp_path / "blocker"
        blocker.write_text("a file where a folder should be")
        update: dict[str, object] = (
            {"cache_dir": blocker / "cache"} if problem == "cache" else {"min_free_bytes": 10**18}
        )
        app = create_app(settings.model_copy(update=update))
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                response = await client.get("/readyz")
                assert (await client.get("/healthz")).status_code == 200  # alive, not ready
        assert response.status_code == 503
        error = response.json()["error"]
        assert error["code"] == "not_ready"
        assert (
            ("not writable" in error["message"])
            if problem == "cache"
            else ("free" in error["message"])
        )
