"""Decode an original safely and turn it into thumbnail bytes.

Everything here is synchronous and CPU-bound: callers run it in a thread pool.
Pillow releases the GIL while decoding and resampling, so threads scale.
"""

import io
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageCms, UnidentifiedImageError

from .exceptions import TooManyPixels, TooSlow, Unrenderable, UnsupportedFormat
from .spec import ThumbnailSpec

# Every open goes through `open_image`, which enforces the caller's pixel budget
# from the header before any decode. Pillow's own global limit would warn (and,
# under strict warning filters, raise) below our configured budget.
Image.MAX_IMAGE_PIXELS = None
# Load the format plugins now, not during some user's first render (~40 ms).
Image.init()

# Pillow format name -> the content type we store and serve. MPO is how Pillow
# names the multi-picture JPEGs many cameras write.
CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}
# Pillow reads MPO through its JPEG plugin, so this is the list to open with.
_OPEN_FORMATS = ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"]
_SIGNATURES = (
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
)
# What a hostile or corrupt file can make a Pillow plugin raise while parsing:
# beyond OSError and friends, struct/index/key errors from damaged tables, and
# warnings (corrupt TIFF tags, say) when the process turns warnings into
# errors. All of them mean "cannot be decoded", never a server error.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    struct.error,
    Warning,
)

