"""Stop signals in a granian worker: none may be lost.

A worker can be told to stop (SIGTERM, or SIGINT from a terminal) at any
moment of its start-up, and must then exit at once, not 10 seconds later when
the server's kill timeout ends it. Two gaps in granian 2.8 with uvloop:

- granian forks a worker after setting its own handlers, which do nothing in
  a child: until the worker gives its loop handlers of its own, a signal would
  be ignored. `default_stop_signals`, run in every child right after the fork,
  makes it end the process (nothing has been served yet).
- uvloop hears a signal only while its loop runs. One that arrives between two
  runs (after the app's start-up, while granian starts serving) is put aside
  and looked at only when another signal comes. `keep_stop_signals` raises
  such a signal again in the loop's next run.
"""

import asyncio
import functools
import signal
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def default_stop_signals() -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)


def keep_stop_signals(loop: asyncio.AbstractEventLoop) -> None:
    """Once `loop` first runs (after the server has given it its signal
    handlers), a stop signal that comes while it is not running is raised
    again as soon as it runs, where its handlers hear it."""

    def wrap_handlers() -> None:
        for sig in STOP_SIGNALS:
            handler = signal.getsignal(sig)
            if callable(handler):
                signal.signal(sig, functools.partial(_forward, loop, handler))

    loop.call_soon(wrap_handlers)


def _forward(
    loop: asyncio.AbstractEventLoop,
    handler: Any,
    signum: int,
    frame: FrameType | None,
) -> None:
    handler(signum, frame)
    if not loop.is_running() and not loop.is_closed():
        loop.call_soon_threadsafe(signal.raise_signal, signum)
