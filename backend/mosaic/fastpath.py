"""Thumbnail requests answered before FastAPI's routing and dependency injection.

A gallery sends hundreds of thumbnail requests per page: nearly all are hits,
and a cold one sends bursts of misses for the same few media. This middleware
answers successful thumbnail requests (hit, 304, or a miss rendered through
the cache's single-flight) from the raw ASGI scope, with the same checks as
the route (`routes/media.py`) through the same functions: the token
(`pick_token`, `TokenIssuer`), the user and ownership (`check_indexed_access`),
the ETag and the render (`thumbnail_answer`). Anything else (any error, any other route, a
database other than SQLite) goes on to the app unchanged, which answers it
by the book.
"""

import re
from http.cookies import SimpleCookie

from starlette.types import ASGIApp, Receive, Scope, Send

from .deps import check_indexed_access
from .errors import AppError
from .routes.media import THUMBNAIL_CACHE_CONTROL, thumbnail_answer
from .security import COOKIE_NAME, pick_token
from .thumbnails import SPECS, ThumbnailError

_THUMBNAIL_PATH = re.compile(r"/api/media/([^/]{36})/thumbnail")
_CACHE_CONTROL = THUMBNAIL_CACHE_CONTROL.encode()
_WANTED = {b"authorization", b"cookie", b"if-none-match"}


def _size(query: bytes) -> str | None:
    size = "medium"
    for part in query.split(b"&"):
        if part.startswith(b"size="):
            size = part[5:].decode("latin-1")
    return size if size in SPECS else None  # anything odd: the route answers 422


def _cookie(header: str | None) -> str | None:
    if not header or COOKIE_NAME not in header:
        return None
    morsel = SimpleCookie(header).get(COOKIE_NAME)
    return morsel.value if morsel is not None else None


class ThumbnailHits:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            match = _THUMBNAIL_PATH.fullmatch(scope["path"])
            if match is not None and await self._answer(scope, match.group(1), send):
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, media_id: str, send: Send) -> bool:
        state = scope["app"].state
        size = _size(scope["query_string"])
        if size is None or not state.access.available:
            return False
        headers = {k.decode(): v.decode("latin-1") for k, v in scope["headers"] if k in _WANTED}
        try:
            token = pick_token(
                scope["method"], headers.get("authorization"), _cookie(headers.get("cookie")), None
            )
        except AppError:
            return False  # the route answers 401 with the same rule
        user_id = state.tokens.subject(token)
        if user_id is None:
            return False
        try:
            media = check_indexed_access(state.access, user_id, media_id)
        except AppError:
            return False  # the route answers 401/404 with the same checks
        try:
            status, etag, data = await thumbnail_answer(
                headers.get("if-none-match"),
                media,
                SPECS[size],
                state.settings,
                state.cache,
                state.metrics,
            )
        except ThumbnailError:
            return False  # the route answers 404/415/422/503 for it
        raw = [(b"etag", etag.encode()), (b"cache-control", _CACHE_CONTROL)]
        if status == 200:
            raw += [(b"content-type", b"image/jpeg"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        body = data if scope["method"] == "GET" else b""
        await send({"type": "http.response.body", "body": body})
        return True
