"""The fast answers to "who may see which media" stay correct when the database changes."""

import logging
import sqlite3
import time
import uuid

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from mosaic.access import AccessIndex
from mosaic.config import Settings
from mosaic.fastpath import ThumbnailHits
from mosaic.main import MosaicApp, create_app
from mosaic.security import TokenIssuer
from tests.conftest import UserFactory, upload
from tests.images import encode, quadrants

pytestmark = pytest.mark.anyio


def database(settings: Settings) -> sqlite3.Connection:
    return sqlite3.connect(settings.data_dir / "mosaic.db")


class TestTokenMemory:
    def test_remembered_tokens_still_expire(self, monkeypatch: pytest.MonkeyPatch) -> None:
        issuer = TokenIssuer("k" * 40, minutes=1)
        user_id = uuid.uuid4()
        token = issuer.issue(user_id)
        assert issuer.subject(token) == user_id
        assert issuer.subject(token) == user_id  # from memory
        later = time.time() + 61
        monkeypatch.setattr(time, "time", lambda: later)
        assert issuer.subject(token) is None

    def test_memory_is_bounded_and_keeps_no_invalid_token(self) -> None:
        issuer = TokenIssuer("k" * 40, minutes=5, remember=3)
        tokens = [issuer.issue(uuid.uuid4()) for _ in range(5)]
        for token in tokens:
            assert issuer.subject(token) is not None
        assert issuer.subject("not.a.token") is None
        assert len(issuer._verified) == 3
        assert "not.a.token" not in issuer._verified

    def test_warming_up_remembers_no_token(self) -> None:
        issuer = TokenIssuer("k" * 40, minutes=5)
        issuer.warm()
        assert len(issuer._verified) == 0


class TestAccessIndex:
    async def test_sees_changes_from_other_connections(
        self, app: FastAPI, settings: Settings, client: httpx.AsyncClient, alice: dict[str, str]
    ) -> None:
        index: AccessIndex = app.state.access
        assert index.available
        assert index._connection is not None  # opened by the start-up, not by a request
        media = (await upload(client, alice, encode(quadrants(), "JPEG"))).json()
        owner = uuid.UUID(database(settings).execute("SELECT owner_id FROM media").fetchone()[0])
        viewer, ref = index.lookup(owner, media["id"])
        assert viewer is not None and not viewer.is_admin
        assert ref is not None and ref.sha256 == media["sha256"]
        assert ref.id == uuid.UUID(media["id"])
        with database(settings) as connection:
            connection.execute("DELETE FROM media")
        assert index.lookup(owner, media["id"])[1] is None
        with database(settings) as connection:
            connection.execute("DELETE FROM users WHERE id = ?", (owner.hex,))
        assert index.lookup(owner, None)[0] is None

    async def test_ids_by_their_spelling(
        self, app: FastAPI, settings: Settings, client: httpx.AsyncClient, alice: dict[str, str]
    ) -> None:
        """Media are cached under the id's text: upper case finds the same media,
        and malformed ids are refused without taking a place in the cache."""
        index: AccessIndex = app.state.access
        media = (await upload(client, alice, encode(quadrants(), "JPEG"))).json()
        owner = uuid.UUID(database(settings).execute("SELECT owner_id FROM media").fetchone()[0])
        ref = index.lookup(owner, media["id"])[1]
        assert ref is not None
        assert index.lookup(owner, media["id"].upper())[1] is ref
        cached = len(index._media)
        for bad in (media["id"].replace("-", ""), "{" + media["id"][1:-1] + "}", "x" * 36):
            assert index.lookup(owner, bad)[1] is None
        assert len(index._media) == cached

    def test_not_available_for_other_databases(self) -> None:
        other = AccessIndex("postgresql+asyncpg://u@127.0.0.1/db")
        assert not other.available
        other.warm()  # nothing to open
        assert not AccessIndex("sqlite+aiosqlite:///:memory:").available


