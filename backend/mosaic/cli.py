"""The `mosaic` command: `mosaic serve` (default), `mosaic migrate`, `mosaic fsck [--repair]`."""

import argparse
import asyncio
import sys

import uvicorn
from granian import Granian
from granian.constants import Interfaces

from . import fsck
from .config import Settings
from .db import create_engine
from .main import prepare


async def run_fsck(settings: Settings, *, repair: bool, grace: float = fsck.GRACE_SECONDS) -> int:
    """Print what is inconsistent; 0 when clean (or repaired), 1 otherwise."""
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
        default=fsck.GRACE_SECONDS,
        metavar="SECONDS",
        help="fsck: leave files younger than this alone, a running server may be writing "
        "them (default %(default)s; 0 when no server runs)",
    )
    args = parser.parse_args(argv)
    settings = Settings()
    # Once, in the parent: workers then find the schema, the admin and the secret ready.
    settings.resolved_secret_key()
    asyncio.run(prepare(settings))
    if args.command == "migrate":
        return
    if args.command == "fsck":
        sys.exit(asyncio.run(run_fsck(settings, repair=args.repair, grace=args.grace)))
    if settings.server == "granian":
        Granian(
            "mosaic.main:create_app",
            factory=True,
            interface=Interfaces.ASGI,
            address=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_access=False,  # the app logs each request itself, with its request id
        ).serve()
        return
    uvicorn.run(
        "mosaic.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=False,
        proxy_headers=True,
    )
