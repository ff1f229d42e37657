"""Thumbnail hits and 304s answered before FastAPI's routing and dependency injection.

A gallery sends hundreds of thumbnail requests per page and nearly all of
them are hits. This middleware answers exactly those, applying the same
checks as the route (`routes/media.py`): the token, the user, ownership, the
ETag. Anything else (a miss, any error, any other route, a database other
than SQLite) goes on to the app unchanged, which answers it by the book.
"""

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .deps import indexed_media_ref
from .errors import AppError
from .routes.media import cached_thumbnail_response
from .thumbnails import SPECS

_THUMBNAIL_PATH = re.compile(r"/api/media/([^/]{36})/thumbnail")


class ThumbnailHits:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            match = _THUMBNAIL_PATH.fullmatch(scope["path"])
            if match is not None and scope["app"].state.access.available:
                response = self._answer(Request(scope, receive), match.group(1))
                if response is not None:
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    @staticmethod
    def _answer(request: Request, media_id: str) -> Response | None:
        spec = SPECS.get(request.query_params.get("size", "medium"))
        if spec is None:
            return None  # the route answers 422
        try:
            media = indexed_media_ref(request, media_id)
        except AppError:
            return None  # the route answers 401/403/404 with the same checks
        state = request.app.state
        return cached_thumbnail_response(request, media, spec, state.cache, state.metrics)
