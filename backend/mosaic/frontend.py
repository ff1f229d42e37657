"""Serve the built single-page app, with client routes falling back to index.html."""

from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from .errors import route_methods

# Paths that belong to the server: an unknown one is a JSON 404, never the app shell.
_SERVER_ROOTS = ("api", "healthz", "readyz", "metrics", "docs", "redoc", "openapi.json")


def _is_server_path(path: str) -> bool:
    first = path.lstrip("/").split("/", 1)[0]
    return first in _SERVER_ROOTS


class SinglePageApp(StaticFiles):
    def __init__(self, directory: Path) -> None:
        super().__init__(directory=directory, html=True, check_dir=False)

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            return await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404:
                raise
            if _is_server_path(path):
                # This mount takes every path and method the routes before it
                # did not: a path some route serves only lands here for a method
                # that route does not serve (a HEAD: FastAPI's routes do not add
                # it). That is a 405 naming the route's methods, not a 404.
                if route_methods(scope["app"], scope):
                    raise HTTPException(405) from exc
                raise
            return await super().get_response("index.html", scope)
