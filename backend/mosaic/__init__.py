"""Mosaic: a self-hosted media library with an on-demand thumbnail cache."""

__version__ = "0.1.0"
