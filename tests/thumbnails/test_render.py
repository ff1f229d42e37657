import io
import random
from pathlib import Path

import pytest
from PIL import Image, ImageCms

from mosaic.thumbnails import (
    SPECS,
    TooManyPixels,
    TooSlow,
    Unrenderable,
    UnsupportedFormat,
    probe_image,
    render_thumbnail,
)
from tests.images import (
    BLUE,
    GREEN,
    RED,
    WHITE,
    animated_gif,
    close,
    encode,
    jpeg_with_gps,
    oriented_jpeg,
    png_header_bomb,
)

MAX_PIXELS = 100_000_000


def write(tmp_path: Path, data: bytes, name: str = "source") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def render(path: Path, size: str = "small") -> Image.Image:
    data = render_thumbnail(path, SPECS[size], max_pixels=MAX_PIXELS)
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    assert image.mode == "RGB"
    image.load()
    return image


def corner_colors(image: Image.Image) -> list[tuple[int, ...]]:
    w, h = image.size
    points = [
        (w // 4, h // 4),
        (3 * w // 4, h // 4),
        (w // 4, 3 * h // 4),
        (3 * w // 4, 3 * h // 4),
    ]
    return [image.getpixel(point) for point in points]  # type: ignore[misc]


class TestOrientation:
    @pytest.mark.parametrize("orientation", range(1, 9))
    def test_thumbnail_is_upright(self, tmp_path: Path, orientation: int) -> None:
        path = write(tmp_path, oriented_jpeg(orientation))
        image = render(path, "small")
        assert image.size == (128, 64)
        for actual, expected in zip(corner_colors(image), [RED, GREEN, BLUE, WHITE], strict=True):
            assert close(actual, expected), (orientation, corner_colors(image))

    @pytest.mark.parametrize("orientation", range(1, 9))
    def test_probe_reports_displayed_size(self, tmp_path: Path, orientation: int) -> None:
        info = probe_image(write(tmp_path, oriented_jpeg(orientation)), max_pixels=MAX_PIXELS)
        assert (info.width, info.height) == (400, 200)
        assert info.content_type == "image/jpeg"


class TestModes:
    @pytest.mark.parametrize(
        ("source", "expected"),
        [
            pytest.param(Image.new("RGBA", (300, 200), (0, 0, 0, 0)), WHITE, id="rgba-clear"),
            pytest.param(Image.new("RGBA", (300, 200), (0, 0, 255, 255)), BLUE, id="rgba-opaque"),
            pytest.param(Image.new("LA", (300, 200), (0, 0)), WHITE, id="la-clear"),
            pytest.param(Image.new("L", (300, 200), 128), (128, 128, 128), id="grey"),
            pytest.param(Image.new("1", (300, 200), 1), WHITE, id="bilevel"),
            pytest.param(Image.new("I;16", (300, 200), 40000), (156, 156, 156), id="grey16"),
            pytest.param(Image.new("I", (300, 200), 65535), WHITE, id="grey32"),
            pytest.param(Image.new("F", (300, 200), 100.0), (100, 100, 100), id="float"),
            pytest.param(Image.new("CMYK", (300, 200), (0, 255, 255, 0)), RED, id="cmyk"),
        ],
    )
    def test_every_mode_becomes_rgb(
        self, tmp_path: Path, source: Image.Image, expected: tuple[int, ...]
    ) -> None:
        fmt = "TIFF" if source.mode in {"I;16", "I", "F", "CMYK", "LA"} else "PNG"
        image = render(write(tmp_path, encode(source, fmt)))
        assert image.size == (128, 85)
        assert close(image.getpixel((64, 40)), expected, tolerance=6)  # type: ignore[arg-type]

    def test_palette_with_transparency_goes_over_white(self, tmp_path: Path) -> None:
        palette = Image.new("P", (200, 200), 0)
        palette.putpalette([0, 0, 0] * 256)
        data = encode(palette, "PNG", transparency=0)
        assert close(render(write(tmp_path, data)).getpixel((64, 64)), WHITE, 3)  # type: ignore[arg-type]

    def test_palette_png(self, tmp_path: Path) -> None:
        data = encode(Image.new("RGB", (200, 100), GREEN).convert("P"), "PNG")
        assert close(render(write(tmp_path, data)).getpixel((10, 10)), GREEN, 8)  # type: ignore[arg-type]

    def test_sixteen_bit_png(self, tmp_path: Path) -> None:
        data = encode(Image.new("I;16", (200, 100), 65535), "PNG")
        assert close(render(write(tmp_path, data)).getpixel((10, 10)), WHITE, 3)  # type: ignore[arg-type]

    def test_cmyk_jpeg(self, tmp_path: Path) -> None:
        data = encode(Image.new("CMYK", (300, 200), (255, 0, 255, 0)), "JPEG")
        assert close(render(write(tmp_path, data)).getpixel((64, 40)), GREEN, 20)  # type: ignore[arg-type]

    def test_first_frame_of_animation(self, tmp_path: Path) -> None:
        data = animated_gif([RED, GREEN, BLUE])
        image = render(write(tmp_path, data))
        assert close(image.getpixel((5, 5)), RED, 20)  # type: ignore[arg-type]

    @pytest.mark.parametrize("fmt", ["WEBP", "BMP", "GIF", "TIFF"])
    def test_other_formats(self, tmp_path: Path, fmt: str) -> None:
        image = render(write(tmp_path, encode(Image.new("RGB", (300, 150), BLUE), fmt)))
        assert image.size == (128, 64)


class TestSizing:
    @pytest.mark.parametrize(
        ("size", "expected"), [("small", 128), ("medium", 256), ("large", 512)]
    )
    def test_longest_edge(self, tmp_path: Path, size: str, expected: int) -> None:
        for dims in [(2000, 1000), (1000, 2000)]:
            image = render(write(tmp_path, encode(Image.new("RGB", dims), "JPEG")), size)
            assert max(image.size) == expected
            assert min(image.size) == expected // 2

    def test_never_upscaled(self, tmp_path: Path) -> None:
        image = render(write(tmp_path, encode(Image.new("RGB", (100, 60)), "PNG")), "large")
        assert image.size == (100, 60)


class TestMetadata:
    def test_no_exif_or_gps_in_thumbnail(self, tmp_path: Path) -> None:
        source = write(tmp_path, jpeg_with_gps())
        with Image.open(source) as original:
            assert original.getexif().get_ifd(0x8825)  # the source really has GPS
        data = render_thumbnail(source, SPECS["medium"], max_pixels=MAX_PIXELS)
        image = Image.open(io.BytesIO(data))
        assert "exif" not in image.info
        assert not image.getexif()
        assert b"Exif" not in data and b"CameraMaker" not in data

    def test_icc_profile_converted_not_copied(self, tmp_path: Path) -> None:
        profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
        data = encode(Image.new("RGB", (300, 200), RED), "JPEG", icc_profile=profile)
        thumb = render_thumbnail(write(tmp_path, data), SPECS["small"], max_pixels=MAX_PIXELS)
        image = Image.open(io.BytesIO(thumb))
        assert "icc_profile" not in image.info
        assert close(image.getpixel((10, 10)), RED, 20)  # type: ignore[arg-type]


class TestHostileInput:
    def test_truncated_jpeg_fails_probe(self, tmp_path: Path) -> None:
        data = encode(Image.effect_noise((1200, 900), 60).convert("RGB"), "JPEG")
        path = write(tmp_path, data[: len(data) // 2])
        with pytest.raises(Unrenderable) as excinfo:
            probe_image(path, max_pixels=MAX_PIXELS)
        assert not isinstance(excinfo.value, UnsupportedFormat)

    def test_truncated_png_fails_probe(self, tmp_path: Path) -> None:
        data = encode(Image.effect_noise((600, 400), 60), "PNG")
        with pytest.raises(Unrenderable):
            probe_image(write(tmp_path, data[: len(data) // 2]), max_pixels=MAX_PIXELS)

    @pytest.mark.parametrize(
        "data",
        [b"", b"hello world", b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", b"%PDF-1.7\n"],
    )
    def test_not_an_image(self, tmp_path: Path, data: bytes) -> None:
        with pytest.raises(UnsupportedFormat):
            probe_image(write(tmp_path, data), max_pixels=MAX_PIXELS)

    def test_corrupt_header_with_known_signature(self, tmp_path: Path) -> None:
        data = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
        with pytest.raises(Unrenderable) as excinfo:
            probe_image(write(tmp_path, data), max_pixels=MAX_PIXELS)
        assert not isinstance(excinfo.value, UnsupportedFormat)

    def test_pixel_bomb_refused_from_header(self, tmp_path: Path) -> None:
        path = write(tmp_path, png_header_bomb(100_000, 100_000))
        assert path.stat().st_size < 200
        with pytest.raises(TooManyPixels):
            probe_image(path, max_pixels=MAX_PIXELS)
        with pytest.raises(TooManyPixels):
            render_thumbnail(path, SPECS["small"], max_pixels=MAX_PIXELS)

    def test_cpu_budget_stops_a_slow_decode(self, tmp_path: Path) -> None:
        # 4 MP of noise: tens of milliseconds of zlib and unfiltering, read in
        # 64 KiB blocks, each of which checks the budget first.
        path = write(tmp_path, encode(Image.effect_noise((2000, 2000), 30), "PNG"))
        for step in (probe_image, lambda p, **kw: render_thumbnail(p, SPECS["small"], **kw)):
            with pytest.raises(TooSlow, match="CPU"):
                step(path, max_pixels=MAX_PIXELS, cpu_seconds=0.002)
            step(path, max_pixels=MAX_PIXELS, cpu_seconds=30)

    def test_pixel_budget_is_configurable(self, tmp_path: Path) -> None:
        path = write(tmp_path, encode(Image.new("RGB", (200, 200)), "PNG"))
        with pytest.raises(TooManyPixels):
            probe_image(path, max_pixels=200 * 200 - 1)
        assert probe_image(path, max_pixels=200 * 200).width == 200


@pytest.mark.parametrize(
    ("fmt", "save_args"),
    [
        ("JPEG", {}),
        ("JPEG", {"progressive": True}),
        ("PNG", {}),
        ("WEBP", {}),
        ("TIFF", {}),
        ("BMP", {}),
        ("GIF", {}),
    ],
)
@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, -12, -2])
def test_truncated_anywhere_is_refused(
    tmp_path: Path, fmt: str, save_args: dict[str, object], keep: float
) -> None:
    # Seeded noise: whether libjpeg still finds every scan whole when only the
    # end marker is cut depends on the bytes (about 1 in 20 random images).
    noise = random.Random(600400).randbytes(600 * 400)
    data = encode(Image.frombytes("L", (600, 400), noise).convert("RGB"), fmt, **save_args)
    if fmt == "GIF" and keep == -2:
        # Only the block terminator and trailer are gone: every pixel is there,
        # browsers show it, and refusing it would lose a user's file.
        pytest.skip("a GIF missing only its last two framing bytes is whole")
    cut = int(len(data) * keep) if keep > 0 else len(data) + int(keep)
    path = write(tmp_path, data[:cut])
    with pytest.raises(Unrenderable):
        probe_image(path, max_pixels=MAX_PIXELS)
    assert probe_image(write(tmp_path, data, "whole"), max_pixels=MAX_PIXELS).width == 600
