"""Fuzz the upload endpoint (bounded, seeded): random bytes and mutated valid images.

Every answer is 201 or a 4xx JSON error, never a 500; a refused upload leaves
nothing on disk; an accepted one gets a thumbnail or a 4xx, never a 500.
"""

import os
import random

import httpx
import pytest
from PIL import Image

from mosaic.config import Settings
from tests.conftest import files_under, upload
from tests.images import encode, quadrants

pytestmark = pytest.mark.anyio
# Rerun with other inputs: MOSAIC_FUZZ_SEED=123 MOSAIC_FUZZ_CASES=2000 uv run pytest tests/test_upload_fuzz.py
SEED = int(os.environ.get("MOSAIC_FUZZ_SEED", "20261121"))
CASES = int(os.environ.get("MOSAIC_FUZZ_CASES", "240"))


def mutate(data: bytes, rng: random.Random) -> bytes:
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 12)):
        kind = rng.random()
        position = rng.randrange(len(buffer))
        if kind < 0.5:
            buffer[position] = rng.randrange(256)
        elif kind < 0.75:
            del buffer[position : position + rng.randint(1, 64)]
        else:
            buffer[position:position] = rng.randbytes(rng.randint(1, 64))
    return bytes(buffer[: rng.randint(1, len(buffer))] if rng.random() < 0.3 else buffer)


async def test_fuzz_uploads(
    client: httpx.AsyncClient, alice: dict[str, str], settings: Settings
) -> None:
    rng = random.Random(SEED)
    seeds = [
        encode(quadrants(160, 120), fmt) for fmt in ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
    ] + [encode(Image.new("RGBA", (90, 70), (1, 2, 3, 4)), "PNG")]
    statuses: dict[int, int] = {}
    accepted = 0
    for case in range(CASES):
        if case % 4 == 0:
            data = rng.randbytes(rng.randint(0, 4096))
        else:
            data = mutate(rng.choice(seeds), rng)
        response = await upload(client, alice, data, filename=f"fuzz-{case}.jpg")
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code in {201, 413, 415, 422}, (case, response.text)
        if response.status_code != 201:
            assert set(response.json()["error"]) == {"code", "message"}
            continue
        accepted += 1
        thumb = await client.get(response.json()["thumbnail_url"], headers=alice)
        assert thumb.status_code in {200, 415, 422}, (case, thumb.text)
    stored = [p.name for p in files_under(settings.originals_dir)]
    assert len(stored) == accepted  # nothing left behind by refused uploads
    assert not [name for name in stored if name.startswith(".")]
    assert statuses.get(201, 0) > 0 and statuses.get(415, 0) + statuses.get(422, 0) > 0, statuses
