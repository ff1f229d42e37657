"""A small ASGI app served by `mosaic.rsgi.RSGIApp` under a real granian, for
tests/test_rsgi.py: each path shows one part of what the bridge gives an app.
Also stand-ins for granian's RSGI scope and protocol, to call `RSGIApp`
in-process (tests/test_rsgi.py, tests/bench).

`MOSAIC_PROBE_LOG` names a file where the lifespan writes what happened.
"""

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from mosaic.rsgi import RSGIApp


def _note(line: str) -> None:
    with Path(os.environ["MOSAIC_PROBE_LOG"]).open("a") as log:
        log.write(line + "\n")


async def _json(send: Send, payload: Any, status: int = 200) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ScopeStandIn:
    """Stands in for granian's RSGI scope (its fields, and headers with `get`)."""

    def __init__(self, method: str, url: str, headers: dict[str, str]) -> None:
        self.proto = "http"
        self.method = method
        self.path, _, self.query_string = url.partition("?")
        self.headers = headers


class ProtocolStandIn:
    """Stands in for granian's RSGI protocol: keeps what `response_bytes` is given."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, list[tuple[str, str]], bytes]] = []

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.answers.append((status, headers, body))


class Probe:
    thumbnails = None  # what RSGIApp asks a MosaicApp for: no shortcut here

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    scope["state"]["greeting"] = "hello"
                    _note("startup")
                    await send({"type": "lifespan.startup.complete"})
                else:
                    _note("shutdown")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await getattr(self, scope["path"].strip("/").replace("-", "_"))(scope, receive, send)

    async def healthz(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _json(send, {"status": "ok"})

    async def echo(self, scope: Scope, receive: Receive, send: Send) -> None:
        digest, size, chunks = hashlib.sha256(), 0, 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                _note(f"echo: http.disconnect after {size} bytes")
                return
            digest.update(message["body"])
            size += len(message["body"])
            chunks += 1
            if not message["more_body"]:
                break
        await _json(
            send,
            {
                "asgi": scope["asgi"],
                "method": scope["method"],
                "path": scope["path"],
                "query_string": scope["query_string"].decode(),
                "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
                "client": scope["client"],
                "server": scope["server"],
                "scheme": scope["scheme"],
                "state": scope["state"],
                "size": size,
                "sha256": digest.hexdigest(),
                "messages": chunks,
            },
        )

    async def stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [
            (b"content-type", b"text/plain"),
            (b"set-cookie", b"a=1"),
            (b"set-cookie", b"b=2"),
        ]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        for n in range(5):
            await send({"type": "http.response.body", "body": b"%d\n" % n, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def boom(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("a bug before answering")

    async def silent(self, scope: Scope, receive: Receive, send: Send) -> None:
        return

    async def start_then_raise(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("a bug after starting, before any body")

    async def start_then_return(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def answer_then_raise(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _json(send, {"answered": True}, status=503)
        raise RuntimeError("raised again after answering, as FastAPI's error middleware does")

    async def disconnect(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Streams until the client goes: the send must then fail with OSError.
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            for _ in range(10_000):
                message: Message = {
                    "type": "http.response.body",
                    "body": b"x" * 65536,
                    "more_body": True,
                }
                await send(message)
        except OSError:
            _note("send failed with OSError")
            raise


def served() -> RSGIApp:
    return RSGIApp(Probe())  # type: ignore[arg-type]  # a MosaicApp in production
