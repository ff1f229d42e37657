"""Render slots shared between worker processes (mosaic.thumbnails.slots).

Two `RenderSlots` on one folder stand for two workers: `flock` locks belong to
the open file, so two openings in one process exclude each other exactly as two
processes do. One test uses a real second process, for what the kernel does
when it dies.
"""

import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future
from pathlib import Path

import pytest

from mosaic.thumbnails import RenderPool, RenderSlots


class Tracker:
    """Jobs that hold a slot until released, recording who ran when."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.started: list[tuple[str, float]] = []

    def job(self, name: str, seconds: float, *, spin: bool = False) -> Callable[[], str]:
        """With `spin`, the job holds the GIL as Python code does, so that a thread
        woken meanwhile (by a lock given back) waits for its turn to run."""

        def run() -> str:
            with self.lock:
                self.running += 1
                self.most = max(self.most, self.running)
                self.started.append((name, time.monotonic()))
            end = time.monotonic() + seconds
            while spin and time.monotonic() < end:
                pass
            time.sleep(max(0.0, end - time.monotonic()))
            with self.lock:
                self.running -= 1
            return name

        return run


@pytest.fixture
def pools(tmp_path: Path) -> Iterator[Callable[[], RenderPool]]:
    made: list[RenderPool] = []

    def make() -> RenderPool:
        made.append(RenderPool(RenderSlots(tmp_path / "slots", slots=2, own=1)))
        return made[-1]

    yield make
    for pool in made:
        pool.shutdown(cancel_futures=True)


def results(futures: list[Future[str]]) -> list[str]:
    return [future.result(timeout=20) for future in futures]


def test_each_worker_owns_its_share(tmp_path: Path) -> None:
    folder = tmp_path / "slots"
    first, second, third = (RenderSlots(folder, slots=2, own=1) for _ in range(3))
    handles = [slots.open(i) for slots in (first, second, third) for i in range(2)]
    try:
        assert [handle.owner for handle in handles] == [True, False, False, True, False, False]
    finally:
        for handle in handles:
            handle.close()


def test_a_worker_alone_renders_on_every_core(pools: Callable[[], RenderPool]) -> None:
    alone, idle = pools(), pools()
    idle.submit(str).result(timeout=10)  # started, owns the other slot, has nothing to do
    tracker = Tracker()
    futures = [alone.submit(tracker.job("alone", 0.1)) for _ in range(6)]
    assert results(futures) == ["alone"] * 6
    assert tracker.most == 2


def test_never_more_renders_than_slots(pools: Callable[[], RenderPool]) -> None:
    tracker = Tracker()
    workers = {"a": pools(), "b": pools(), "c": pools()}  # c owns no slot: it borrows
    futures = [
        pool.submit(tracker.job(name, 0.03)) for _ in range(8) for name, pool in workers.items()
    ]
    assert sorted(set(results(futures))) == ["a", "b", "c"]
    assert tracker.most == 2


def test_an_owner_gets_its_slot_back_after_one_render(pools: Callable[[], RenderPool]) -> None:
    busy, owner = pools(), pools()
    owner.submit(str).result(timeout=10)
    tracker = Tracker()
    queued = [busy.submit(tracker.job("busy", 0.1, spin=True)) for _ in range(12)]
    while tracker.most < 2:  # the busy worker borrowed the owner's idle slot
        time.sleep(0.005)
    mine = owner.submit(tracker.job("owner", 0.01))
    assert mine.result(timeout=20) == "owner"
    results(queued)
    order = [name for name, _ in sorted(tracker.started, key=lambda item: item[1])]
    # The owner waited for the render running on its slot, not for the other
    # worker's queue: most of that queue ran after it.
    assert order.index("owner") <= 5


def test_the_slot_of_a_dead_owner_is_taken_over(tmp_path: Path) -> None:
    folder = tmp_path / "slots"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import time
                from pathlib import Path
                from mosaic.thumbnails import RenderSlots
                slot = RenderSlots(Path({str(folder)!r}), slots=1, own=1).open(0)
                assert slot.owner
                slot.take()  # its one core busy for good
                print("holding", flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    pool = RenderPool(RenderSlots(folder, slots=1, own=1))
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        waiting = pool.submit(str, "rendered")
        time.sleep(0.3)
        assert not waiting.done()  # the slot is another process's
        holder.kill()  # a crash: the kernel releases its locks
        assert waiting.result(timeout=10) == "rendered"
        # This process adopted the free slot: a newcomer cannot own it.
        newcomer = RenderSlots(folder, slots=1, own=1).open(0)
        assert not newcomer.owner
        newcomer.close()
    finally:
        holder.kill()
        holder.communicate()
        pool.shutdown(cancel_futures=True)


def test_shutdown_cancels_what_waits_for_a_busy_slot(tmp_path: Path) -> None:
    folder = tmp_path / "slots"
    other = RenderSlots(folder, slots=1, own=1).open(0)
    other.take()  # another worker renders on the only core
    pool = RenderPool(RenderSlots(folder, slots=1, own=1))
    try:
        waiting = pool.submit(str, "never")
        pool.shutdown(cancel_futures=True)  # returns although a thread waits for the slot
        with pytest.raises(CancelledError):
            waiting.result(timeout=1)
        with pytest.raises(RuntimeError):
            pool.submit(str)
    finally:
        other.close()


def test_an_unusable_folder_still_renders(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "slots"
    slots = RenderSlots(folder, slots=2, own=1)
    shutil.rmtree(folder)
    folder.write_bytes(b"")  # a file where the folder was: no lock file can be made
    pool = RenderPool(slots)
    try:
        assert pool.submit(str, "rendered").result(timeout=10) == "rendered"
        assert "render slots unavailable" in caplog.text
    finally:
        pool.shutdown()
