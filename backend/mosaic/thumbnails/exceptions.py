"""Errors raised by the thumbnail package.

    ThumbnailError
    ├── Overloaded      too many renders pending: try again shortly
    ├── SourceMissing   the original is gone (deleted, or never stored)
    └── Unrenderable    the original exists but cannot be decoded safely
        ├── UnsupportedFormat   not one of the accepted image formats
        ├── TooManyPixels       over the configured pixel budget
        └── TooSlow             decoding needs more than the CPU time budget

The web layer maps Overloaded to 503, SourceMissing to 404 and Unrenderable to 415/422.
"""


class ThumbnailError(Exception):
    """Base class of every error this package raises."""


class Overloaded(ThumbnailError):
    """The render queue is full; hits are still served."""


class SourceMissing(ThumbnailError):
    """The original file for a media item does not exist."""


class Unrenderable(ThumbnailError):
    """The original cannot be decoded (corrupt, truncated, hostile)."""


class UnsupportedFormat(Unrenderable):
    """The content is not an accepted image format."""


class TooManyPixels(Unrenderable):
    """The image is larger than the configured pixel budget."""


class TooSlow(Unrenderable):
    """Decoding the image needs more CPU time than one render may take."""
