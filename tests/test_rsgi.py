"""`mosaic.rsgi`: an ASGI app served over granian's RSGI interface, through a
real granian process (`tests/rsgi_probe.py` is the app), and Mosaic itself
under `mosaic serve`, which uses it."""

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from starlette.types import Receive, Scope, Send

from mosaic import rsgi
from mosaic.main import MosaicApp
from mosaic.rsgi import Lifespan, RSGIApp
from tests.conftest import files_under, upload, wait_until
from tests.images import encode, quadrants
from tests.live_server import LiveServer, free_port, healthy_within
from tests.rsgi_probe import ProtocolStandIn, ScopeStandIn

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "rsgi-test-password"


class Probe:
    def __init__(self, log: Path) -> None:
        self.log = log
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "granian", "--interface", "rsgi", "--factory", "--no-ws"]
        command += ["--host", "127.0.0.1", "--port", str(port), "tests.rsgi_probe:served"]
        env = {**os.environ, "MOSAIC_PROBE_LOG": str(log)}
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if not healthy_within(self.url, seconds=30):
            self.stop()
            raise AssertionError("granian did not start")

    def notes(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Probe]:
    server = Probe(tmp_path_factory.mktemp("rsgi") / "notes")
    try:
        yield server
    finally:
        server.stop()


