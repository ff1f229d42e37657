"""Render threads that share the machine's cores with the other worker processes.

Each worker process renders the misses of the connections it accepted, and the
workers share one listening socket, so the kernel decides the split. Measured
here with two workers (40 tries each, `docs/performance.md`): a browser's six
connections split 3/3 or 4/2 most of the time, 5/1 a quarter of the time and
6/0 one time in twenty; sixteen split 8/8 to 13/3. With one render thread per
core it owns, a worker then still has renders queued at the end of a gallery
while the other's core sits idle, and a gallery whose connections all landed
on one worker (or a proxy's few upstream connections, or one HTTP/2
connection) renders on one core from start to end.

`RenderPool` gives every worker one render thread per core, and `RenderSlots`
keeps the renders of all workers together to one per core: each core is a
*slot*, an exclusive `flock` on a file in a shared folder, and each render
holds one. A worker *owns* its share of the slots (also a `flock`, held for its
lifetime). The thread on a slot the worker owns keeps it for as long as the
worker has renders queued, and 10 ms more (the next request of a busy
connection is that close: lending the core sooner made workers trade cores,
two renders then sharing one process's GIL, in galleries of six
connections). A thread on a slot another worker owns takes it only
while that owner leaves it free (nothing queued there), renders one miss and
gives it back; an owner that wants its slot back goes first (a third lock, the
*turnstile*: the owner holds it exclusively while it waits, the others pass it
shared). So two workers each busy with their own connections render as if alone,
one per core, and a worker with nothing to do lends its core to one that has.

Plain `fcntl.flock`, not the `filelock` package the cache entries use: this
needs shared locks and a wait in the kernel (a free slot is taken the moment
it is given back, with no polling), and the kernel releases every lock of a
process that dies, so a crashed worker never keeps a core.
"""

import fcntl
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

logger = logging.getLogger("mosaic.thumbnails")

# How long a render thread keeps a slot it owns once nothing is queued.
_LINGER = 0.01
_Job = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]


