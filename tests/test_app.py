import gc
import os
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from mosaic.config import Settings
from mosaic.main import create_app

pytestmark = pytest.mark.anyio


class TestErrorShape:
    @pytest.mark.parametrize(
        ("method", "path", "status"),
        [
            ("GET", "/api/nothing-here", 404),
            ("GET", "/nothing-here", 404),
            ("PUT", "/api/media", 405),
            ("DELETE", "/healthz", 405),
        ],
    )
    async def test_framework_errors_use_the_contract(
        self, client: httpx.AsyncClient, method: str, path: str, status: int
    ) -> None:
        response = await client.request(method, path)
        assert response.status_code == status
        error = response.json()["error"]
        assert set(error) == {"code", "message"}
        assert error["code"].islower() and " " not in error["code"]

    @pytest.mark.parametrize(
        ("path", "allow"),
        [
            ("/api/media", "GET, POST"),  # two routes share the path
            ("/api/media/0", "DELETE, GET"),
            ("/api/media/0/thumbnail", "GET, HEAD"),
            ("/healthz", "GET"),
        ],
    )
    async def test_405_names_every_allowed_method(
        self, client: httpx.AsyncClient, path: str, allow: str
    ) -> None:
        response = await client.request("OPTIONS", path)
        assert response.status_code == 405
        assert response.headers["allow"] == allow

    async def test_booleans_are_not_guessed(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        for flag in (0, "false", "no"):
            body = {"username": "carol", "password": "a long password", "is_admin": flag}
            response = await client.post("/api/users", json=body, headers=admin_headers)
            assert response.status_code == 422, flag

    async def test_malformed_json_is_422(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        response = await client.post(
            "/api/users",
            content=b"{not json",
            headers={**admin_headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "validation_error"


class TestOperations:
    async def test_start_up_heap_is_frozen_until_shutdown(self, settings: Settings) -> None:
        # A full collection must not scan the ~125k start-up objects under
        # load (a 100 ms pause); a stopped app must give them back.
        gc.unfreeze()  # an app another test started without a lifespan may have frozen
        async with LifespanManager(create_app(settings)):
            assert gc.get_freeze_count() > 50_000
        assert gc.get_freeze_count() == 0

    async def test_health(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    async def test_metrics_are_prometheus_text(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        for name in [
            'mosaic_thumbnail_requests_total{result="hit"}',
            'mosaic_thumbnail_requests_total{result="miss"}',
            'mosaic_thumbnail_requests_total{result="not_modified"}',
            "mosaic_thumbnail_generations_total",
            "mosaic_thumbnail_generation_seconds_bucket",
            "mosaic_thumbnail_cache_errors_total",
        ]:
            assert name in response.text

    async def test_request_id(self, client: httpx.AsyncClient) -> None:
        generated = await client.get("/healthz")
        assert len(generated.headers["x-request-id"]) == 32
        echoed = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
        assert echoed.headers["x-request-id"] == "abc-123"
        hostile = await client.get("/healthz", headers={"X-Request-ID": "a\tb" * 100})
        assert hostile.headers["x-request-id"] != "a\tb" * 100

    async def test_operation_ids_are_readable(self, client: httpx.AsyncClient) -> None:
        spec = (await client.get("/openapi.json")).json()
        ids = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
        assert {"read_thumbnail", "delete_media", "upload_media", "list_media", "login"} <= ids


class TestSettings:
    def test_secret_key_generated_once_with_private_mode(self, tmp_path: Path) -> None:
        settings = Settings(data_dir=tmp_path / "data")
        key = settings.resolved_secret_key()
        path = tmp_path / "data" / "secret_key"
        assert len(key) >= 32
        assert path.stat().st_mode & 0o777 == 0o600
        assert Settings(data_dir=tmp_path / "data").resolved_secret_key() == key
        assert [p.name for p in path.parent.iterdir()] == ["secret_key"]

    def test_defaults(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in ["DATA_DIR", "CACHE_DIR", "DATABASE_URL", "SECRET_KEY"]:
            monkeypatch.delenv(f"MOSAIC_{name}", raising=False)
        settings = Settings()
        assert settings.data_dir == Path("./data")
        assert settings.resolved_cache_dir == Path("./data/cache")
        assert settings.resolved_database_url.endswith("/data/mosaic.db")
        assert settings.max_upload_bytes == 200 * 1024 * 1024
        assert settings.max_pixels == 100_000_000
        assert settings.resolved_workers == len(os.sched_getaffinity(0)) and settings.port == 8000

    def test_environment(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("MOSAIC_DATA_DIR", str(tmp_path))
        monkeypatch.setenv("MOSAIC_MAX_UPLOAD_BYTES", "1234")
        monkeypatch.setenv("MOSAIC_COOKIE_SECURE", "true")
        monkeypatch.setenv("MOSAIC_SECRET_KEY", "")  # empty means unset (compose passes "")
        settings = Settings()
        assert settings.data_dir == tmp_path and settings.max_upload_bytes == 1234
        assert settings.cookie_secure is True and settings.secret_key is None

    def test_placeholder_secret_refused(self) -> None:
        with pytest.raises(ValueError, match="placeholder"):
            Settings(secret_key="changethis")


class TestFrontend:
    async def test_spa_fallback_but_not_for_api(self, settings: Settings, tmp_path: Path) -> None:
        dist = tmp_path / "dist"
        (dist / "assets").mkdir(parents=True)
        (dist / "index.html").write_text("<!doctype html><title>Mosaic</title>")
        (dist / "assets" / "app.js").write_text("console.log('mosaic')")
        app = create_app(settings.model_copy(update={"frontend_dir": dist}))
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert "Mosaic" in (await client.get("/")).text
                assert "Mosaic" in (await client.get("/gallery/some/route")).text
                assert "Mosaic" in (await client.get("/apiary")).text
                assert (await client.get("/assets/app.js")).text == "console.log('mosaic')"
                for path in ["/api/unknown", "/api", "/metrics/x", "/healthz/x"]:
                    response = await client.get(path)
                    assert response.status_code == 404, path
                    assert response.json()["error"]["code"] == "not_found"
                assert (await client.get("/healthz")).json() == {"status": "ok"}
                # With the front end mounted at /, a 405 still names the right methods.
                assert (await client.post("/")).headers["allow"] == "GET, HEAD"
                assert (await client.put("/api/media")).headers["allow"] == "GET, POST"
                # A HEAD on a route that serves only GET reaches the front end's
                # mount: still a 405 naming the route's methods, never a 404.
                for path, allow in [("/healthz", "GET"), ("/api/media", "GET, POST")]:
                    response = await client.head(path)
                    assert (response.status_code, response.headers["allow"]) == (405, allow)
                assert (await client.head("/api/unknown")).status_code == 404
                assert (await client.head("/assets/app.js")).status_code == 200
