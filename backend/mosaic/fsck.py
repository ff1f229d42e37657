"""`mosaic fsck`: are the database, the originals and the cache consistent?

Finds rows whose original is missing, originals (and interrupted uploads)
that no row points to, and cache entries of media that no longer exist.
`--repair` deletes rows without an original (their media cannot be shown),
moves unclaimed originals to `<data dir>/lost+found/` (never deletes what a
user uploaded), and removes orphan cache entries and old partial uploads.

Files younger than a grace period are left alone: a server running beside
fsck may be between writing a file and committing its row.
"""

import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from .config import FSCK_GRACE_SECONDS, Settings
from .models import Media


@dataclass
class Report:
    rows_without_original: list[uuid.UUID] = field(default_factory=list)
    originals_without_row: list[Path] = field(default_factory=list)
    partial_uploads: list[Path] = field(default_factory=list)
    cache_without_row: list[Path] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (
            self.rows_without_original
            or self.originals_without_row
            or self.partial_uploads
            or self.cache_without_row
        )

    def lines(self) -> list[str]:
        out = [f"row without original: {media_id}" for media_id in self.rows_without_original]
        out += [f"original without row: {path}" for path in self.originals_without_row]
        out += [f"partial upload: {path}" for path in self.partial_uploads]
        out += [f"cache without row: {path}" for path in self.cache_without_row]
        return out


def _old(path: Path, now: float, grace: float) -> bool:
    try:
        return now - path.stat().st_mtime > grace
    except FileNotFoundError:
        return False


def _as_id(name: str) -> uuid.UUID | None:
    try:
        parsed = uuid.UUID(name)
    except ValueError:
        return None
    return parsed if str(parsed) == name else None


async def check(
    engine: AsyncEngine, settings: Settings, *, grace: float = FSCK_GRACE_SECONDS
) -> Report:
    async with async_sessionmaker(engine)() as session:
        ids = set((await session.scalars(select(Media.id))).all())
    now = time.time()
    report = Report()
    originals = settings.originals_dir
    on_disk: set[uuid.UUID] = set()
    if originals.is_dir():
        for path in sorted(originals.iterdir()):
            media_id = _as_id(path.name)
            if media_id is not None:
                on_disk.add(media_id)
                if media_id not in ids and _old(path, now, grace):
                    report.originals_without_row.append(path)
            elif path.name.startswith(".upload-") and _old(path, now, grace):
                report.partial_uploads.append(path)
    report.rows_without_original = sorted(ids - on_disk)
    cache = settings.resolved_cache_dir
    if cache.is_dir():
        for entry in sorted(cache.glob("*/*")):
            media_id = _as_id(entry.name)
            if entry.is_dir() and media_id is not None and media_id not in ids:
                if _old(entry, now, grace):
                    report.cache_without_row.append(entry)
    return report


async def repair(engine: AsyncEngine, settings: Settings, report: Report) -> None:
    if report.rows_without_original:
        async with async_sessionmaker(engine)() as session:
            await session.execute(delete(Media).where(Media.id.in_(report.rows_without_original)))
            await session.commit()
        for media_id in report.rows_without_original:
            shutil.rmtree(
                settings.resolved_cache_dir / media_id.hex[:2] / str(media_id), ignore_errors=True
            )
    if report.originals_without_row:
        lost = settings.data_dir / "lost+found"
        lost.mkdir(parents=True, exist_ok=True)
        for path in report.originals_without_row:
            path.replace(lost / path.name)
    for path in report.partial_uploads:
        path.unlink(missing_ok=True)
    for entry in report.cache_without_row:
        shutil.rmtree(entry, ignore_errors=True)
