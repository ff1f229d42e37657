"""The thumbnail cache: presets, rendering and the on-disk store. No web imports here."""

from .cache import CacheMetrics, Thumbnail, ThumbnailCache, adopt_render_version, write_atomic
from .exceptions import (
    Overloaded,
    SourceMissing,
    ThumbnailError,
    TooManyPixels,
    TooSlow,
    Unrenderable,
    UnsupportedFormat,
)
from .memory import MemoryTier
from .render import CONTENT_TYPES, ImageInfo, probe_image, render_thumbnail
from .spec import DEFAULT_SPEC, RENDER_VERSION, SPECS, ThumbnailSpec, source_version

__all__ = [
    "CONTENT_TYPES",
    "DEFAULT_SPEC",
    "RENDER_VERSION",
    "SPECS",
    "CacheMetrics",
    "ImageInfo",
    "MemoryTier",
    "Overloaded",
    "SourceMissing",
    "Thumbnail",
    "ThumbnailCache",
    "ThumbnailError",
    "ThumbnailSpec",
    "TooManyPixels",
    "TooSlow",
    "Unrenderable",
    "UnsupportedFormat",
    "adopt_render_version",
    "probe_image",
    "render_thumbnail",
    "source_version",
    "write_atomic",
]
