"""Cold miss and warm hit of a 12-megapixel JPEG, against baselines from the same run.

Hypothesis: a miss costs about one bare render (draft-mode decode dominates;
HTTP, auth, DB and the atomic write add little), and a hit costs a small
fraction of a render, close to the cheapest authenticated route.

Run: make bench   (or: uv run pytest tests/bench -m benchmark --benchmark-only)
Numbers are medians; compare the printed ratios, not absolute times: this
machine is shared and noisy.
"""

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from mosaic.config import Settings
from mosaic.main import create_app
from mosaic.rsgi import RSGIApp
from mosaic.security import TokenIssuer
from mosaic.thumbnails import SPECS
from tests.bench.conftest import record, record_in_pairs
from tests.bench.render_only import bare_render
from tests.conftest import ADMIN_PASSWORD
from tests.images import encode
from tests.rsgi_probe import ProtocolStandIn, ScopeStandIn

pytestmark = pytest.mark.benchmark

TWELVE_MP = (4000, 3000)
# Bare render and cold miss pairs for target 3a (~2.5 s in all).
PAIRS = 15


@pytest.fixture(scope="module")
def photo_12mp(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    # Smooth gradients plus noise: compresses like a photo, not like flat colour.
    gradient = Image.linear_gradient("L").resize(TWELVE_MP)
    noise = Image.effect_noise(TWELVE_MP, 25)
    image = Image.merge("RGB", (gradient, noise, gradient.transpose(Image.Transpose.ROTATE_180)))
    return encode(image, "JPEG", quality=90)


class Harness:
    """The real app over ASGI on one event loop, with one uploaded 12 MP photo."""

    def __init__(self, data_dir: Path, photo: bytes) -> None:
        self.loop = asyncio.new_event_loop()
        settings = Settings(
            data_dir=data_dir,
            secret_key="benchmark-secret-key-0123456789-abcdefghij",
            admin_password=ADMIN_PASSWORD,
            frontend_dir=data_dir / "none",
            # As in the load test (and nginx there, with access_log off): an access
            # log line costs ~50 microseconds, more than the rest of a hit.
            log_level="WARNING",
        )
        self.app = create_app(settings)
        self.settings = settings
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://bench"
        )
        token = self.run(
            self.client.post(
                "/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD}
            )
        ).json()["access_token"]
        self.client.cookies.clear()
        self.headers = {"Authorization": f"Bearer {token}"}
        files = {"file": ("big.jpg", photo, "image/jpeg")}
        self.media = self.run(
            self.client.post("/api/media", files=files, headers=self.headers)
        ).json()
        self.media_id = uuid.UUID(self.media["id"])

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def get(self, url: str, **headers: str) -> httpx.Response:
        response: httpx.Response = self.run(
            self.client.get(url, headers={**self.headers, **headers})
        )
        return response

    @property
    def source(self) -> Path:
        """The uploaded original, as the cache renders it."""
        return self.settings.originals_dir / str(self.media_id)

    def render(self) -> bytes:
        """The bare render of the medium thumbnail: no HTTP, no cache."""
        return bare_render(self.source)

    def evict(self) -> None:
        """Remove the medium thumbnail from disk (the memory tier checks the file)."""
        self.app.state.cache.path_for(self.media_id, SPECS["medium"]).unlink(missing_ok=True)

    def miss(self) -> None:
        """Fetch the medium thumbnail: a cold miss right after `evict`."""
        assert self.get(self.media["thumbnail_url"]).status_code == 200

    def close(self) -> None:
        self.run(self.client.aclose())
        self.app.state.cache.close()
        self.run(self.app.state.engine.dispose())
        self.loop.close()


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory, photo_12mp: bytes) -> Iterator[Harness]:
    bench = Harness(tmp_path_factory.mktemp("bench"), photo_12mp)
    yield bench
    bench.close()


def test_bare_render(benchmark: Any, harness: Harness) -> None:
    benchmark(harness.render)
    record("bare_render", benchmark.stats.stats.median)


def test_http_cold_miss(benchmark: Any, harness: Harness) -> None:
    benchmark.pedantic(harness.miss, setup=harness.evict, rounds=20, warmup_rounds=1)
    record("http_cold_miss", benchmark.stats.stats.median)


