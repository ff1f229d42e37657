"""Generate the hostile-file corpus: `python -m tests.corpus.generate OUT_DIR`.

Nothing binary is committed: every file is made here, by Pillow or by hand.
Each case says what Mosaic must do with it:
  "ok"      accepted (201) and its thumbnail renders,
  "refuse"  refused at upload with a 4xx JSON error,
  "either"  either of the above, but never a 500, a hang or a leftover file.
"""

import io
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from PIL import Image, ImageCms

from tests.images import (
    animated_gif,
    encode,
    jpeg_with_gps,
    oriented_jpeg,
    png_header_bomb,
    quadrants,
)


@dataclass(frozen=True)
class Case:
    name: str
    expect: str  # "ok" | "refuse" | "either"
    make: Callable[[], bytes]


def _photo(fmt: str = "JPEG", **args: object) -> bytes:
    return encode(quadrants(640, 480), fmt, **args)


def _gif_bomb() -> bytes:
    # Logical screen and image descriptor claim 65535 x 65535; one tiny LZW block.
    header = b"GIF89a" + struct.pack("<HHBBB", 65535, 65535, 0, 0, 0)
    descriptor = b"," + struct.pack("<HHHHB", 0, 0, 65535, 65535, 0)
    return header + descriptor + b"\x02\x02\x44\x01\x00;"


def _tiff_bomb() -> bytes:
    entries = [
        (256, 4, 1, 100_000),
        (257, 4, 1, 100_000),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (273, 4, 1, 8),
        (277, 3, 1, 1),
        (279, 4, 1, 16),
    ]
    ifd = (
        struct.pack("<H", len(entries))
        + b"".join(
            struct.pack("<HHII", tag, kind, count, value) for tag, kind, count, value in entries
        )
        + b"\x00\x00\x00\x00"
    )
    return b"II*\x00" + struct.pack("<I", 24) + b"\x00" * 16 + ifd


def _webp_bomb() -> bytes:
    # VP8L header: 14-bit width-1 and height-1, both 16383 (268 MP).
    bits = (16383) | (16383 << 14)
    vp8l = b"\x2f" + struct.pack("<I", bits) + b"\x00" * 8
    chunk = b"VP8L" + struct.pack("<I", len(vp8l)) + vp8l
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def _jpeg_zip_polyglot() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("payload.html", "<script>alert(1)</script>")
    return _photo() + archive.getvalue()


def _gif_html_polyglot() -> bytes:
    return encode(Image.new("P", (8, 8)), "GIF") + b"<html><script>alert(1)</script></html>"


def _corrupt_exif() -> bytes:
    jpeg = _photo()
    garbage = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff" + b"\xde\xad\xbe\xef" * 20
    app1 = b"\xff\xe1" + struct.pack(">H", len(garbage) + 2) + garbage
    return jpeg[:2] + app1 + jpeg[2:]


def _wrong_magic() -> bytes:
    return b"\x00\x00\x00\x00" + _photo()[4:]


def _thousands_of_frames() -> bytes:
    frames = [Image.new("RGB", (8, 8), (i % 256, i * 7 % 256, i * 13 % 256)) for i in range(3000)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=10)


def _cmyk_with_icc() -> bytes:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return encode(Image.new("CMYK", (300, 200), (0, 200, 200, 0)), "JPEG", icc_profile=srgb)


def _adobe_rgb_like() -> bytes:
    # A colour-managed source whose profile is not sRGB (LAB-based): converted on render.
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    return encode(quadrants(400, 300), "JPEG", icc_profile=profile)


def _truncated(fraction: float) -> Callable[[], bytes]:
    def make() -> bytes:
        data = encode(Image.effect_noise((800, 600), 50).convert("RGB"), "JPEG")
        return data[: int(len(data) * fraction)]

    return make


def _zlib_bomb_png() -> bytes:
    # 20000 x 20000 grey, IDAT of zeros compressed to a few KB: 400 MP behind 20 KB.
    width = height = 20000

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = zlib.compress(b"\x00" * (width + 1) * 64, 9)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


CASES = [
    Case("empty.jpg", "refuse", lambda: b""),
    Case("truncated-10.jpg", "refuse", _truncated(0.1)),
    Case("truncated-50.jpg", "refuse", _truncated(0.5)),
    Case("truncated-99.jpg", "refuse", _truncated(0.99)),
    Case(
        "truncated.png", "refuse", lambda: encode(Image.effect_noise((400, 300), 50), "PNG")[:-30]
    ),
    Case("wrong-magic.jpg", "refuse", _wrong_magic),
    Case(
        "svg-renamed.jpg",
        "refuse",
        lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    ),
    Case("html-renamed.jpg", "refuse", lambda: b"<!doctype html><script>alert(1)</script>"),
    Case("jpeg-zip-polyglot.jpg", "either", _jpeg_zip_polyglot),
    Case("gif-html-polyglot.gif", "either", _gif_html_polyglot),
    Case("bomb.png", "refuse", lambda: png_header_bomb(100_000, 100_000)),
    Case("zlib-bomb.png", "refuse", _zlib_bomb_png),
    Case("bomb.gif", "refuse", _gif_bomb),
    Case("bomb.tif", "refuse", _tiff_bomb),
    Case("bomb.webp", "refuse", _webp_bomb),
    Case("3000-frames.gif", "ok", _thousands_of_frames),
    Case("animated.gif", "ok", lambda: animated_gif([(255, 0, 0), (0, 255, 0)])),
    Case("grey16.png", "ok", lambda: encode(Image.new("I;16", (300, 200), 30000), "PNG")),
    Case("palette.png", "ok", lambda: encode(quadrants(300, 200).convert("P"), "PNG")),
    Case(
        "palette-transparent.png",
        "ok",
        lambda: encode(Image.new("P", (300, 200), 0), "PNG", transparency=0),
    ),
    Case("cmyk.jpg", "ok", lambda: encode(Image.new("CMYK", (300, 200), (0, 200, 200, 0)), "JPEG")),
    Case("cmyk-icc.jpg", "ok", _cmyk_with_icc),
    Case("icc-not-srgb.jpg", "ok", _adobe_rgb_like),
    Case("progressive.jpg", "ok", lambda: _photo(progressive=True)),
    Case("corrupt-exif.jpg", "ok", _corrupt_exif),
    Case("gps.jpg", "ok", jpeg_with_gps),
    *[Case(f"orientation-{o}.jpg", "ok", partial(oriented_jpeg, o)) for o in range(1, 9)],
]


def generate(out: Path) -> list[tuple[Case, Path]]:
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for case in CASES:
        path = out / case.name
        path.write_bytes(case.make())
        made.append((case, path))
    return made


if __name__ == "__main__":
    for case, path in generate(Path(sys.argv[1] if len(sys.argv) > 1 else "corpus")):
        sys.stdout.write(f"{case.expect:7} {path.stat().st_size:>9}  {path}\n")
