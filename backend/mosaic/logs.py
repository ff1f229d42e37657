"""JSON log lines and a request log with a request id."""

import json
import logging
import os
import re
import sys
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_logger = logging.getLogger("mosaic.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("mosaic")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def request_id(incoming: str) -> str:
    """The client's X-Request-ID when it is a plain token, else a new one."""
    return incoming if _REQUEST_ID.match(incoming) else os.urandom(16).hex()


def scope_request_id(scope: Scope) -> str:
    """`request_id` for the X-Request-ID header of a raw ASGI scope."""
    return request_id(dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1"))


def log_request(method: str, path: str, request_id: str, status: int, started: float) -> None:
    """One access log line for a response (INFO; off at WARNING)."""
    if access_logger.isEnabledFor(logging.INFO):
        access_logger.info(
            "request",
            extra={
                "fields": {
                    "request_id": request_id,
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                }
            },
        )


class RequestLogMiddleware:
    """Give every request an id (X-Request-ID, echoed back) and log one line per response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = scope_request_id(scope)
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log_request(scope["method"], scope["path"], rid, status, started)
