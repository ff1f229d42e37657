import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock, Timeout
from PIL import Image

import mosaic.thumbnails.cache as cache_module
from mosaic.thumbnails import (
    RENDER_VERSION,
    SPECS,
    SourceMissing,
    ThumbnailCache,
    TooSlow,
    adopt_render_version,
    render_thumbnail,
    write_atomic,
)
from tests.conftest import files_under, wait_until_async
from tests.images import encode

pytestmark = pytest.mark.anyio
MEDIUM = SPECS["medium"]


class Counting:
    """Records what the cache reports (the CacheMetrics protocol)."""

    def __init__(self) -> None:
        self.generations = 0
        self.errors = 0

    def generated(self, seconds: float) -> None:
        self.generations += 1

    def cache_error(self) -> None:
        self.errors += 1


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "originals" / "photo"
    path.parent.mkdir()
    path.write_bytes(encode(Image.effect_noise((1600, 1200), 40).convert("RGB"), "JPEG"))
    return path


@pytest.fixture
def counting() -> Counting:
    return Counting()


@pytest.fixture
def cache(tmp_path: Path, counting: Counting) -> Iterator[ThumbnailCache]:
    store = ThumbnailCache(tmp_path / "cache", max_pixels=10**8, threads=2, metrics=counting)
    yield store
    store.close()


def is_complete_jpeg(data: bytes) -> bool:
    return data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9")


class TestLayout:
    def test_entry_is_sharded_by_id(self, cache: ThumbnailCache) -> None:
        media_id = uuid.UUID("ab12cd34-0000-4000-8000-000000000000")
        assert cache.path_for(media_id, MEDIUM) == (
            cache.root / "ab" / "ab12cd34-0000-4000-8000-000000000000" / "medium.jpg"
        )

    def test_paths_stay_below_root(self, cache: ThumbnailCache) -> None:
        for _ in range(200):
            path = cache.path_for(uuid.uuid4(), MEDIUM).resolve()
            assert path.is_relative_to(cache.root.resolve())


