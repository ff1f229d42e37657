"""The hot tier: recently served thumbnails kept in memory, bounded by bytes."""

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass

# (the media id's canonical text, the preset's name). Text rather than a UUID:
# a UUID hashes and compares in Python code, and a hit looks a key up twice.
Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class _Entry:
    data: bytes
    # (inode, size, mtime) of the disk file these bytes came from: a hit checks
    # it with one stat, so a file rewritten, truncated or purged on disk (by
    # this or another process) is never served from memory.
    fingerprint: tuple[int, int, int]


def fingerprint(stat: os.stat_result) -> tuple[int, int, int]:
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


class MemoryTier:
    """An LRU of thumbnail bytes holding at most `max_bytes` in total.

    Example::

        tier = MemoryTier(64 * 1024 * 1024)
        tier.put((str(media_id), "medium"), jpeg, fingerprint(os.stat(path)))
        tier.get((str(media_id), "medium"), fingerprint(os.stat(path)))  # -> jpeg
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        # Renders finish on worker threads while the event loop reads.
        self._lock = threading.Lock()

    def get(self, key: Key, current: tuple[int, int, int]) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.fingerprint != current:
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return entry.data

    def put(self, key: Key, data: bytes, current: tuple[int, int, int]) -> None:
        if len(data) > self.max_bytes:
            return
        with self._lock:
            self._drop(key)
            self._entries[key] = _Entry(data, current)
            self.size += len(data)
            while self.size > self.max_bytes:
                oldest = next(iter(self._entries))
                self._drop(oldest)

    def purge(self, media_id: str) -> None:
        with self._lock:
            for key in [key for key in self._entries if key[0] == media_id]:
                self._drop(key)

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, key: Key) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.size -= len(entry.data)
