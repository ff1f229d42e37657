"""Mosaic under granian's RSGI interface, the default for `mosaic serve`.

granian speaks ASGI by building a scope dict and a pair of awaitable
callables for every request; its native interface, RSGI, hands over a scope
object whose fields are read on demand and a protocol object whose
`response_bytes` is a plain call. For a thumbnail hit, whose own work is a few
tens of microseconds, that saving shows: with two workers, a median 95 against
83 microseconds of server CPU per hit and 17,400 against 19,600 hits/s over six
fresh servers of each (docs/performance.md, target 1).

So thumbnail requests and `GET /healthz` are answered here by
`ThumbnailHits.reply`, the same checks and answer as under ASGI, and every
other request goes to the ASGI app through `asgi_bridge` below: the app stays
an ASGI app (uvicorn and the tests run it as one), only the server's side of
the protocol is written here. What the bridge gives the app:

- the scope of ASGI 3.0, HTTP spec 2.4: `raw_path` is left out (RSGI gives the
  path decoded only; the spec allows it), and a request header whose value is
  not UTF-8 never reaches Python (granian drops it under RSGI);
- the request body streamed as it arrives, then `http.disconnect` once the
  client has gone (RSGI ends a body that a client cut short as if it were
  whole: one shorter than its Content-Length becomes `http.disconnect` here,
  and the upload route checks the multipart body's closing boundary itself);
- the response sent whole with one call when it comes in one message, or
  streamed as it is produced; RSGI takes header values as text and sends them
  as UTF-8, so a non-ASCII byte that an ASGI app encoded as latin-1 goes out as
  its UTF-8 form (Mosaic's own response headers are ASCII); a send to a client
  that has gone raises `OSError`, as spec 2.4 asks (so Starlette's responses
  need no task of their own watching for the disconnect);
- a JSON 500 when the app fails, or returns, before anything has been sent;
  the lifespan's start-up before the worker takes requests, and its shutdown
  after the last one.
"""

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from granian.rsgi import ProtocolClosed  # type: ignore[attr-defined]  # re-exported there
from granian.rsgi import Scope as RSGIScope
from starlette.types import ASGIApp, Message

from .errors import internal_error
from .fastpath import WANTED

if TYPE_CHECKING:
    from .main import MosaicApp

logger = logging.getLogger("mosaic")

_ASGI = {"version": "3.0", "spec_version": "2.4"}
_INTERNAL_ERROR = internal_error()
_INTERNAL_ERROR_HEADERS = [(k.decode(), v.decode()) for k, v in _INTERNAL_ERROR.raw_headers]


def _address(value: str | None) -> tuple[str, int] | None:
    # "127.0.0.1:8000", "[::1]:8000"
    if not value:
        return None
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


def _content_length(scope: RSGIScope) -> int | None:
    value = scope.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