# EXIF orientation -> the transpose that makes the image upright (orientation 1
# needs none); 5-8 also swap width and height.
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = {5, 6, 7, 8}
_SRGB = ImageCms.createProfile("sRGB")
_DECODE_BLOCK = 1 << 20
_WHITE = (255, 255, 255)
# After the reduced-scale JPEG decode (at least twice the box), Image.thumbnail
# halves by a box filter (Image.reduce) wherever the image is still 1.5x the
# box or more, then resamples with BICUBIC: a 12 MP photo decoded at 1/4 scale
# is halved before the bicubic pass, ~12% faster in all than resampling from
# 1/4 scale directly (reducing_gap=2; ~37% for the large preset), at PSNR
# >= 45 dB and SSIM >= 0.996 against a full-resolution Lanczos reference for
# the medium preset (47 dB with 2, 41 with 1), 42 dB for the small one.
_REDUCING_GAP = 1.5


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What an upload turned out to be, measured from its content."""

    format: str
    content_type: str
    width: int
    height: int


def _claims_supported_type(head: bytes) -> bool:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    return any(head.startswith(signature) for signature in _SIGNATURES)


class _BudgetedReader(io.BufferedReader):
    """An original read in the blocks Pillow's decoders ask for, refusing to go
    on once this thread has spent `cpu_seconds` of CPU since it was opened.

    Pillow decodes block by block from its file object, so this bounds the
    time of a hostile or merely enormous file without killing a thread. CPU
    time of the rendering thread, not wall time, so a busy server does not
    turn slow renders into refused images.
    """

    def __init__(self, path: Path, cpu_seconds: float | None) -> None:
        super().__init__(io.FileIO(path, "rb"), buffer_size=1 << 16)
        self.cpu_seconds = cpu_seconds
        self._deadline = None if cpu_seconds is None else time.thread_time() + cpu_seconds

    def check_budget(self) -> None:
        if self._deadline is not None and time.thread_time() > self._deadline:
            raise TooSlow(f"decoding needed more than {self.cpu_seconds:g} s of CPU")

    def read(self, size: int | None = -1, /) -> bytes:
        self.check_budget()
        return super().read(size)


@contextmanager
def open_image(
    path: Path, *, max_pixels: int, cpu_seconds: float | None = None
) -> Iterator[Image.Image]:
    """Open `path` lazily (header only), refusing other formats and pixel bombs.

    Reads past `cpu_seconds` of this thread's CPU time raise `TooSlow`.

    Example::

        with open_image(Path("photo.jpg"), max_pixels=100_000_000) as image: ...
    """
    with _BudgetedReader(path, cpu_seconds) as reader, _open(reader, path, max_pixels) as image:
        yield image


def _open(reader: _BudgetedReader, path: Path, max_pixels: int) -> Image.Image:
    try:
        image = Image.open(reader, formats=_OPEN_FORMATS)
    except UnidentifiedImageError as exc:
        with path.open("rb") as handle:
            head = handle.read(16)
        if _claims_supported_type(head):
            raise Unrenderable("the image header is corrupt") from exc
        raise UnsupportedFormat("not a JPEG, PNG, GIF, WebP, BMP or TIFF image") from exc
    except _DECODE_ERRORS as exc:
        raise Unrenderable(f"the image cannot be read: {exc}") from exc
    # Pillow hands the decoder 64 KiB at a time, taking the GIL back for each
    # block: ~50 times for a 12 MP JPEG, each a wait while the event loop or
    # another render holds it. 1 MiB blocks make that ~4, and the CPU budget is
    # still checked before each block.
    image.decodermaxblock = _DECODE_BLOCK
    width, height = image.size
    if width <= 0 or height <= 0:
        image.close()
        raise Unrenderable("the image has no pixels")
    if width * height > max_pixels:
        image.close()
        raise TooManyPixels(f"{width}x{height} is over the limit of {max_pixels} pixels")
    return image


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(0x0112, 1)
    except Exception:  # a corrupt EXIF block must not make the image unreadable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def probe_image(path: Path, *, max_pixels: int, cpu_seconds: float | None = None) -> ImageInfo:
    """Identify an upload and decode it to the end, so corrupt files fail now.

    Width and height are as displayed, after EXIF orientation. An image that
    needs more than `cpu_seconds` to decode is refused (`TooSlow`), as its
    thumbnail could not be rendered either.
    """
    with open_image(path, max_pixels=max_pixels, cpu_seconds=cpu_seconds) as image:
        fmt = image.format or ""
        width, height = image.size
        orientation = _orientation(image)
        # Decoding at 1/8 scale still reads every byte of the entropy-coded data.
        image.draft(None, (max(1, width // 8), max(1, height // 8)))
        try:
            image.load()
        except _DECODE_ERRORS as exc:
            raise Unrenderable(f"the image does not decode: {exc}") from exc
    if fmt == "PNG":
        _verify_png_chunks(path)
    if orientation in _SWAPS_AXES:
        width, height = height, width
    return ImageInfo(fmt, CONTENT_TYPES[fmt], width, height)


_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _verify_png_chunks(path: Path) -> None:
    # load() stops after the pixel data, so a PNG cut after it still loads.
    # verify() checks every chunk's CRC up to IEND; IEND itself must be whole.
    try:
        with Image.open(path, formats=["PNG"]) as image:
            image.verify()
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - 4096))
            complete = _PNG_IEND in handle.read()
    except _DECODE_ERRORS as exc:
        raise Unrenderable(f"the image is truncated or corrupt: {exc}") from exc
    if not complete:
        raise Unrenderable("the image is truncated: its end chunk is missing")


def _to_srgb(image: Image.Image) -> Image.Image:
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in {"RGB", "RGBA", "CMYK", "L"}:
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        output_mode = "RGBA" if image.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode=output_mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image  # a broken profile: fall back to Pillow's plain conversion
    return converted if converted is not None else image


def _to_rgb(image: Image.Image) -> Image.Image:
    """Bring any mode Pillow reads to RGB or RGBA (alpha is flattened later)."""
    mode = image.mode
    if mode in {"RGB", "RGBA"}:
        return image
    if mode.startswith("I"):
        # 16-bit grey (and 32-bit holding 16-bit data, as older PNG readers
        # give): scale 0..65535 into 0..255 instead of clipping at 255.
        wide = image.convert("I")
        high = wide.getextrema()[1]
        full_scale = 65535
        if mode == "I" and isinstance(high, int):
            full_scale = 255 if high <= 255 else max(high, 65535)
        return wide.point(lambda value: value * (255 / full_scale)).convert("L").convert("RGB")
    if mode == "F":
        return image.convert("L").convert("RGB")
    has_alpha = mode in {"LA", "La", "PA", "RGBa"} or (mode == "P" and "transparency" in image.info)
    return image.convert("RGBA" if has_alpha else "RGB")


def _flatten(image: Image.Image) -> Image.Image:
    if image.mode != "RGBA":
        return image
    background = Image.new("RGB", image.size, _WHITE)
    background.paste(image, mask=image.getchannel("A"))
    return background


def render_thumbnail(
    path: Path, spec: ThumbnailSpec, *, max_pixels: int, cpu_seconds: float | None = None
) -> bytes:
    """Render the thumbnail of the image at `path` as baseline JPEG bytes.

    Upright (EXIF orientation applied once), RGB, alpha over white, first frame
    of animations, longest edge at most `spec.edge` and never upscaled, with no
    metadata copied (no EXIF, no GPS, no ICC: the pixels are sRGB). Raises
    `TooSlow` when decoding needs more than `cpu_seconds` of CPU.

    Example::

        jpeg = render_thumbnail(Path("photo.jpg"), SPECS["small"], max_pixels=10**8)
    """
    buffer = io.BytesIO()
    picture = thumbnail_image(path, spec.edge, max_pixels=max_pixels, cpu_seconds=cpu_seconds)
    picture.save(buffer, "JPEG", quality=spec.quality)
    return buffer.getvalue()


def thumbnail_image(
    path: Path, edge: int, *, max_pixels: int, cpu_seconds: float | None = None
) -> Image.Image:
    """The upright RGB picture that `render_thumbnail` encodes (benchmarks compare it)."""
    with open_image(path, max_pixels=max_pixels, cpu_seconds=cpu_seconds) as image:
        orientation = _orientation(image)
        box = (edge, edge)  # square box: orientation cannot change the scale
        try:
            # JPEG only: let libjpeg decode at a reduced DCT scale, at least twice
            # the target so the final resample keeps full quality.
            image.draft(None, (edge * 2, edge * 2))
            image.load()
            picture = _to_rgb(_to_srgb(image))
            picture.thumbnail(box, Image.Resampling.BICUBIC, reducing_gap=_REDUCING_GAP)
        except _DECODE_ERRORS as exc:
            raise Unrenderable(f"the image does not decode: {exc}") from exc
    picture = _flatten(picture)
    method = _TRANSPOSE.get(orientation)
    return picture if method is None else picture.transpose(method)
