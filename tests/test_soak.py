"""A 15-second run of the soak (tests/bench/soak.py), so `make soak` keeps
working: real server, two workers, every kind of request, then fsck."""

import tempfile
from pathlib import Path

from tests.bench.soak import soak


def test_soak_smoke() -> None:
    leftovers = set(Path(tempfile.gettempdir()).glob("mosaic-soak-*"))
    result = soak(minutes=0.25, connections=8, workers=2)
    # Its data folder goes with it: `make test` must not fill /tmp run by run.
    assert set(Path(tempfile.gettempdir()).glob("mosaic-soak-*")) == leftovers
    assert result["failures"] == []
    assert result["server_errors"] == 0
    assert result["fsck"] == "clean"
    statuses = result["statuses"]
    assert isinstance(statuses, dict)
    for kind in (
        "hit 200",
        "revalidate 304",
        "upload 201",
        "miss 200",
        "delete 204",
        "foreign 404",
    ):
        assert statuses.get(kind, 0) > 0, kind