class TestThumbnailHitsStayChecked:
    async def test_deleted_user_and_deleted_row_are_refused_after_hits(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        create_user: UserFactory,
    ) -> None:
        carol = await create_user("carol")
        media = (await upload(client, carol, encode(quadrants(), "JPEG"))).json()
        for _ in range(3):  # warm every cache on the way
            assert (await client.get(media["thumbnail_url"], headers=carol)).status_code == 200
        # Another connection (another worker, an admin tool) removes the row.
        with database(settings) as connection:
            connection.execute("DELETE FROM media WHERE id = ?", (uuid.UUID(media["id"]).hex,))
        assert (await client.get(media["thumbnail_url"], headers=carol)).status_code == 404

        other = (await upload(client, carol, encode(quadrants(), "PNG"))).json()
        assert (await client.get(other["thumbnail_url"], headers=carol)).status_code == 200
        with database(settings) as connection:
            connection.execute("DELETE FROM users WHERE username = 'carol'")
        response = await client.get(other["thumbnail_url"], headers=carol)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "not_authenticated"

    async def test_hit_headers_match_the_route(
        self, client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
    ) -> None:
        media = (await upload(client, alice, encode(quadrants(), "JPEG"))).json()
        miss = await client.get(media["thumbnail_url"], headers=alice)  # answered by the route
        hit = await client.get(media["thumbnail_url"], headers=alice)  # answered before routing
        assert hit.content == miss.content
        for name in ("etag", "cache-control", "content-type", "content-length"):
            assert hit.headers[name] == miss.headers[name], name
        assert (await client.get(media["thumbnail_url"], headers=bob)).status_code == 404
        assert (await client.get(media["thumbnail_url"])).status_code == 401
        bad = await client.get(media["thumbnail_url"], params={"size": "huge"}, headers=alice)
        assert bad.status_code == 422


