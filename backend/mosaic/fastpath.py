"""Thumbnail requests answered before FastAPI's routing and dependency injection.

A gallery sends hundreds of thumbnail requests per page: nearly all are hits,
and a cold one sends bursts of misses for the same few media. This wrapper,
in front of FastAPI and its middleware (15 of the 40 microseconds a hit took
in the app), answers successful thumbnail requests (hit, 304, or a miss rendered through
the cache's single-flight) from the raw ASGI scope, with the same checks as
the route (`routes/media.py`) through the same functions: the token
(`pick_token`, `TokenIssuer`), the user and ownership (`check_indexed_access`),
the ETag and the render (`thumbnail_answer`). It answers `GET /healthz` too,
with the route's own body: a liveness probe, polled while a gallery renders,
should not pay for FastAPI's routing (0.55 ms of the server's CPU a probe
through it, 0.27 here).
Anything else (any error, any other route, a database other than SQLite) goes
on to the app unchanged, which answers it by the book.

`ThumbnailHits.reply` is the logic, for either server interface: `__call__`
below is the ASGI entry (uvicorn, `MOSAIC_SERVER=granian-asgi`, the tests),
and `mosaic.rsgi` calls `reply` straight from granian's RSGI interface, the
default of `mosaic serve`.
"""

import functools
import logging
import re
import time
from typing import NamedTuple

from starlette.datastructures import State
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from .deps import check_indexed_access
from .errors import AppError, internal_error
from .logs import log_request, request_id
from .routes.media import THUMBNAIL_CACHE_CONTROL, thumbnail_answer
from .security import COOKIE_NAME, pick_token
from .thumbnails import SPECS, ThumbnailError

logger = logging.getLogger("mosaic")
_THUMBNAIL_PATH = re.compile(r"/api/media/([^/]{36})/thumbnail")
_PREFIXES = ("/api/media/", "/healthz")
# The request headers `ThumbnailHits.reply` reads.
WANTED = ("authorization", "cookie", "if-none-match", "x-request-id")
_WANTED = {name.encode() for name in WANTED}
# What `routes/health.py` answers, as FastAPI serializes it.
_HEALTH_BODY = b'{"status":"ok"}'
_INTERNAL_ERROR_BODY = bytes(internal_error().body)


def _size(query: bytes) -> str | None:
    size = "medium"
    for part in query.split(b"&"):
        if part.startswith(b"size="):
            size = part[5:].decode("latin-1")
    return size if size in SPECS else None  # anything odd: the route answers 422


def _cookie(header: str | None) -> str | None:
    if not header or COOKIE_NAME not in header:
        return None
    return _session_cookie(header)


@functools.lru_cache(maxsize=256)
def _session_cookie(header: str) -> str | None:
    # Starlette's parser, as `request.cookies` on the route; a browser sends
    # the same Cookie header with every thumbnail of a page, so it is parsed
    # once (a parse costs more than the rest of a hit).
    return cookie_parser(header).get(COOKIE_NAME)


class _Answer(NamedTuple):
    status: int
    etag: str
    data: bytes


class Reply(NamedTuple):
    """A whole answer, for whichever server interface sends it (ASGI here, RSGI
    in `mosaic.rsgi`)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _thumbnail_reply(answer: _Answer, rid: str) -> Reply:
    headers = [
        ("etag", answer.etag),
        ("cache-control", THUMBNAIL_CACHE_CONTROL),
        ("x-request-id", rid),
    ]
    if answer.status != 200:
        return Reply(answer.status, headers, b"")
    headers += [("content-type", "image/jpeg"), ("content-length", str(len(answer.data)))]
    return Reply(200, headers, answer.data)


def _json_reply(status: int, body: bytes, rid: str) -> Reply:
    headers = [
        ("content-length", str(len(body))),
        ("content-type", "application/json"),
        ("x-request-id", rid),
    ]
    return Reply(status, headers, body)


class ThumbnailHits:
    """Answers thumbnail requests it can, and `GET /healthz`, from the raw scope;
    hands the rest to `app`.

    `MosaicApp` runs it in front of FastAPI's own middleware, so its answers get
    the request id and the log line that `RequestLogMiddleware` gives the rest
    (and `mosaic.rsgi.RSGIApp` in front of the ASGI bridge).
    """

    def __init__(self, app: ASGIApp, state: State) -> None:
        self.app = app
        # Looked up once: `state.x` is a Python-level __getattr__ per access.
        self.access = state.access
        self.tokens = state.tokens
        self.settings = state.settings
        self.cache = state.cache
        self.metrics = state.metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.takes(scope["method"], scope["path"]):
            headers = {k.decode(): v.decode("latin-1") for k, v in scope["headers"] if k in _WANTED}
            reply = await self.reply(
                scope["method"], scope["path"], scope.get("query_string", b""), headers
            )
            if reply is not None:
                raw = [(k.encode(), v.encode("latin-1")) for k, v in reply.headers]
                await send({"type": "http.response.start", "status": reply.status, "headers": raw})
                body = reply.body if scope["method"] == "GET" else b""
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    @staticmethod
    def takes(method: str, path: str) -> bool:
        """Whether `reply` may answer: cheap, so that other requests lose nothing."""
        return method in ("GET", "HEAD") and path.startswith(_PREFIXES)

    async def reply(
        self, method: str, path: str, query: bytes, headers: dict[str, str]
    ) -> Reply | None:
        """The answer to a request, or None to hand it on. `headers` holds the
        request's headers named in `WANTED` (lower-case names)."""
        started = time.perf_counter()
        if path == "/healthz":
            if method != "GET":
                return None
            rid = request_id(headers.get("x-request-id", ""))
            reply = _json_reply(200, _HEALTH_BODY, rid)
        else:
            match = _THUMBNAIL_PATH.fullmatch(path)
            if match is None:
                return None  # another media route: no request id made for nothing
            rid = request_id(headers.get("x-request-id", ""))
            try:
                answer = await self._answer(method, query, match.group(1), headers)
            except Exception:
                # A bug, not a refusal. Answered here, as FastAPI's handler would
                # (nothing has been sent yet): handing it on would run it twice.
                logger.exception("unhandled error")
                reply = _json_reply(500, _INTERNAL_ERROR_BODY, rid)
            else:
                if answer is None:
                    return None
                reply = _thumbnail_reply(answer, rid)
        log_request(method, path, rid, reply.status, started)
        return reply

    async def _answer(
        self, method: str, query: bytes, media_id: str, headers: dict[str, str]
    ) -> _Answer | None:
        size = _size(query)
        if size is None or not self.access.available:
            return None
        try:
            token = pick_token(
                method, headers.get("authorization"), _cookie(headers.get("cookie")), None
            )
        except AppError:
            return None  # the route answers 401 with the same rule
        user_id = self.tokens.subject(token)
        if user_id is None:
            return None
        try:
            media = check_indexed_access(self.access, user_id, media_id)
        except AppError:
            return None  # the route answers 401/404 with the same checks
        try:
            status, etag, data = await thumbnail_answer(
                headers.get("if-none-match"),
                media,
                SPECS[size],
                self.settings,
                self.cache,
                self.metrics,
            )
        except ThumbnailError:
            return None  # the route answers 404/415/422/503 for it
        return _Answer(status, etag, data)