class Lifespan:
    """Drives an ASGI app's lifespan from outside a running loop: `startup`
    and `shutdown` are coroutines for `loop.run_until_complete`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._outbox: asyncio.Queue[Message | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": _ASGI, "state": self.state}
        try:
            await self.app(scope, self._inbox.get, self._outbox.put)
        finally:
            await self._outbox.put(None)  # returned or raised: no more answers

    async def _event(self, name: str) -> None:
        await self._inbox.put({"type": f"lifespan.{name}"})
        answer = await self._outbox.get()
        if answer is None:
            assert self._task is not None
            await self._task  # its exception, if it raised
            raise RuntimeError(f"the app stopped during lifespan.{name}")
        if answer["type"] != f"lifespan.{name}.complete":
            raise RuntimeError(f"lifespan.{name} failed: {answer.get('message', '')}")

    async def startup(self) -> None:
        self._task = asyncio.create_task(self._run())
        await self._event("startup")

    async def shutdown(self) -> None:
        if self._task is None or self._task.done():
            return
        await self._event("shutdown")
        await self._task


async def asgi_bridge(app: ASGIApp, state: dict[str, Any], scope: RSGIScope, proto: Any) -> None:
    """Serve one RSGI HTTP request with an ASGI app."""
    asgi_scope = {
        "type": "http",
        "asgi": _ASGI,
        "http_version": scope.http_version,
        "method": scope.method,
        "scheme": scope.scheme,
        "path": scope.path,
        "query_string": scope.query_string.encode(),
        "root_path": "",
        "headers": [(k.encode("latin-1"), v.encode()) for k, v in scope.headers.items()],
        "client": _address(scope.client),
        "server": _address(scope.server),
        "state": state.copy(),
    }
    chunks = aiter(proto)
    declared = _content_length(scope)
    received = 0
    body_done = False

    async def receive() -> Message:
        nonlocal body_done, received
        if not body_done:
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                body_done = True
                if declared is not None and received < declared:
                    # RSGI ends a body cut short by a client that went away as
                    # if it were whole; ASGI says what happened.
                    return {"type": "http.disconnect"}
                return {"type": "http.request", "body": b"", "more_body": False}
            received += len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": True}
        await proto.client_disconnect()
        return {"type": "http.disconnect"}

    status = 0
    headers: list[tuple[str, str]] = []
    stream: Any = None
    finished = False

    async def send(message: Message) -> None:
        nonlocal status, headers, stream, finished
        kind = message["type"]
        if kind == "http.response.start":
            if status:
                raise RuntimeError("http.response.start sent twice")
            status = message["status"]
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message["headers"]]
            return
        if kind != "http.response.body":
            raise RuntimeError(f"unexpected ASGI message {kind!r}")
        if not status or finished:
            raise RuntimeError("http.response.body out of order")
        body = bytes(message.get("body", b""))
        more = message.get("more_body", False)
        try:
            if stream is None and not more:
                proto.response_bytes(status, headers, body)
            else:
                if stream is None:
                    stream = proto.response_stream(status, headers)
                if body:
                    await stream.send_bytes(body)
        except ProtocolClosed as exc:
            raise OSError("the client has gone") from exc
        finished = not more

    try:
        await app(asgi_scope, receive, send)
    except Exception:
        if stream is not None or finished:
            # The app answered (FastAPI's error middleware sends its 500, then
            # raises again for the server) or the client went away mid-response.
            logger.debug("the app raised after answering", exc_info=True)
            return
        # Nothing has gone out yet, not even a started response's status line.
        logger.exception("the app raised before answering")
        _internal_error(proto)
        return
    if stream is None and not finished:
        logger.error("the app returned without answering %s %s", scope.method, scope.path)
        _internal_error(proto)


def _internal_error(proto: Any) -> None:
    proto.response_bytes(500, _INTERNAL_ERROR_HEADERS, bytes(_INTERNAL_ERROR.body))


class RSGIApp:
    """Serves the app over RSGI; thumbnail requests and `GET /healthz` are
    answered by its `ThumbnailHits` (once start-up has made it) without the
    ASGI detour."""

    def __init__(self, app: "MosaicApp") -> None:
        self.app = app
        self.lifespan = Lifespan(app)

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.lifespan.startup())

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.lifespan.shutdown())

    async def __rsgi__(self, scope: RSGIScope, proto: Any) -> None:
        if scope.proto != "http":  # websockets: `mosaic serve` turns them off
            proto.close(1008)
            return
        hits = self.app.thumbnails
        if hits is not None and hits.takes(scope.method, scope.path):
            found = scope.headers
            headers = {name: value for name in WANTED if (value := found.get(name)) is not None}
            query = scope.query_string.encode()
            reply = await hits.reply(scope.method, scope.path, query, headers)
            if reply is not None:
                proto.response_bytes(reply.status, reply.headers, reply.body)
                return
        await asgi_bridge(self.app, self.lifespan.state, scope, proto)
