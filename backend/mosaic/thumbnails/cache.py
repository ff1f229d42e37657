"""The on-disk thumbnail cache: one directory per media, atomic writes, single-flight misses."""

import asyncio
import logging
import os
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from uuid import UUID

from filelock import FileLock, Timeout

from .exceptions import Overloaded, SourceMissing
from .memory import MemoryTier, fingerprint
from .render import render_thumbnail
from .spec import RENDER_VERSION, ThumbnailSpec

logger = logging.getLogger("mosaic.thumbnails")

_JPEG_START = b"\xff\xd8"
_JPEG_END = b"\xff\xd9"
_TEMP_SUFFIX = ".tmp"
# How long a generation waits for another process that holds the same entry.
_LOCK_TIMEOUT_SECONDS = 60
_LOCK_POLL_SECONDS = 0.001
# A shard of the layout: the first two hex digits of the media ids below it.
_SHARD_GLOB = "[0-9a-f][0-9a-f]"
# Shards of an older render version, renamed aside until `clean_stale` removes them.
_RETIRED_PREFIX = ".retired-"


def _thread_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def _lowered_nice(steps: int) -> int | None:
    """The nice value `steps` below the calling thread's, or None to leave
    threads as they start: per-thread nice values are Linux's."""
    if not steps or sys.platform != "linux":
        return None
    return min(19, _thread_nice() + steps)


def _run_at(nice: int | None) -> None:
    """Pool thread start: take the cache's nice value for renders and writes.

    Linux keeps a nice value per thread, so the event loop keeps its own: a
    hit or a `/healthz` that arrives while renders fill every core wakes the
    loop at once instead of waiting behind a render's time slice
    (docs/performance.md: half the 90th-percentile latency of hits during a
    cold gallery, at the same gallery rate). If refused, the thread keeps the
    nice value it started with.
    """
    if nice is not None:
        with suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


