"""Property-based checks (hypothesis) of id parsing, cache paths, cache keys and ETags."""

import uuid
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mosaic.access import parse_media_id
from mosaic.thumbnails import RENDER_VERSION, SPECS, ThumbnailCache, source_version

ROOT = Path("/srv/mosaic/cache")
CACHE = ThumbnailCache(ROOT, max_pixels=1)  # builds paths only: no folder is touched

hex_digests = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


@given(st.text(max_size=200))
@settings(max_examples=2000)
def test_only_canonical_uuids_parse(value: str) -> None:
    parsed = parse_media_id(value)
    if parsed is not None:
        assert str(parsed) == value.lower()
        assert len(value) == 36 and "/" not in value and "\x00" not in value


@given(st.uuids())
def test_canonical_uuids_round_trip(value: uuid.UUID) -> None:
    assert parse_media_id(str(value)) == value
    assert parse_media_id(str(value).upper()) == value


@given(st.uuids(), st.sampled_from(sorted(SPECS)))
@settings(max_examples=1000)
def test_cache_paths_stay_below_the_root(media_id: uuid.UUID, size: str) -> None:
    path = CACHE.path_for(media_id, SPECS[size])
    assert path.resolve().is_relative_to(ROOT)
    assert path.parent == CACHE.entry_dir(media_id)
    assert path.parent.parent.parent == ROOT
    assert path.name == f"{size}.jpg"


@given(st.uuids(), st.uuids(), st.sampled_from(sorted(SPECS)), st.sampled_from(sorted(SPECS)))
def test_distinct_entries_never_share_a_file(
    a: uuid.UUID, b: uuid.UUID, size_a: str, size_b: str
) -> None:
    if (a, size_a) != (b, size_b):
        assert CACHE.path_for(a, SPECS[size_a]) != CACHE.path_for(b, SPECS[size_b])


@given(hex_digests, hex_digests, st.sampled_from(sorted(SPECS)), st.sampled_from(sorted(SPECS)))
def test_etags_differ_when_the_bytes_would(
    sha_a: str, sha_b: str, size_a: str, size_b: str
) -> None:
    etag_a, etag_b = SPECS[size_a].etag(sha_a), SPECS[size_b].etag(sha_b)
    assert etag_a.startswith('"') and etag_a.endswith('"')
    assert f"-r{RENDER_VERSION}" in etag_a
    if (sha_a[:32], size_a) != (sha_b[:32], size_b):
        assert etag_a != etag_b
    assert source_version(sha_a).endswith(f"-r{RENDER_VERSION}")
