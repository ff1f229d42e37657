"""The `mosaic` command: `mosaic serve` (default), `mosaic migrate`, `mosaic fsck [--repair]`."""

import argparse
import asyncio
import os
import sys
import tempfile

# Only settings at the top: `mosaic serve` must not load the app in the parent
# process, which only supervises the workers (each loads the app itself).
from .config import FSCK_GRACE_SECONDS, METRICS_DIR_VARIABLE, Settings
from .stop_signals import default_stop_signals

# How long a stopping server waits for a worker (in-flight requests finish
# first) before killing it.
_WORKERS_KILL_SECONDS = 10


async def run_fsck(settings: Settings, *, repair: bool, grace: float = FSCK_GRACE_SECONDS) -> int:
    """Print what is inconsistent; 0 when clean (or repaired), 1 otherwise."""
    from . import fsck
    from .db import create_engine

    engine = create_engine(settings.resolved_database_url)
    try:
        report = await fsck.check(engine, settings, grace=grace)
        for line in report.lines():
            sys.stdout.write(line + "\n")
        if report.clean:
            sys.stdout.write("clean\n")
            return 0
        if repair:
            await fsck.repair(engine, settings, report)
            sys.stdout.write("repaired\n")
            return 0
        return 1
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mosaic", description="Mosaic media library")
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "migrate", "fsck"],
        help="default: serve",
    )
    parser.add_argument("--repair", action="store_true", help="fsck: fix what it finds")
    parser.add_argument(
        "--grace",
        type=float,
        default=FSCK_GRACE_SECONDS,
        metavar="SECONDS",
        help="fsck: leave files younger than this alone, a running server may be writing "
        "them (default %(default)s; 0 when no server runs)",
    )
    args = parser.parse_args(argv)
    settings = Settings()
    settings.resolved_secret_key()  # fails early on a data folder that is not writable
    if args.command in {"migrate", "fsck"}:
        from .main import prepare

        asyncio.run(prepare(settings))
        if args.command == "fsck":
            sys.exit(asyncio.run(run_fsck(settings, repair=args.repair, grace=args.grace)))
        return
    serve(settings)


def serve(settings: Settings) -> None:
    """Start the server's workers. Each one loads the app and prepares the data
    folder (one at a time, under a file lock); this process stays small, as it
    only supervises them (docs/performance.md, target 6)."""
    if settings.resolved_workers > 1 and not os.environ.get(METRICS_DIR_VARIABLE):
        # Workers add their metrics up through files in a folder of this run's own.
        with tempfile.TemporaryDirectory(prefix="mosaic-metrics-") as folder:
            os.environ[METRICS_DIR_VARIABLE] = folder
            try:
                _serve(settings)
            finally:
                del os.environ[METRICS_DIR_VARIABLE]
        return
    _serve(settings)


def _serve(settings: Settings) -> None:
    if settings.server.startswith("granian"):
        from granian import Granian
        from granian.constants import Interfaces

        # RSGI, granian's own interface, by default: ~13-20% less CPU per
        # thumbnail hit than its ASGI (`mosaic.rsgi`; docs/performance.md).
        rsgi = settings.server == "granian"
        # A worker stopped while it loads the app must exit (`mosaic.stop_signals`).
        os.register_at_fork(after_in_child=default_stop_signals)
        Granian(
            "mosaic.main:served_rsgi_app" if rsgi else "mosaic.main:served_app",
            factory=True,
            interface=Interfaces.RSGI if rsgi else Interfaces.ASGI,
            websockets=False,  # Mosaic has no websocket routes
            address=settings.host,
            port=settings.port,
            workers=settings.resolved_workers,
            log_access=False,  # the app logs each request itself, with its request id
            # A worker slow to finish must not keep the server from exiting.
            workers_kill_timeout=_WORKERS_KILL_SECONDS,
        ).serve()
        return
    import uvicorn

    uvicorn.run(
        "mosaic.main:served_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.resolved_workers,
        access_log=False,
        proxy_headers=True,
    )
