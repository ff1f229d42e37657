"""Every file of the hostile corpus (tests/corpus/generate.py) through the real API.

Each one gets a correct, upright, metadata-free thumbnail or a 4xx JSON error:
never a 500, never a hang, never a file left behind.
"""

import io

import httpx
import pytest
from PIL import Image

from mosaic.config import Settings
from tests.conftest import files_under, upload
from tests.corpus.generate import CASES, Case
from tests.images import BLUE, GREEN, RED, WHITE, close

pytestmark = pytest.mark.anyio


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_corpus_file(
    client: httpx.AsyncClient, alice: dict[str, str], settings: Settings, case: Case
) -> None:
    response = await upload(client, alice, case.make(), filename=case.name)
    assert response.status_code in {201, 413, 415, 422}, response.text
    if response.status_code != 201:
        assert case.expect in {"refuse", "either"}, response.text
        assert set(response.json()["error"]) == {"code", "message"}
        assert files_under(settings.data_dir / "originals") == []
        return
    assert case.expect in {"ok", "either"}, f"{case.name} was accepted"
    media = response.json()
    for size, edge in (("small", 128), ("medium", 256), ("large", 512)):
        thumb = await client.get(media["thumbnail_url"], params={"size": size}, headers=alice)
        if case.expect == "either" and thumb.status_code in {415, 422}:
            continue
        assert thumb.status_code == 200, thumb.text
        data = thumb.content
        assert b"Exif" not in data and b"GPS" not in data
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            assert image.format == "JPEG" and image.mode == "RGB"
            assert max(image.size) <= edge
            assert "icc_profile" not in image.info and not image.getexif()
            if case.name.startswith("orientation-"):
                w, h = image.size
                assert w > h  # upright: landscape, as shot
                corners = [
                    (w // 4, h // 4),
                    (3 * w // 4, h // 4),
                    (w // 4, 3 * h // 4),
                    (3 * w // 4, 3 * h // 4),
                ]
                for point, color in zip(corners, (RED, GREEN, BLUE, WHITE), strict=True):
                    assert close(image.getpixel(point), color), (case.name, point)  # type: ignore[arg-type]
    assert [p.name for p in files_under(settings.originals_dir)] == [media["id"]]
    assert not [
        p for p in files_under(settings.resolved_cache_dir) if p.suffix not in {".jpg", ".lock"}
    ]