def _open(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


class RenderSlots:
    """`slots` slots in `folder`, shared by every process that opens it; this
    process owns up to `own` of them.

    Ownership is claimed when created, and a slot whose owner has died (the
    kernel gave its lock back) is adopted by a process that owns fewer than
    its share, such as a worker restarted while the one it replaces was still
    exiting.

    Example::

        slots = RenderSlots(Path("data/.render-slots"), slots=2, own=1)
        [slot.owner for slot in map(slots.open, range(slots.count))]  # e.g. [True, False]
    """

    def __init__(self, folder: Path, *, slots: int, own: int) -> None:
        """Raises OSError when the folder cannot be made or does not support
        `flock` (the caller renders without slots then)."""
        folder.mkdir(parents=True, exist_ok=True)
        probe = _open(folder / "probe.lock")
        try:
            fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared: never in anyone's way
        finally:
            os.close(probe)
        self.folder = folder
        self.count = slots
        self.share = own
        self._owned = 0
        self._lock = threading.Lock()

    def open(self, index: int) -> "Slot":
        """A handle on slot `index` for one thread, which closes it; owned when
        this process can claim it now."""
        slot = Slot(self, index)
        slot.claim()
        return slot

    def _may_own(self) -> bool:
        with self._lock:
            if self._owned >= self.share:
                return False
            self._owned += 1
            return True

    def _disowned(self) -> None:
        with self._lock:
            self._owned -= 1


class Slot:
    """A handle on one slot, for the one thread that renders on it."""

    def __init__(self, slots: RenderSlots, index: int) -> None:
        self.index = index
        self.owner = False
        self.held = False
        self._slots = slots
        fds: list[int] = []
        try:
            for name in ("owner", "slot", "turnstile"):
                fds.append(_open(slots.folder / f"{name}-{index}.lock"))
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        self._claim, self._slot, self._turnstile = fds
        self._closed = False

    def claim(self) -> bool:
        """Own this slot if nobody alive does and this process owns fewer than its share."""
        if self.owner or not self._slots._may_own():
            return self.owner
        try:
            fcntl.flock(self._claim, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._slots._disowned()  # another live process owns it
            return False
        self.owner = True
        return True

    def take(self) -> None:
        """Wait in the kernel until the slot is free and take it; the owner
        goes before threads of other workers that are waiting for it too."""
        fcntl.flock(self._turnstile, fcntl.LOCK_EX if self.owner else fcntl.LOCK_SH)
        try:
            fcntl.flock(self._slot, fcntl.LOCK_EX)
        finally:
            fcntl.flock(self._turnstile, fcntl.LOCK_UN)
        self.held = True

    def give_back(self) -> None:
        if self.held:
            fcntl.flock(self._slot, fcntl.LOCK_UN)
            self.held = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for fd in (self._slot, self._turnstile, self._claim):
            os.close(fd)  # closing gives back whatever lock it held
        if self.owner:
            self.owner = False
            self._slots._disowned()


class _Unshared:
    """No slot: a thread that renders whenever it has work."""

    owner = True
    held = True

    def claim(self) -> bool:
        return True

    def take(self) -> None:
        pass

    def give_back(self) -> None:
        pass

    def close(self) -> None:
        pass


class RenderPool:
    """The render threads of one process, one per slot of `slots`.

    `submit` and `shutdown` work as `ThreadPoolExecutor`'s do. Jobs start in the
    order they were submitted, each on the first thread that holds a slot.

    Example::

        pool = RenderPool(RenderSlots(folder, slots=2, own=1))
        future = pool.submit(render, path)
        pool.shutdown(cancel_futures=True)
    """

    def __init__(self, slots: RenderSlots, *, thread_name_prefix: str = "mosaic-render") -> None:
        self.slots = slots
        self._prefix = thread_name_prefix
        self._jobs: deque[_Job] = deque()
        self._changed = threading.Condition()
        self._running = 0
        self._shutdown = False
        self._threads: list[threading.Thread] = []

    def _start(self) -> None:
        """Open the slots and start the threads, at the first render (as
        `ThreadPoolExecutor` does), so a process that never renders claims none."""
        handles: list[Slot | _Unshared] = []
        try:
            for index in range(self.slots.count):
                handles.append(self.slots.open(index))
        except OSError as exc:
            # The folder is gone or unwritable: render on this process's share
            # of the cores alone rather than not at all.
            logger.error("render slots unavailable, rendering unshared: %s", exc)
            for handle in handles:
                handle.close()
            handles = [_Unshared() for _ in range(self.slots.share)]
        for index, slot in enumerate(handles):
            thread = threading.Thread(
                target=self._work,
                args=(slot,),
                name=f"{self._prefix}-{index}",
                # A thread waiting in the kernel for a slot that another worker
                # keeps busy cannot be woken to stop. It holds no job then, so
                # the process need not wait for it at exit.
                daemon=not slot.owner,
            )
            thread.start()
            self._threads.append(thread)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._changed:
            if self._shutdown:
                raise RuntimeError("cannot schedule new renders after shutdown")
            if not self._threads:
                self._start()
            self._jobs.append((future, fn, args))
            self._changed.notify_all()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Take no more renders, cancel the queued ones when asked, and (with
        `wait`) wait for the rest to finish."""
        with self._changed:
            self._shutdown = True
            if cancel_futures:
                while self._jobs:
                    self._jobs.popleft()[0].cancel()
            self._changed.notify_all()
            if not wait:
                return
            self._changed.wait_for(lambda: not self._jobs and self._running == 0)
        for thread in self._threads:
            if not thread.daemon:
                thread.join()

    def _work(self, slot: "Slot | _Unshared") -> None:
        """One render thread. On a slot this process owns it keeps the slot while
        renders are queued here; on another's, it takes the slot for one render
        at a time, when the owner leaves it free."""
        try:
            while True:
                with self._changed:
                    if slot.held and not self._jobs:
                        # The next request of a busy connection is usually a
                        # millisecond or two away: keep the core that long
                        # before lending it, so that workers each busy with
                        # their own connections do not trade cores.
                        self._changed.wait_for(lambda: bool(self._jobs) or self._shutdown, _LINGER)
                        if not self._jobs:
                            slot.give_back()  # nothing to do here: lend the core
                    self._changed.wait_for(lambda: bool(self._jobs) or self._shutdown)
                    if not self._jobs:
                        return  # shut down
                if not slot.held:
                    try:
                        slot.take()
                    except OSError as exc:  # not expected once the folder was probed
                        logger.error("render slot unusable, rendering unshared: %s", exc)
                        slot.close()
                        slot = _Unshared()
                    if not slot.owner:
                        slot.claim()  # free because its owner died? Then take its place.
                try:
                    self._run_next()
                finally:
                    if not slot.owner:
                        slot.give_back()  # the owner may want it back
        finally:
            slot.give_back()
            slot.close()

    def _run_next(self) -> None:
        with self._changed:
            if not self._jobs:
                return  # another thread took it while this one waited for its slot
            future, fn, args = self._jobs.popleft()
            self._running += 1
        try:
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args)
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(result)
        finally:
            with self._changed:
                self._running -= 1
                self._changed.notify_all()
