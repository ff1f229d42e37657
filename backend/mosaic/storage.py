"""Originals on disk and their rows in the database, kept in step."""

import asyncio
import os
import uuid
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.ext.asyncio import AsyncSession

from .config import Settings
from .models import Media, User
from .schemas import MediaPublic
from .thumbnails import ThumbnailCache, probe_image, source_version
from .uploads import ReceivedFile


def original_path(settings: Settings, media_id: uuid.UUID) -> Path:
    # str(UUID) is 36 characters of hex and hyphens: safe as a file name.
    return settings.originals_dir / str(media_id)


def open_original(settings: Settings, media_id: uuid.UUID) -> BinaryIO | None:
    """The original opened for reading, or None when it is gone (deleted
    meanwhile, or lost from the disk)."""
    try:
        return original_path(settings, media_id).open("rb")
    except (FileNotFoundError, IsADirectoryError):
        return None


def media_public(media: Media) -> MediaPublic:
    return MediaPublic(
        id=media.id,
        filename=media.filename,
        content_type=media.content_type,
        size=media.size,
        width=media.width,
        height=media.height,
        sha256=media.sha256,
        owner=media.owner.username,
        created_at=media.created_at,
        thumbnail_url=f"/api/media/{media.id}/thumbnail?v={source_version(media.sha256)}",
    )


async def store_upload(
    session: AsyncSession, *, settings: Settings, owner: User, received: ReceivedFile
) -> Media:
    """Verify an uploaded file and keep it; on any failure nothing is left behind."""
    media_id = uuid.uuid4()
    target = original_path(settings, media_id)
    try:
        info = await asyncio.to_thread(
            probe_image,
            received.path,
            max_pixels=settings.max_pixels,
            cpu_seconds=settings.render_cpu_seconds,
        )
        os.replace(received.path, target)
        media = Media(
            id=media_id,
            owner=owner,
            filename=received.filename,
            content_type=info.content_type,
            size=received.size,
            width=info.width,
            height=info.height,
            sha256=received.sha256,
        )
        session.add(media)
        await session.commit()
    except BaseException:
        await session.rollback()
        received.path.unlink(missing_ok=True)
        target.unlink(missing_ok=True)
        raise
    return media


async def delete_media(
    session: AsyncSession, *, settings: Settings, cache: ThumbnailCache, media: Media
) -> None:
    """Delete the row, then the original, then every thumbnail.

    Row first: from then on no request can find the media. The original goes
    before the cache purge, so a render still in flight sees its source gone
    and leaves nothing behind.
    """
    media_id = media.id
    await session.delete(media)
    await session.commit()
    await asyncio.to_thread(original_path(settings, media_id).unlink, missing_ok=True)
    await cache.purge(media_id)
