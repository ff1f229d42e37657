from dataclasses import dataclass
from types import MappingProxyType

# Bump when the rendered bytes change (resampling, quality, colour handling):
# it is part of every ETag and thumbnail URL, so browsers and CDNs refetch.
RENDER_VERSION = 2
JPEG_QUALITY = 82


@dataclass(frozen=True, slots=True)
class ThumbnailSpec:
    """One fixed thumbnail preset: a name and the longest edge in pixels.

    >>> SPECS["medium"].edge
    256
    >>> SPECS["medium"].filename
    'medium.jpg'
    """

    name: str
    edge: int
    quality: int = JPEG_QUALITY

    @property
    def filename(self) -> str:
        return f"{self.name}.jpg"

    def etag(self, source_sha256: str) -> str:
        """A strong ETag that changes exactly when the rendered bytes would.

        It is derived from the source's content hash, the preset and the
        render version, never from file metadata, so a regenerated file keeps
        its ETag.
        """
        return f'"{source_sha256[:32]}-{self.name}-r{RENDER_VERSION}"'


# A few fixed sizes rather than any number a client asks for: bounded cache
# size, bounded work per media, and good hit rates.
SPECS = MappingProxyType(
    {
        "small": ThumbnailSpec("small", 128),
        "medium": ThumbnailSpec("medium", 256),
        "large": ThumbnailSpec("large", 512),
    }
)
DEFAULT_SPEC = SPECS["medium"]


def source_version(source_sha256: str) -> str:
    """The token that goes into a thumbnail URL (`?v=`) so the URL changes with its bytes."""
    return f"{source_sha256[:12]}-r{RENDER_VERSION}"
