"""The render-only server that target 5's benchmark sets Mosaic against
(tests/bench/render_only.py): it must render exactly what Mosaic renders."""

from pathlib import Path

import httpx
from PIL import Image

from mosaic.thumbnails import SPECS, render_thumbnail
from tests.bench.render_only import RenderOnlyServer


def test_render_only_server_renders_what_mosaic_renders(tmp_path: Path) -> None:
    original = tmp_path / "photo-1.jpg"
    Image.radial_gradient("L").resize((1200, 900)).convert("RGB").save(original, quality=90)
    server = RenderOnlyServer(tmp_path, workers=1)
    try:
        rendered = httpx.get(f"{server.url}/g/photo-1.jpg", timeout=30)
        assert rendered.status_code == 200
        assert rendered.content == render_thumbnail(original, SPECS["medium"], max_pixels=10**8)
        assert httpx.get(f"{server.url}/healthz").text == "ok"
        # Only the path's last part, and only a plain .jpg name: nothing else is read.
        assert httpx.get(f"{server.url}/g/.photo-1.jpg").status_code == 404
        assert httpx.get(f"{server.url}/g/photo-1.png").status_code == 404
    finally:
        server.stop()
    assert server.process.returncode is not None