class CacheMetrics(Protocol):
    """What the cache reports; the app wires it to Prometheus."""

    def generated(self, seconds: float) -> None: ...

    def cache_error(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Thumbnail:
    """JPEG bytes and whether this request had to wait for a render."""

    data: bytes
    generated: bool


def _read_valid(path: str | Path) -> tuple[bytes, tuple[int, int, int]] | None:
    """The cached JPEG and the fingerprint of the file read, or None when it
    is missing, empty or truncated."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
            stat = os.fstat(handle.fileno())
    except OSError:
        return None
    if len(data) < 4 or not data.startswith(_JPEG_START) or not data.endswith(_JPEG_END):
        return None
    return data, fingerprint(stat)


def write_atomic(target: Path, data: bytes) -> os.stat_result:
    """Write `data` to `target` so that readers see the old file or the whole new one;
    returns the new file's `stat` (as `os.stat(target)` would give it).

    The temporary file lives in the target's directory, so `os.replace` is a
    rename within one filesystem; it is fsynced first so a crash after the
    rename cannot leave an empty file under the final name (~0.5-1 ms here for a
    20 KB thumbnail, 0.2 ms of it CPU). Every read still rejects a file without
    SOI and EOI (`_read_valid`), whatever a crash or another tool left. Plain
    `os` calls, not `tempfile.mkstemp` and a file object: ~0.12 ms less CPU per
    thumbnail (docs/performance.md), with the same private mode (0600) and the
    same kind of name (`.<name>.<random>.tmp`, which `clean_stale` finds).
    """
    temp = f"{target.parent}/.{target.name}.{secrets.token_hex(6)}{_TEMP_SUFFIX}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
            stat = os.fstat(fd)  # the rename changes no field a fingerprint uses
        finally:
            os.close(fd)
        os.replace(temp, target)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    return stat


def adopt_render_version(root: Path, stamp: Path) -> int:
    """Retire every thumbnail under `root` unless `stamp` says they were rendered
    by this `RENDER_VERSION`, then record this version in `stamp`.

    ETags and URLs carry the render version, so after a change in rendering
    the files on disk would be served under a version that did not make them.
    Each shard folder is renamed aside (one rename per shard, so start-up does
    not wait on a big cache) and `clean_stale` deletes it in the background;
    its media render again on their next request. Call it before serving,
    from one process at a time. Returns how many shards were retired.

    Example::

        adopt_render_version(Path("data/cache"), Path("data/render-version"))
    """
    try:
        recorded = stamp.read_text().strip()
    except FileNotFoundError:
        recorded = None
    if recorded == str(RENDER_VERSION):
        return 0
    retired = 0
    try:
        shards = [path for path in root.iterdir() if path.match(_SHARD_GLOB)]
        token = secrets.token_hex(4)
        for shard in shards:
            os.rename(shard, root / f"{_RETIRED_PREFIX}{token}-{shard.name}")
            retired += 1
    except FileNotFoundError:
        pass  # no cache yet
    except OSError as exc:
        # Not stamped, so the next start tries again.
        logger.error("could not retire thumbnails of an older render version: %s", exc)
        return retired
    write_atomic(stamp, f"{RENDER_VERSION}\n".encode())
    if retired:
        logger.info(
            "render version %s (was %s): %d cache folders retired, their thumbnails render again",
            RENDER_VERSION,
            recorded or "unknown",
            retired,
        )
    return retired


def _unlink_lock(path: str | Path) -> bool:
    """Remove a lock file its caller holds. A process waiting on it sees the
    unlinked inode and retries on a new file (filelock >= 4 checks st_nlink)."""
    try:
        os.unlink(path)
    except OSError:
        return False
    return True


def _release(lock: FileLock) -> None:
    # Removed while still held, so no lock files pile up in the cache.
    _unlink_lock(lock.lock_file)
    lock.release()


_Settle = Callable[[tuple[bytes, bool] | None, BaseException | None], None]


def _settle(
    future: asyncio.Future[tuple[bytes, bool]],
    result: tuple[bytes, bool] | None,
    error: BaseException | None,
) -> None:
    """Event loop side: complete a miss's future, unless it is already done."""
    if future.done():
        return
    if error is None:
        assert result is not None
        future.set_result(result)
    elif isinstance(error, CancelledError):
        future.cancel()
    else:
        future.set_exception(error)


def _settled(
    settle: _Settle, step: Callable[..., tuple[bytes, bool] | None], *args: object
) -> None:
    """Pool thread: run one step of a miss and settle the request with what it
    returns or raises (a step that returns None has handed the miss on)."""
    try:
        result = step(*args)
    except BaseException as exc:
        settle(None, exc)
    else:
        if result is not None:
            settle(result, None)


@dataclass(frozen=True, slots=True)
class _Rendered:
    """What a render thread hands on: the bytes, and the entry's lock, still held,
    when they are to be stored (None when found on disk or the cache is unusable)."""

    data: bytes
    lock: FileLock | None
    generated: bool


class ThumbnailCache:
    """Thumbnails of originals, rendered on first request and kept on disk.

    Layout: `<root>/<first two hex digits of the id>/<id>/<preset>.jpg`. While a
    thumbnail is rendered and stored an empty `<preset>.lock` beside it
    coordinates server processes; its holder removes it when done. All of a
    media's thumbnails share one directory, so `purge` is one removal.

    A miss is rendered in one thread pool and written (temporary file, fsync,
    rename) in another, the entry's lock held throughout: while a write waits on
    the disk, its render thread goes on to the next render instead of leaving a
    core idle (see docs/performance.md: the fsync then costs a cold gallery ~1%, not ~11%).
    With `nice`, both pools' threads run that many nice steps below the thread
    that makes the cache, the event loop's (Linux), so requests that need no
    render are not kept waiting by misses.

    Example (inside a coroutine)::

        cache = ThumbnailCache(Path("data/cache"), max_pixels=100_000_000)
        thumb = await cache.get(media_id, SPECS["medium"], source=original)
        await cache.purge(media_id)
    """

    def __init__(
        self,
        root: Path,
        *,
        max_pixels: int,
        cpu_seconds: float | None = None,
        threads: int | None = None,
        nice: int = 0,
        memory_bytes: int = 0,
        max_pending: int = 64,
        metrics: CacheMetrics | None = None,
    ) -> None:
        self.root = root
        self._root = os.fspath(root)
        self.memory = MemoryTier(memory_bytes) if memory_bytes > 0 else None
        self.max_pixels = max_pixels
        self.cpu_seconds = cpu_seconds
        self._metrics = metrics
        threads = threads or os.cpu_count() or 2
        # Set here, not relative to whichever thread starts a pool thread: the
        # render threads start the writer threads.
        lowered = _lowered_nice(nice)
        self._executor = ThreadPoolExecutor(
            max_workers=threads,
            thread_name_prefix="mosaic-render",
            initializer=_run_at,
            initargs=(lowered,),
        )
        self._writer = ThreadPoolExecutor(
            max_workers=threads,
            thread_name_prefix="mosaic-write",
            initializer=_run_at,
            initargs=(lowered,),
        )
        self._closed = False
        self._inflight: dict[tuple[UUID, str], asyncio.Future[tuple[bytes, bool]]] = {}
        # Renders running or queued at most; past that a new miss is refused
        # (Overloaded) instead of queueing without limit behind the pool.
        self.max_pending = max_pending
        self._logged_errors: set[tuple[str, int | None]] = set()

    def entry_dir(self, media_id: UUID) -> Path:
        # Only a parsed UUID reaches the filesystem: its hex form cannot hold
        # "/", ".." or NUL, so the path stays below the root.
        hex_id = media_id.hex
        return self.root / hex_id[:2] / str(media_id)

    def path_for(self, media_id: UUID, spec: ThumbnailSpec) -> Path:
        return self.entry_dir(media_id) / spec.filename

    def read(self, media_id: UUID, spec: ThumbnailSpec) -> bytes | None:
        """The cached thumbnail if a complete one is on disk (no render, no lock).

        With a memory tier, a hit costs one stat: the bytes come from memory
        as long as the file on disk is still the one they were read from.
        """
        text = str(media_id)
        # The same path as path_for(), as a plain string: this is the hot path.
        # (The shard, the first two hex digits, starts the text form too.)
        path = f"{self._root}/{text[:2]}/{text}/{spec.filename}"
        key = (text, spec.name)
        if self.memory is not None:
            try:
                current = fingerprint(os.stat(path))
            except OSError:
                return None
            data = self.memory.get(key, current)
            if data is not None:
                return data
        found = _read_valid(path)
        if found is None:
            return None
        if self.memory is not None:
            self.memory.put(key, *found)
        return found[0]

    async def get(self, media_id: UUID, spec: ThumbnailSpec, *, source: Path) -> Thumbnail:
        """The thumbnail, from disk when cached, else rendered once and stored.

        Concurrent misses for one entry share a single render. Raises
        `Overloaded` when `max_pending` renders are already pending (joining
        one of them is always allowed), `SourceMissing` when the original is
        gone and `Unrenderable` when it cannot be decoded.
        """
        cached = self.read(media_id, spec)
        if cached is not None:
            return Thumbnail(cached, generated=False)
        key = (media_id, spec.name)
        future = self._inflight.get(key)
        if future is None:
            if len(self._inflight) >= self.max_pending:
                raise Overloaded(f"{len(self._inflight)} thumbnails are being rendered")
            future = self._start(media_id, spec, source)
            self._inflight[key] = future
            future.add_done_callback(self._forget(key, future))
        # shield: a client that disconnects must not cancel the render others wait on.
        data, _ = await asyncio.shield(future)
        return Thumbnail(data, generated=True)

    def _forget(
        self, key: tuple[UUID, str], future: asyncio.Future[tuple[bytes, bool]]
    ) -> Callable[[asyncio.Future[tuple[bytes, bool]]], None]:
        def done(_: asyncio.Future[tuple[bytes, bool]]) -> None:
            if self._inflight.get(key) is future:
                del self._inflight[key]
            if not future.cancelled():
                future.exception()  # mark retrieved: nobody may be waiting any more

        return done

    async def purge(self, media_id: UUID) -> None:
        """Remove every thumbnail of a media; call it after its original is gone.

        Waits for this process's renders of that media first, so none of them
        can write a file after `purge` returns.
        """
        pending = [future for (mid, _), future in self._inflight.items() if mid == media_id]
        if pending:
            await asyncio.wait(pending)
        if self.memory is not None:
            self.memory.purge(str(media_id))
        await asyncio.to_thread(self._remove_entry, media_id)

    def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._writer.shutdown(wait=True)

    def clean_stale(self) -> int:
        """Delete the temporary and lock files a crashed process left, and the
        folders `adopt_render_version` retired; returns how many.

        Temporary and lock files only exist while their entry's lock is held, so those of an entry
        whose lock can be taken at once are stale. Safe while other processes
        serve: a lock file is removed only by a holder of its lock, and a waiter
        that finds its lock file unlinked retries on a fresh one.
        """
        removed = 0
        for retired in self.root.glob(f"{_RETIRED_PREFIX}*"):
            shutil.rmtree(retired, ignore_errors=True)
            removed += not retired.exists()
        presets: set[Path] = set()
        for leftover in self.root.glob(f"{_SHARD_GLOB}/*/*.lock"):
            presets.add(leftover.with_suffix(""))
        for temp in self.root.glob(f"{_SHARD_GLOB}/*/.*{_TEMP_SUFFIX}"):
            presets.add(temp.parent / temp.name[1:].split(".", 1)[0])
        for preset in sorted(presets):
            lock_path = preset.parent / f"{preset.name}.lock"
            try:
                with FileLock(lock_path, timeout=0):
                    for temp in preset.parent.glob(f".{preset.name}.*{_TEMP_SUFFIX}"):
                        temp.unlink(missing_ok=True)
                        removed += 1
                    if _unlink_lock(lock_path):
                        removed += 1
            except (Timeout, OSError):
                continue  # in use, or the cache is not writable: leave it
        if removed:
            logger.info(
                "removed %d stale temporary files, lock files or retired folders from the "
                "thumbnail cache",
                removed,
            )
        return removed

    def _start(
        self, media_id: UUID, spec: ThumbnailSpec, source: Path
    ) -> asyncio.Future[tuple[bytes, bool]]:
        """Hand a miss to the render pool; the future is settled by the thread
        that finishes it (the render thread, or the writer thread it hands on to).

        One wake-up of the event loop per miss, where awaiting each pool in turn
        took two, plus a task and two wrapped futures (docs/performance.md).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[bytes, bool]] = loop.create_future()

        def settle(result: tuple[bytes, bool] | None, error: BaseException | None) -> None:
            with suppress(RuntimeError):  # the loop is closed: nobody is waiting
                loop.call_soon_threadsafe(_settle, future, result, error)

        def cancelled(job: Future[None]) -> None:
            # close() cancels renders still queued: their requests see the cancellation.
            if job.cancelled():
                settle(None, CancelledError())

        self._executor.submit(
            _settled, settle, self._miss, media_id, spec, source, settle
        ).add_done_callback(cancelled)
        return future

    # -- worker-thread side -------------------------------------------------

    def _generate(self, media_id: UUID, spec: ThumbnailSpec, source: Path) -> _Rendered:
        """Render thread: take the entry's lock and render, unless another process
        stored the thumbnail meanwhile. The lock stays held for `_store`."""
        if not source.is_file():
            raise SourceMissing(str(media_id))
        entry = self.entry_dir(media_id)
        try:
            entry.mkdir(parents=True, exist_ok=True)
            # thread_local=False: the writer thread that stores the file releases it.
            lock = FileLock(
                entry / f"{spec.name}.lock", timeout=_LOCK_TIMEOUT_SECONDS, thread_local=False
            )
            # filelock polls every 50 ms by default, and a render takes ~25 ms.
            # A worker waiting on another's render sees it ~1 ms after it is
            # written with 1 ms polls (5 ms left it 2-5 ms behind, a tenth of a
            # miss); each poll is an open, a flock and a close, ~25 per wait.
            lock.acquire(poll_interval=_LOCK_POLL_SECONDS)
        except (OSError, Timeout) as exc:
            # The cache is unusable (read-only disk, a file where a folder should
            # be...): still serve the thumbnail, just don't keep it.
            self._report(exc)
            return _Rendered(self._render(source, spec, media_id), lock=None, generated=True)
        try:
            cached = _read_valid(entry / spec.filename)  # another process may have made it
            if cached is None:
                return _Rendered(self._render(source, spec, media_id), lock=lock, generated=True)
        except BaseException as exc:
            if isinstance(exc, SourceMissing):
                self._remove_entry(media_id)
            _release(lock)
            raise
        _release(lock)
        return _Rendered(cached[0], lock=None, generated=False)

    def _miss(
        self, media_id: UUID, spec: ThumbnailSpec, source: Path, settle: _Settle
    ) -> tuple[bytes, bool] | None:
        """Render thread: render, then hand the bytes to a writer thread to store
        (None: the writer settles the request), or return them when there is
        nothing to store."""
        rendered = self._generate(media_id, spec, source)
        if rendered.lock is None:
            return rendered.data, rendered.generated
        if not self._closed:
            with suppress(RuntimeError):  # the writer pool is shut down: as below
                self._writer.submit(
                    _settled,
                    settle,
                    self._store,
                    media_id,
                    spec,
                    source,
                    rendered.data,
                    rendered.lock,
                )
                return None
        _release(rendered.lock)  # shutting down: serve it, keep nothing
        return rendered.data, True

    def _store(
        self, media_id: UUID, spec: ThumbnailSpec, source: Path, data: bytes, lock: FileLock
    ) -> tuple[bytes, bool]:
        """Writer thread: put a render in place and release the entry's lock."""
        target = self.path_for(media_id, spec)
        try:
            try:
                written = write_atomic(target, data)
                if self.memory is not None:
                    key = (str(media_id), spec.name)
                    self.memory.put(key, data, fingerprint(written))
            except OSError as exc:
                self._report(exc)
            if not source.is_file():
                # The media was deleted while we rendered: leave nothing behind.
                self._remove_entry(media_id)
                raise SourceMissing(str(media_id))
            return data, True
        finally:
            _release(lock)

    def _render(self, source: Path, spec: ThumbnailSpec, media_id: UUID) -> bytes:
        started = time.perf_counter()
        try:
            data = render_thumbnail(
                source, spec, max_pixels=self.max_pixels, cpu_seconds=self.cpu_seconds
            )
        except FileNotFoundError as exc:
            raise SourceMissing(str(media_id)) from exc
        if self._metrics is not None:
            self._metrics.generated(time.perf_counter() - started)
        return data

    def _remove_entry(self, media_id: UUID) -> None:
        entry = self.entry_dir(media_id)
        # Another process may still be finishing a write into the folder; it
        # removes its own leftovers too, but retry so ours is gone on return.
        for _ in range(5):
            shutil.rmtree(entry, ignore_errors=True)
            if not entry.exists():
                return
        logger.warning("could not remove %s", entry)

    def _report(self, exc: BaseException) -> None:
        if self._metrics is not None:
            self._metrics.cache_error()
        signature = (type(exc).__name__, getattr(exc, "errno", None))
        if signature not in self._logged_errors:
            self._logged_errors.add(signature)
            logger.error("thumbnail cache unavailable, serving uncached: %s", exc)