class TestMissAndHit:
    async def test_miss_writes_the_file(
        self, cache: ThumbnailCache, source: Path, counting: Counting
    ) -> None:
        media_id = uuid.uuid4()
        thumb = await cache.get(media_id, MEDIUM, source=source)
        assert thumb.generated
        path = cache.path_for(media_id, MEDIUM)
        assert path.read_bytes() == thumb.data
        assert is_complete_jpeg(thumb.data)
        assert counting.generations == 1
        # Only the JPEG: no temporary file, and the lock file went with the lock.
        assert [p.name for p in files_under(cache.root)] == ["medium.jpg"]

    async def test_hit_does_not_render(
        self, cache: ThumbnailCache, source: Path, counting: Counting
    ) -> None:
        media_id = uuid.uuid4()
        first = await cache.get(media_id, MEDIUM, source=source)
        second = await cache.get(media_id, MEDIUM, source=source)
        assert not second.generated
        assert second.data == first.data
        assert counting.generations == 1

    async def test_each_preset_is_its_own_entry(
        self, cache: ThumbnailCache, source: Path, counting: Counting
    ) -> None:
        media_id = uuid.uuid4()
        for spec in SPECS.values():
            thumb = await cache.get(media_id, spec, source=source)
            with Image.open(cache.path_for(media_id, spec)) as image:
                assert max(image.size) == spec.edge
            assert thumb.generated
        assert counting.generations == 3

    @pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
    async def test_damaged_file_is_rewritten(
        self, cache: ThumbnailCache, source: Path, counting: Counting, damage: str
    ) -> None:
        media_id = uuid.uuid4()
        good = (await cache.get(media_id, MEDIUM, source=source)).data
        path = cache.path_for(media_id, MEDIUM)
        path.write_bytes(
            {"empty": b"", "truncated": good[: len(good) // 2], "garbage": b"x"}[damage]
        )
        thumb = await cache.get(media_id, MEDIUM, source=source)
        assert thumb.generated and thumb.data == good
        assert path.read_bytes() == good
        assert counting.generations == 2

    async def test_fifty_concurrent_misses_render_once(
        self, cache: ThumbnailCache, source: Path, counting: Counting
    ) -> None:
        media_id = uuid.uuid4()
        results = await asyncio.gather(
            *(cache.get(media_id, MEDIUM, source=source) for _ in range(50))
        )
        assert counting.generations == 1
        assert len({r.data for r in results}) == 1
        assert [p.name for p in files_under(cache.root)] == ["medium.jpg"]

    async def test_cancelled_waiter_does_not_cancel_the_render(
        self, cache: ThumbnailCache, source: Path, counting: Counting
    ) -> None:
        media_id = uuid.uuid4()
        first = asyncio.ensure_future(cache.get(media_id, MEDIUM, source=source))
        second = asyncio.ensure_future(cache.get(media_id, MEDIUM, source=source))
        await asyncio.sleep(0)
        first.cancel()
        assert is_complete_jpeg((await second).data)
        assert counting.generations == 1

    async def test_renders_go_on_while_a_write_waits_on_the_disk(
        self, tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        counting = Counting()
        cache = ThumbnailCache(tmp_path / "cache", max_pixels=10**8, threads=1, metrics=counting)
        stalled, go_on = threading.Event(), threading.Event()
        real_fsync = os.fsync

        def slow_first_fsync(fd: int) -> None:
            if not stalled.is_set():
                stalled.set()
                go_on.wait(10)  # the disk is slow for the first write
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", slow_first_fsync)
        first_id = uuid.uuid4()
        try:
            first = asyncio.ensure_future(cache.get(first_id, MEDIUM, source=source))
            assert await asyncio.to_thread(stalled.wait, 10)
            second = asyncio.ensure_future(cache.get(uuid.uuid4(), MEDIUM, source=source))
            # One render thread, and the first write is stuck: the second render runs anyway.
            await wait_until_async(lambda: counting.generations == 2, seconds=10)
            assert counting.generations == 2 and not first.done()
            # The first entry's lock is held until its file is in place: another
            # process could not start rendering it meanwhile.
            with pytest.raises(Timeout):
                FileLock(cache.entry_dir(first_id) / "medium.lock", timeout=0).acquire()
            go_on.set()
            assert (await first).data == cache.path_for(first_id, MEDIUM).read_bytes()
            assert is_complete_jpeg((await second).data)
        finally:
            go_on.set()
            cache.close()

    async def test_close_serves_the_running_render_and_cancels_queued_ones(
        self, tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        started, go_on = threading.Event(), threading.Event()

        def held_first_render(*args: Any, **kwargs: Any) -> bytes:
            if not started.is_set():
                started.set()
                go_on.wait(10)
            return render_thumbnail(*args, **kwargs)

        monkeypatch.setattr(cache_module, "render_thumbnail", held_first_render)
        cache = ThumbnailCache(tmp_path / "cache", max_pixels=10**8, threads=1)
        running_id = uuid.uuid4()
        try:
            running = asyncio.ensure_future(cache.get(running_id, MEDIUM, source=source))
            assert await asyncio.to_thread(started.wait, 10)
            queued = asyncio.ensure_future(cache.get(uuid.uuid4(), MEDIUM, source=source))
            await asyncio.sleep(0)  # its render is queued behind the held one
            closing = asyncio.ensure_future(asyncio.to_thread(cache.close))
            # Shutting down: a render that never started cancels its request at
            # once, instead of leaving it waiting for good.
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(queued, 5)
            go_on.set()
            await asyncio.wait_for(closing, 10)
            # The render that was running is served, and nothing is kept.
            assert is_complete_jpeg((await asyncio.wait_for(running, 5)).data)
            assert files_under(cache.root) == []
        finally:
            go_on.set()
            cache.close()

    async def test_missing_source_creates_nothing(
        self, cache: ThumbnailCache, tmp_path: Path
    ) -> None:
        with pytest.raises(SourceMissing):
            await cache.get(uuid.uuid4(), MEDIUM, source=tmp_path / "nope")
        assert files_under(cache.root) == []
        assert not cache.root.exists() or list(cache.root.iterdir()) == []

    async def test_over_cpu_budget_leaves_nothing(self, tmp_path: Path) -> None:
        slow = tmp_path / "slow.png"
        slow.write_bytes(encode(Image.effect_noise((2000, 2000), 30), "PNG"))
        cache = ThumbnailCache(tmp_path / "cache", max_pixels=10**8, cpu_seconds=0.002)
        try:
            with pytest.raises(TooSlow):
                await cache.get(uuid.uuid4(), MEDIUM, source=slow)
            assert files_under(cache.root) == []  # no thumbnail, no lock file
        finally:
            cache.close()


def thread_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(sys.platform != "linux", reason="a nice value per thread is Linux's")
class TestPriority:
    """Misses (render and write) run below the event loop, so requests that need
    no render go first."""

    @pytest.mark.parametrize("nice", [0, 5])
    async def test_render_and_write_threads_run_nice_steps_below_the_loop(
        self, tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch, nice: int
    ) -> None:
        renders: list[int] = []
        writes: list[int] = []

        def recording_render(*args: Any, **kwargs: Any) -> Any:
            renders.append(thread_nice())
            return render_thumbnail(*args, **kwargs)

        def recording_write(*args: Any, **kwargs: Any) -> Any:
            writes.append(thread_nice())
            return write_atomic(*args, **kwargs)

        monkeypatch.setattr(cache_module, "render_thumbnail", recording_render)
        monkeypatch.setattr(cache_module, "write_atomic", recording_write)
        loop_nice = thread_nice()
        cache = ThumbnailCache(tmp_path / "cache", max_pixels=10**8, threads=2, nice=nice)
        try:
            for _ in range(2):  # a miss on each of the pools' threads
                await asyncio.gather(
                    cache.get(uuid.uuid4(), MEDIUM, source=source),
                    cache.get(uuid.uuid4(), MEDIUM, source=source),
                )
        finally:
            cache.close()
        expected = min(19, loop_nice + nice)
        assert renders == [expected] * 4
        # Writer threads are started by render threads, yet take the same value.
        assert writes == [expected] * 4
        assert thread_nice() == loop_nice  # the loop's own thread is untouched


class TestPurge:
    async def test_purge_removes_every_preset(self, cache: ThumbnailCache, source: Path) -> None:
        media_id = uuid.uuid4()
        other = uuid.uuid4()
        for spec in SPECS.values():
            await cache.get(media_id, spec, source=source)
        await cache.get(other, MEDIUM, source=source)
        await cache.purge(media_id)
        assert not cache.entry_dir(media_id).exists()
        assert cache.path_for(other, MEDIUM).exists()

    async def test_purge_racing_generation_leaves_no_orphan(
        self, cache: ThumbnailCache, source: Path, tmp_path: Path
    ) -> None:
        data = source.read_bytes()
        for iteration in range(60):
            media_id = uuid.uuid4()
            original = tmp_path / "originals" / str(media_id)
            original.write_bytes(data)
            request = asyncio.ensure_future(cache.get(media_id, MEDIUM, source=original))
            # Let the render start at a different point each time.
            for _ in range(iteration % 4):
                await asyncio.sleep(0)
            await asyncio.sleep((iteration % 5) * 0.002)
            original.unlink()  # the delete route removes the original first...
            await cache.purge(media_id)  # ...then purges
            assert not cache.entry_dir(media_id).exists(), iteration
            try:
                await request
            except SourceMissing:
                pass
            assert not cache.entry_dir(media_id).exists(), iteration
        assert not list(cache.root.glob("*/*"))


class TestUnwritableCache:
    async def test_still_serves_and_logs_once(
        self, tmp_path: Path, source: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        blocker = tmp_path / "not-a-directory"
        blocker.write_text("a file where the cache folder should be")
        counting = Counting()
        cache = ThumbnailCache(blocker / "cache", max_pixels=10**8, metrics=counting)
        try:
            with caplog.at_level(logging.ERROR, logger="mosaic.thumbnails"):
                for _ in range(3):
                    thumb = await cache.get(uuid.uuid4(), MEDIUM, source=source)
                    assert is_complete_jpeg(thumb.data)
        finally:
            cache.close()
        assert counting.errors == 3
        assert counting.generations == 3
        assert len([r for r in caplog.records if r.name == "mosaic.thumbnails"]) == 1


CRASHING_WRITER = textwrap.dedent(
    """
    import asyncio, os, sys, time, uuid
    from pathlib import Path
    from mosaic.thumbnails import SPECS, ThumbnailCache

    def stall(source, target):
        # The temporary file is written; announce it and hang before the rename.
        print("writing", flush=True)
        time.sleep(60)

    os.replace = stall
    root, source, media_id = Path(sys.argv[1]), Path(sys.argv[2]), uuid.UUID(sys.argv[3])
    cache = ThumbnailCache(root, max_pixels=10**8, threads=1)
    asyncio.run(cache.get(media_id, SPECS["medium"], source=source))
    """
)


def kill_mid_write(root: Path, source: Path, media_id: uuid.UUID) -> None:
    """Run a writer in another process and SIGKILL it between write and rename."""
    process = subprocess.Popen(
        [sys.executable, "-c", CRASHING_WRITER, str(root), str(source), str(media_id)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "writing"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    process.stdout.close()


class TestCrashSafety:
    def test_killed_writer_leaves_nothing_servable(self, tmp_path: Path, source: Path) -> None:
        root = tmp_path / "cache"
        media_id = uuid.uuid4()
        for _ in range(3):
            kill_mid_write(root, source, media_id)
        cache = ThumbnailCache(root, max_pixels=10**8, threads=1)
        try:
            assert cache.read(media_id, MEDIUM) is None  # nothing half-written is served
            temps = [p for p in files_under(root) if p.name.endswith(".tmp")]
            assert len(temps) == 3
            assert cache.clean_stale() == 4  # three temporary files and the lock file
            assert files_under(root) == []
        finally:
            cache.close()

    def test_clean_stale_leaves_a_held_lock_alone(self, tmp_path: Path, source: Path) -> None:
        root = tmp_path / "cache"
        media_id = uuid.uuid4()
        kill_mid_write(root, source, media_id)
        cache = ThumbnailCache(root, max_pixels=10**8, threads=1)
        lock_path = cache.entry_dir(media_id) / "medium.lock"
        try:
            # Another process rendering this entry right now holds its lock.
            with FileLock(lock_path, timeout=0):
                assert cache.clean_stale() == 0
                assert len(files_under(root)) == 2  # its lock file and temporary file
            assert cache.clean_stale() == 2
        finally:
            cache.close()

    async def test_whole_file_is_fsynced_before_the_rename(
        self, cache: ThumbnailCache, source: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # A power cut cannot be had here: watch the two system calls that make a
        # renamed thumbnail survive one, and their order.
        calls: list[tuple[str, object]] = []
        real_fsync, real_replace = os.fsync, os.replace

        def fsync(fd: int) -> None:
            calls.append(("fsync", os.fstat(fd).st_size))
            real_fsync(fd)

        def replace(src: str, dst: str) -> None:
            calls.append(("replace", Path(dst).name))
            real_replace(src, dst)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace)
        thumb = await cache.get(uuid.uuid4(), MEDIUM, source=source)
        assert calls == [("fsync", len(thumb.data)), ("replace", "medium.jpg")]

    async def test_after_crash_a_request_renders_a_whole_file(
        self, tmp_path: Path, source: Path
    ) -> None:
        root = tmp_path / "cache"
        media_id = uuid.uuid4()
        kill_mid_write(root, source, media_id)
        cache = ThumbnailCache(root, max_pixels=10**8, threads=1)
        try:
            thumb = await cache.get(media_id, MEDIUM, source=source)
            assert thumb.generated and is_complete_jpeg(thumb.data)
            assert cache.path_for(media_id, MEDIUM).read_bytes() == thumb.data
        finally:
            cache.close()


class TestRenderVersion:
    @pytest.fixture
    def cached(self, cache: ThumbnailCache, source: Path) -> uuid.UUID:
        """A media whose medium thumbnail is on disk."""
        media_id = uuid.uuid4()
        asyncio.run(cache.get(media_id, MEDIUM, source=source))
        return media_id

    def test_older_version_is_retired_then_removed(
        self, tmp_path: Path, cache: ThumbnailCache, cached: uuid.UUID
    ) -> None:
        stamp = tmp_path / "render-version"
        stamp.write_text(f"{RENDER_VERSION - 1}\n")
        other = cache.root / "not-a-shard"
        other.mkdir()

        assert adopt_render_version(cache.root, stamp) == 1
        assert cache.read(cached, MEDIUM) is None
        assert stamp.read_text() == f"{RENDER_VERSION}\n"
        retired = [p for p in cache.root.iterdir() if p.name.startswith(".retired-")]
        assert len(retired) == 1 and files_under(retired[0])  # renamed, not yet deleted
        assert cache.clean_stale() == 1
        assert sorted(p.name for p in cache.root.iterdir()) == ["not-a-shard"]

    def test_current_version_is_kept(
        self, tmp_path: Path, cache: ThumbnailCache, source: Path, cached: uuid.UUID
    ) -> None:
        stamp = tmp_path / "render-version"
        assert adopt_render_version(cache.root, stamp) == 1  # no stamp: made by an unknown version
        asyncio.run(cache.get(cached, MEDIUM, source=source))
        assert adopt_render_version(cache.root, stamp) == 0
        assert cache.read(cached, MEDIUM) is not None

    def test_no_cache_yet(self, tmp_path: Path) -> None:
        stamp = tmp_path / "render-version"
        assert adopt_render_version(tmp_path / "cache", stamp) == 0
        assert stamp.read_text() == f"{RENDER_VERSION}\n"

    def test_unusable_cache_is_not_stamped(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        blocker = tmp_path / "blocker"
        blocker.write_text("a file where the cache folder should be")
        stamp = tmp_path / "render-version"
        with caplog.at_level(logging.ERROR, logger="mosaic.thumbnails"):
            assert adopt_render_version(blocker, stamp) == 0
        assert not stamp.exists()  # the next start tries again
        assert "could not retire" in caplog.text