def test_miss_over_bare_render_in_pairs(harness: Harness) -> None:
    """Target 3a side by side: a bare render and a cold miss of the same photo
    back to back, in alternating order, PAIRS times; the score is the median of
    the pairs' ratios. The two benchmarks above run about a minute apart, and
    their medians move by 5-6 ms (7%) between repeats on this machine."""

    def bare() -> float:
        started = time.perf_counter()
        harness.render()
        return time.perf_counter() - started

    def miss() -> float:
        harness.evict()
        started = time.perf_counter()
        harness.miss()
        return time.perf_counter() - started

    record_in_pairs("miss_over_bare_in_pairs", miss, bare, PAIRS)


def test_http_warm_hit(benchmark: Any, harness: Harness) -> None:
    url = harness.media["thumbnail_url"]
    assert harness.get(url).status_code == 200

    def hit() -> None:
        assert harness.get(url).status_code == 200

    benchmark(hit)
    record("http_warm_hit", benchmark.stats.stats.median)


def test_http_not_modified(benchmark: Any, harness: Harness) -> None:
    url = harness.media["thumbnail_url"]
    etag = harness.get(url).headers["etag"]

    def revalidate() -> None:
        assert harness.get(url, **{"If-None-Match": etag}).status_code == 304

    benchmark(revalidate)
    record("http_not_modified", benchmark.stats.stats.median)


def asgi_hit(harness: Harness, app: Any) -> Callable[[], None]:
    """One hit through `app` from a raw ASGI scope: the app's own time, no HTTP client."""
    path, _, query = harness.media["thumbnail_url"].partition("?")
    headers = [(b"authorization", harness.headers["Authorization"].encode())]
    scope = {"type": "http", "method": "GET", "path": path, "query_string": query.encode()}
    scope.update(http_version="1.1", scheme="http", root_path="", headers=headers)
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def calls(count: int) -> None:
        for _ in range(count):
            await app({**scope, "app": harness.app}, receive, send)

    def hit() -> None:
        statuses.clear()
        harness.run(calls(100))
        assert statuses == [200] * 100

    return hit


def test_asgi_hit(benchmark: Any, harness: Harness) -> None:
    """A hit as `mosaic serve` gets it: answered in front of FastAPI (per 100 calls)."""
    assert harness.get(harness.media["thumbnail_url"]).status_code == 200
    benchmark(asgi_hit(harness, harness.app))
    record("asgi_hit", benchmark.stats.stats.median / 100)


def test_asgi_hit_by_the_book(benchmark: Any, harness: Harness) -> None:
    """The same hit through FastAPI's middleware and routing (per 100 calls)."""
    assert harness.get(harness.media["thumbnail_url"]).status_code == 200
    benchmark(asgi_hit(harness, harness.app.by_the_book))
    record("asgi_hit_by_the_book", benchmark.stats.stats.median / 100)


def test_rsgi_hit(benchmark: Any, harness: Harness) -> None:
    """The same hit as granian's RSGI interface hands it to `mosaic serve`
    (`mosaic.rsgi`), with stand-ins for granian's scope and protocol objects
    (per 100 calls). What RSGI saves is granian's own work, which this leaves
    out: the load test (`tests.bench.load`) shows that part."""
    assert harness.get(harness.media["thumbnail_url"]).status_code == 200
    headers = {"authorization": harness.headers["Authorization"]}
    scope = ScopeStandIn("GET", harness.media["thumbnail_url"], headers)
    app = RSGIApp(harness.app)
    proto = ProtocolStandIn()

    async def calls(count: int) -> None:
        for _ in range(count):
            await app.__rsgi__(scope, proto)  # type: ignore[arg-type]

    def hit() -> None:
        proto.answers.clear()
        harness.run(calls(100))
        assert [status for status, _, _ in proto.answers] == [200] * 100

    benchmark(hit)
    record("rsgi_hit", benchmark.stats.stats.median / 100)


def test_http_health(benchmark: Any, harness: Harness) -> None:
    def health() -> None:
        assert harness.get("/healthz").status_code == 200

    benchmark(health)
    record("http_health", benchmark.stats.stats.median)


def test_token_check(benchmark: Any, harness: Harness) -> None:
    """A remembered token against a fresh HS256 verification (python-jose)."""
    tokens = harness.app.state.tokens
    token = harness.headers["Authorization"].split()[1]
    fresh = TokenIssuer(tokens.secret_key, tokens.minutes, remember=0)

    def remembered() -> None:
        assert tokens.subject(token) is not None

    benchmark(remembered)
    record("token_remembered", benchmark.stats.stats.median)
    started = time.perf_counter()
    for _ in range(2000):
        fresh.subject(token)
    record("token_verified", (time.perf_counter() - started) / 2000)
