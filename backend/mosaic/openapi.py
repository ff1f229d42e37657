"""What the OpenAPI document says beyond the handlers' signatures: every error
each route can answer, in the one error shape, and how requests authenticate.

Schemathesis checks the app against this document (tests/test_schemathesis.py),
so a status or body missing here is a failing test, not a doc nit.
"""

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from .security import COOKIE_NAME

Responses = dict[int | str, dict[str, Any]]


class ErrorDetail(BaseModel):
    code: str = Field(description="A stable snake_case code, e.g. media_not_found.")
    message: str = Field(description="A sentence for people.")


class ErrorBody(BaseModel):
    error: ErrorDetail


_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"cookie": []}]
_SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    "cookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": COOKIE_NAME,
        "description": "Unsafe methods also need the header `X-Requested-With: mosaic`.",
    },
}


def errors(*statuses: int) -> Responses:
    """`responses=` entries for these error statuses, all with the error body."""
    return {
        status: {"model": ErrorBody, "description": HTTPStatus(status).phrase}
        for status in statuses
    }


def authenticated(
    *statuses: int, responses: Responses | None = None, openapi_extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Route keywords for an endpoint that needs a signed-in user: 401 without
    one, 422 for a malformed request, plus the route's own error `statuses`,
    success `responses` and `openapi_extra`."""
    return {
        "responses": {**errors(401, 422, *statuses), **(responses or {})},
        "openapi_extra": {"security": _SECURITY, **(openapi_extra or {})},
    }


def binary(*content_types: str, description: str) -> dict[str, Any]:
    """A response (or request body) of raw bytes in one of `content_types`."""
    schema = {"type": "string", "format": "binary"}
    return {
        "description": description,
        "content": {content_type: {"schema": schema} for content_type in content_types},
    }


def install(app: FastAPI) -> None:
    """Add the security schemes to the document FastAPI builds (once, on first use)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {})["securitySchemes"] = _SECURITY_SCHEMES
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]