class TestThumbnailHitsAnswersAlone:
    """The fast path really answers hits and 304s itself, and nothing else."""

    async def test_hit_304_and_fall_through(
        self, app: FastAPI, client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
    ) -> None:
        media = (await upload(client, alice, encode(quadrants(), "JPEG"))).json()
        warm = await client.get(media["thumbnail_url"], headers=alice)
        reached_app: list[str] = []

        async def downstream(scope: Scope, receive: Receive, send: Send) -> None:
            reached_app.append(scope["path"])

        hits = ThumbnailHits(downstream, app.state)
        path, _, query = media["thumbnail_url"].partition("?")

        async def call(
            headers: dict[str, str], method: str = "GET", qs: str = query
        ) -> list[Message]:
            sent: list[Message] = []

            async def receive() -> Message:
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message: Message) -> None:
                sent.append(message)

            scope = {
                "type": "http",
                "method": method,
                "path": path,
                "query_string": qs.encode(),
                "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
                "app": app,
            }
            await hits(scope, receive, send)
            return sent

        hit = await call(alice)
        assert hit[0]["status"] == 200 and hit[1]["body"] == warm.content
        head = await call(alice, method="HEAD")
        assert head[0]["status"] == 200 and head[1]["body"] == b""
        assert (b"content-length", str(len(warm.content)).encode()) in head[0]["headers"]
        token = alice["Authorization"].split()[1]
        by_cookie = await call({"Cookie": f"mosaic_session={token}"})
        assert by_cookie[0]["status"] == 200
        # Among other cookies, one of them malformed, as the route reads it.
        crowded = await call({"Cookie": f'theme=dark; odd"one; mosaic_session={token}; x=1'})
        assert crowded[0]["status"] == 200
        revalidated = await call({**alice, "If-None-Match": warm.headers["etag"]})
        assert revalidated[0]["status"] == 304 and revalidated[1]["body"] == b""
        assert reached_app == []

        # A miss renders through the cache's single-flight, here too.
        large = await call(alice, qs="size=large")
        assert large[0]["status"] == 200 and large[1]["body"].startswith(b"\xff\xd8")
        assert reached_app == []

        unsigned = token.rsplit(".", 1)[0] + "." + "A" * 43  # a signature of zeros
        forged = {"Cookie": f"theme=dark; mosaic_session={unsigned}"}
        for headers, qs in [(bob, query), ({}, query), (forged, query), (alice, "size=huge")]:
            assert await call(headers, qs=qs) == []  # 404, 401, 401, 422: the app answers
        settings: Settings = app.state.settings
        (settings.originals_dir / media["id"]).unlink()
        assert await call(alice, qs="size=small") == []  # the source is gone: the app's 404
        assert len(reached_app) == 5


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class TestThumbnailShortcut:
    """Thumbnail requests answered in front of FastAPI keep what its middleware gives the rest."""

    async def test_request_id_and_log_line(
        self, app: FastAPI, client: httpx.AsyncClient, alice: dict[str, str]
    ) -> None:
        assert isinstance(app, MosaicApp) and app.thumbnails is not None
        media = (await upload(client, alice, encode(quadrants(), "JPEG"))).json()
        handler = _Collect()
        access = logging.getLogger("mosaic.access")
        access.addHandler(handler)
        try:
            echoed = await client.get(
                media["thumbnail_url"], headers={**alice, "X-Request-ID": "abc-123"}
            )
            generated = await client.get(media["thumbnail_url"], headers=alice)
        finally:
            access.removeHandler(handler)
        assert echoed.status_code == generated.status_code == 200
        assert echoed.headers["x-request-id"] == "abc-123"
        assert len(generated.headers["x-request-id"]) == 32
        fields = [line.__dict__["fields"] for line in handler.records]
        assert [(f["request_id"], f["status"]) for f in fields] == [
            ("abc-123", 200),
            (generated.headers["x-request-id"], 200),
        ]
        assert fields[0]["path"] == media["thumbnail_url"].partition("?")[0]

    async def test_an_unexpected_error_still_gets_the_json_500(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        alice: dict[str, str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        media = (await upload(client, alice, encode(quadrants(), "JPEG"))).json()

        calls: list[object] = []

        def broken(*args: object) -> None:
            calls.append(args)
            raise RuntimeError("a bug in the cache")

        monkeypatch.setattr(app.state.cache, "read", broken)
        response = await client.get(
            media["thumbnail_url"], headers={**alice, "X-Request-ID": "bug-1"}
        )
        assert response.status_code == 500
        assert response.json()["error"]["code"] == "internal_error"
        assert response.headers["x-request-id"] == "bug-1"
        assert len(calls) == 1  # answered, not handed on to run again

    async def test_steps_aside_when_fastapi_traces_requests(
        self, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        app = create_app(settings)
        monkeypatch.setattr(app._native_telemetry, "enabled", lambda: True)
        async with LifespanManager(app):
            assert isinstance(app, MosaicApp) and app.thumbnails is None


class TestHealthShortcut:
    """`GET /healthz` is answered in front of FastAPI, as its route answers it."""

    async def test_same_answer_as_the_route(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        assert isinstance(app, MosaicApp) and app.thumbnails is not None
        route = httpx.ASGITransport(app=app.by_the_book)
        async with httpx.AsyncClient(transport=route, base_url="http://mosaic.test") as book:
            expected = await book.get("/healthz", headers={"X-Request-ID": "probe-1"})
        handler = _Collect()
        access = logging.getLogger("mosaic.access")
        access.addHandler(handler)
        try:
            answered = await client.get("/healthz", headers={"X-Request-ID": "probe-1"})
        finally:
            access.removeHandler(handler)
        assert answered.status_code == expected.status_code == 200
        assert answered.content == expected.content
        assert sorted(answered.headers.multi_items()) == sorted(expected.headers.multi_items())
        fields = [line.__dict__["fields"] for line in handler.records]
        assert [(f["request_id"], f["path"], f["status"]) for f in fields] == [
            ("probe-1", "/healthz", 200)
        ]

    async def test_only_get_is_answered_before_fastapi(self, app: FastAPI) -> None:
        reached_app: list[tuple[str, str]] = []

        async def downstream(scope: Scope, receive: Receive, send: Send) -> None:
            reached_app.append((scope["method"], scope["path"]))

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        hits = ThumbnailHits(downstream, app.state)
        answered: list[int] = []

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered.append(message["status"])

        for method, path in [("GET", "/healthz"), ("HEAD", "/healthz"), ("GET", "/healthz/x")]:
            scope = {"type": "http", "method": method, "path": path, "headers": []}
            await hits(scope, receive, send)
        assert answered == [200]
        assert reached_app == [("HEAD", "/healthz"), ("GET", "/healthz/x")]
