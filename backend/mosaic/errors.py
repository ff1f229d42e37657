"""One error shape for every failure: {"error": {"code": ..., "message": ...}}."""

import logging
from collections.abc import Mapping
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount
from starlette.types import Scope

from .thumbnails import (
    Overloaded,
    SourceMissing,
    TooManyPixels,
    TooSlow,
    Unrenderable,
    UnsupportedFormat,
)

logger = logging.getLogger("mosaic")


class AppError(Exception):
    """An expected failure with its HTTP status, a snake_case code and a human message."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.headers = headers


def error_response(
    status_code: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status_code, headers=headers
    )


def _code_for_status(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return error_response(exc.status_code, exc.code, exc.message, exc.headers)


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def route_methods(app: Starlette, scope: Scope) -> list[str]:
    """Every method some API route serves at the scope's path (the front end's
    mount aside). Starlette's 405 names only the first route whose path
    matched, while GET and POST /api/media are two."""
    routes = [route for route in app.router.routes if not isinstance(route, Mount)]
    return [
        method
        for method in _METHODS
        if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in routes)
    ]


def _allowed_methods(request: Request) -> str:
    # Without an API route the 405 came from the static front end: GET and HEAD.
    return ", ".join(route_methods(request.app, request.scope) or ["GET", "HEAD"])


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        message = "Not found"
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return error_response(exc.status_code, _code_for_status(exc.status_code), message, headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        parts.append(f"{location}: {error.get('msg', 'invalid')}" if location else error["msg"])
    return error_response(422, "validation_error", "; ".join(parts) or "Invalid request")


async def _thumbnail_error(_: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, Overloaded):
        # Renders take tens of milliseconds: a second is plenty to drain a queue.
        return error_response(
            503,
            "overloaded",
            "Too many thumbnails are being made; retry shortly",
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, SourceMissing):
        return error_response(404, "media_not_found", "Media not found")
    if isinstance(exc, UnsupportedFormat):
        return error_response(415, "unsupported_media_type", str(exc))
    if isinstance(exc, TooManyPixels):
        return error_response(422, "image_too_large", str(exc))
    if isinstance(exc, TooSlow):
        return error_response(422, "image_too_slow", str(exc))
    return error_response(422, "unprocessable_image", str(exc))


def internal_error(headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The answer to a bug: no detail leaves the server (the log has it)."""
    return error_response(500, "internal_error", "Internal server error", headers)


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", exc_info=exc)
    return internal_error()


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for exc_type in (Overloaded, SourceMissing, Unrenderable):
        app.add_exception_handler(exc_type, _thumbnail_error)
    app.add_exception_handler(Exception, _unexpected_error)