def test_request_reaches_the_app_as_asgi(probe: Probe) -> None:
    body = os.urandom(3 * 1024 * 1024 + 7)

    def chunked() -> Iterator[bytes]:  # no Content-Length: sent as it comes
        for start in range(0, len(body), 256 * 1024):
            yield body[start : start + 256 * 1024]

    response = httpx.post(
        f"{probe.url}/echo?x=1%202&y=%2F",
        content=chunked(),
        headers=[("X-Dup", "1"), ("X-Dup", "2")],
        timeout=30,
    )
    seen = response.json()
    assert response.status_code == 200
    assert seen["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert (seen["method"], seen["path"], seen["scheme"]) == ("POST", "/echo", "http")
    assert seen["query_string"] == "x=1%202&y=%2F"  # as sent, not decoded
    assert [v for k, v in seen["headers"] if k == "x-dup"] == ["1", "2"]
    assert seen["client"][0] == "127.0.0.1" and isinstance(seen["client"][1], int)
    assert seen["server"] == ["127.0.0.1", int(probe.url.rsplit(":", 1)[1])]
    assert seen["state"] == {"greeting": "hello"}  # the lifespan's state, per request
    assert seen["size"] == len(body)
    assert seen["sha256"] == hashlib.sha256(body).hexdigest()
    assert seen["messages"] >= 2  # streamed in, not read whole first


def test_percent_encoded_path_arrives_decoded(probe: Probe) -> None:
    response = httpx.get(f"{probe.url}/ech%6F")
    assert response.json()["path"] == "/echo"


def test_streamed_response_keeps_repeated_headers(probe: Probe) -> None:
    with httpx.stream("GET", f"{probe.url}/stream") as response:
        assert response.status_code == 201
        assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
        assert "content-length" not in response.headers
        assert response.read() == b"0\n1\n2\n3\n4\n"


def test_failures_become_json_500_and_answers_stand(probe: Probe) -> None:
    # Nothing went out in any of these (a started response's status line is
    # sent with its first body): the client gets the JSON 500.
    for path in ("/boom", "/silent", "/start-then-raise", "/start-then-return"):
        response = httpx.get(f"{probe.url}{path}")
        assert response.status_code == 500, path
        assert response.json()["error"]["code"] == "internal_error"
    response = httpx.get(f"{probe.url}/answer-then-raise")
    assert (response.status_code, response.json()) == (503, {"answered": True})


def test_send_to_a_client_that_has_gone_raises_oserror(probe: Probe) -> None:
    with httpx.stream("GET", f"{probe.url}/disconnect") as response:
        assert response.status_code == 200
        next(response.iter_bytes())
    wait_until(lambda: "send failed with OSError" in probe.notes(), seconds=10)
    assert "send failed with OSError" in probe.notes()


def test_lifespan_starts_before_requests_and_shuts_down_on_stop(tmp_path: Path) -> None:
    server = Probe(tmp_path / "notes")
    assert server.notes() == ["startup"]
    server.stop()
    assert server.notes() == ["startup", "shutdown"]


def test_mosaic_serve_answers_thumbnails_over_rsgi(tmp_path: Path) -> None:
    """Hits, 304s and HEADs come from `ThumbnailHits.reply`; refusals and every
    other route from FastAPI through the bridge; both as under ASGI."""
    server = LiveServer(tmp_path / "data", env={"MOSAIC_ADMIN_PASSWORD": PASSWORD})
    try:
        headers = server.token("admin", PASSWORD)
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            photo = encode(Image.effect_noise((1600, 1200), 40).convert("RGB"), "JPEG")
            files = {"file": ("p.jpg", photo, "image/jpeg")}
            media = client.post("/api/media", files=files).json()
            url = media["thumbnail_url"]
            miss = client.get(url)
            hit = client.get(url, headers={"X-Request-ID": "hit-1"})
            assert miss.status_code == hit.status_code == 200
            assert hit.content == miss.content
            assert hit.headers["x-request-id"] == "hit-1"
            for name in ("etag", "cache-control", "content-type", "content-length"):
                assert hit.headers[name] == miss.headers[name], name

            head = client.head(url)
            assert head.status_code == 200 and head.content == b""
            assert head.headers["content-length"] == str(len(hit.content))

            same = client.get(url, headers={"If-None-Match": hit.headers["etag"]})
            assert same.status_code == 304 and same.content == b""
            assert same.headers["etag"] == hit.headers["etag"]

            refused = httpx.get(f"{server.url}{url}")
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "not_authenticated"
            assert client.get(url, params={"size": "huge"}).status_code == 422

            original = client.get(f"/api/media/{media['id']}/original")
            assert original.content == photo
            part = client.get(f"/api/media/{media['id']}/original", headers={"Range": "bytes=0-9"})
            assert (part.status_code, part.content) == (206, photo[:10])
            assert client.delete(f"/api/media/{media['id']}").status_code == 204
            assert client.get(url).status_code == 404
    finally:
        server.stop()


def test_body_cut_short_arrives_as_a_disconnect(probe: Probe) -> None:
    port = int(probe.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as raw:
        raw.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        raw.sendall(b"a" * 100_000)
    note = "echo: http.disconnect after 100000 bytes"
    wait_until(lambda: note in probe.notes(), seconds=10)
    assert note in probe.notes()


def test_mosaic_serve_keeps_no_upload_cut_short(tmp_path: Path) -> None:
    """A client that goes mid-upload leaves no media and no file behind, with a
    Content-Length (the bridge's disconnect) or chunked (the closing boundary)."""
    data_dir = tmp_path / "data"
    server = LiveServer(data_dir, env={"MOSAIC_ADMIN_PASSWORD": PASSWORD})
    try:
        token = server.token("admin", PASSWORD)["Authorization"]
        port = int(server.url.rsplit(":", 1)[1])
        photo = encode(Image.effect_noise((1600, 1200), 40).convert("RGB"), "JPEG")
        head = (
            b'--cut\r\nContent-Disposition: form-data; name="file"; filename="c.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n" + photo
        )
        whole = len(head) + len(b"\r\n--cut--\r\n")
        request = (
            f"POST /api/media HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
            "Content-Type: multipart/form-data; boundary=cut\r\n"
        ).encode()
        for framing in (f"Content-Length: {whole}\r\n\r\n".encode(), None):
            with socket.create_connection(("127.0.0.1", port)) as raw:
                if framing is None:
                    raw.sendall(request + b"Transfer-Encoding: chunked\r\n\r\n")
                    raw.sendall(b"%x\r\n%s\r\n" % (len(head), head))
                else:
                    raw.sendall(request + framing + head)
        # Each cut upload's temporary file comes, then goes when the server sees
        # the end: give it time to come first.
        time.sleep(1)
        wait_until(lambda: files_under(data_dir / "originals") == [], seconds=10)
        listing = httpx.get(f"{server.url}/api/media", headers={"Authorization": token})
        assert listing.json()["items"] == []
        assert files_under(data_dir / "originals") == []
    finally:
        server.stop()


def test_raw_utf8_in_the_query_string_reaches_the_app_as_sent(probe: Probe) -> None:
    # Clients should percent-encode it; some send UTF-8 as is.
    port = int(probe.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as raw:
        raw.sendall("GET /echo?q=€ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert json.loads(body)["query_string"] == "q=€"


@pytest.mark.anyio
async def test_thumbnails_and_health_are_answered_without_the_bridge(
    app: MosaicApp,
    client: httpx.AsyncClient,
    alice: dict[str, str],
    bob: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    media = (await upload(client, alice, encode(quadrants(), "JPEG"))).json()
    by_the_route = await client.get(media["thumbnail_url"], headers=alice)
    bridged: list[str] = []

    async def bridge(app: object, state: object, scope: ScopeStandIn, proto: object) -> None:
        bridged.append(scope.path)

    monkeypatch.setattr(rsgi, "asgi_bridge", bridge)
    entry = RSGIApp(app)
    lower = {k.lower(): v for k, v in alice.items()}
    for method, url, headers in [
        ("GET", media["thumbnail_url"], lower),
        ("GET", media["thumbnail_url"], {**lower, "if-none-match": by_the_route.headers["etag"]}),
        ("GET", "/healthz", {"x-request-id": "probe-2"}),
        ("GET", media["thumbnail_url"], {k.lower(): v for k, v in bob.items()}),  # not hers
        ("GET", media["thumbnail_url"], {}),  # no token
        ("POST", "/healthz", {}),
        ("GET", "/api/media", lower),
    ]:
        await entry.__rsgi__(ScopeStandIn(method, url, headers), proto := ProtocolStandIn())  # type: ignore[arg-type]
        if proto.answers:
            (answer,) = proto.answers
            bridged.append(f"answered {answer[0]}")
            if answer[0] == 200 and url != "/healthz":
                assert answer[2] == by_the_route.content
                assert dict(answer[1])["etag"] == by_the_route.headers["etag"]
            if answer[0] == 304:
                assert answer[2] == b""
    thumbnail = media["thumbnail_url"].partition("?")[0]
    # Refusals go to FastAPI through the bridge, which answers them by the book.
    assert bridged == [
        "answered 200",
        "answered 304",
        "answered 200",
        thumbnail,
        thumbnail,
        "/healthz",
        "/api/media",
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("failure", ["failed", "raises", "returns"])
async def test_lifespan_that_fails_stops_the_start(failure: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        if failure == "failed":
            await send({"type": "lifespan.startup.failed", "message": "no database"})
        elif failure == "raises":
            raise OSError("no database")

    with pytest.raises((RuntimeError, OSError), match="no database|stopped"):
        await Lifespan(app).startup()
