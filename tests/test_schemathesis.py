"""Schemathesis against the app's own OpenAPI document, over HTTP to a real
`mosaic serve`, signed in as the admin: no server error on any operation, and
every response matches what the document declares (status, content type,
headers, body schema). Positive and negative examples, a bounded number per
operation (MOSAIC_SCHEMATHESIS_EXAMPLES, default 25).
"""

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import CheckFunction
from schemathesis.specs.openapi.checks import positive_data_acceptance

from mosaic.config import Settings
from mosaic.main import create_app
from tests.images import encode, quadrants
from tests.live_server import LiveServer

PASSWORD = "schemathesis-admin-password"
EXAMPLES = int(os.environ.get("MOSAIC_SCHEMATHESIS_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir: Path = tmp_path_factory.mktemp("schemathesis") / "data"
    live = LiveServer(data_dir, env={"MOSAIC_ADMIN_PASSWORD": PASSWORD})
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def auth(server: LiveServer) -> dict[str, str]:
    headers = server.token("admin", PASSWORD)
    # One real photo, so list and read operations have something to return.
    photo = encode(quadrants(800, 600), "JPEG")
    response = httpx.post(
        f"{server.url}/api/media",
        headers=headers,
        files={"file": ("photo.jpg", photo, "image/jpeg")},
    )
    assert response.status_code == 201, response.text
    return headers


def _document() -> dict[str, object]:
    # The same document the server serves (checked below); built here so the
    # operations are known when pytest collects.
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(Settings(data_dir=Path(folder), secret_key="x" * 40))
        document: dict[str, object] = app.openapi()
        return document


schema = schemathesis.openapi.from_dict(_document())


def test_served_document_is_the_tested_one(server: LiveServer) -> None:
    assert httpx.get(f"{server.url}/openapi.json").json() == _document()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_matches_its_schema(case: Case[Any], server: LiveServer, auth: dict[str, str]) -> None:
    excluded: list[CheckFunction] = []
    if case.operation.path == "/api/media":
        # Two things a schema cannot say, so "schema-valid but refused" is
        # expected there: which cursors the server issued (a well-formed
        # made-up one is a 422), and whether uploaded bytes are really an
        # image (a ZIP sent as image/webp is a 415). Every other check holds.
        if case.method == "POST" or (case.query or {}).get("cursor"):
            excluded.append(positive_data_acceptance)
    case.call_and_validate(base_url=server.url, headers=auth, excluded_checks=excluded)
