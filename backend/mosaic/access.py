"""Who may see which media, answered from SQLite without leaving the event loop.

A thumbnail hit must not wait for a database thread: with SQLite, point
lookups by primary key take microseconds on a connection of our own. Answers
are cached and dropped whenever `PRAGMA data_version` says another connection
(any request, any worker process, any tool) committed a change, so a deleted
user or media is never served from a stale cache. Media are cached under
the id as a URL spells it, so a repeated lookup parses no UUID.
"""

import sqlite3
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

_ABSENT = object()


def parse_media_id(value: str) -> uuid.UUID | None:
    """Only the canonical 36-character form; anything else never reaches a path."""
    if len(value) != 36:
        return None
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return None
    return parsed if str(parsed) == value.lower() else None


@dataclass(frozen=True, slots=True)
class Viewer:
    user_id: uuid.UUID
    is_admin: bool


@dataclass(frozen=True, slots=True)
class MediaRef:
    id: uuid.UUID
    owner_id: uuid.UUID
    sha256: str


class AccessIndex:
    """Cached user and media lookups for SQLite; `available` is False for other databases."""

    def __init__(self, database_url: str, *, max_media: int = 100_000) -> None:
        url = make_url(database_url)
        self._path: Path | None = None
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            self._path = Path(url.database)
        self._connection: sqlite3.Connection | None = None
        self._version: int | None = None
        self._max_media = max_media
        self._viewers: dict[uuid.UUID, Viewer | None] = {}
        # Keyed by the canonical (lower-case) text of the id.
        self._media: OrderedDict[str, MediaRef | None] = OrderedDict()

    @property
    def available(self) -> bool:
        return self._path is not None

    def lookup(
        self, user_id: uuid.UUID, media_id: str | None
    ) -> tuple[Viewer | None, MediaRef | None]:
        """The user (None when the account is gone) and the media (None when
        missing, or when `media_id` is not a UUID in its canonical form)."""
        self._sync()
        viewer = self._viewer(user_id)
        media = self._media_ref(media_id) if media_id is not None and viewer is not None else None
        return viewer, media

    def _viewer(self, user_id: uuid.UUID) -> Viewer | None:
        if user_id in self._viewers:
            return self._viewers[user_id]
        row = self._one("SELECT is_admin FROM users WHERE id = ?", user_id)
        found = None if row is None else Viewer(user_id, bool(row[0]))
        self._viewers[user_id] = found
        return found

    def _media_ref(self, text: str) -> MediaRef | None:
        found = self._media.get(text, _ABSENT)
        if found is not _ABSENT:
            self._media.move_to_end(text)
            return found  # type: ignore[return-value]
        media_id = parse_media_id(text)
        if media_id is None:
            return None  # not cached: malformed ids cannot push real entries out
        canonical = str(media_id)
        if canonical != text:  # the same id in upper case
            return self._media_ref(canonical)
        row = self._one("SELECT owner_id, sha256 FROM media WHERE id = ?", media_id)
        found = None if row is None else MediaRef(media_id, uuid.UUID(str(row[0])), str(row[1]))
        self._media[text] = found
        if len(self._media) > self._max_media:
            self._media.popitem(last=False)
        return found

    def warm(self) -> None:
        """Open the connection now, once the schema exists, not on a user's request."""
        if self.available:
            self._sync()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _sync(self) -> None:
        if self._connection is None:
            assert self._path is not None, "check `available` first"
            # Opened on first use: the schema exists only after start-up migrated it.
            self._connection = sqlite3.connect(self._path, check_same_thread=False)
            self._connection.execute("PRAGMA query_only = 1")
        version = self._connection.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            self._version = version
            self._viewers.clear()
            self._media.clear()

    def _one(self, query: str, key: uuid.UUID) -> tuple[object, ...] | None:
        assert self._connection is not None
        # SQLAlchemy's Uuid type stores 32 hex digits on SQLite.
        row: tuple[object, ...] | None = self._connection.execute(query, (key.hex,)).fetchone()
        return row
