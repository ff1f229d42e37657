"""The `mosaic` command: `mosaic serve` (default) and `mosaic migrate`."""

import argparse
import asyncio

import uvicorn
from granian import Granian
from granian.constants import Interfaces

from .config import Settings
from .main import prepare


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mosaic", description="Mosaic media library")
    parser.add_argument(
        "command", nargs="?", default="serve", choices=["serve", "migrate"], help="default: serve"
    )
    args = parser.parse_args(argv)
    settings = Settings()
    # Once, in the parent: workers then find the schema, the admin and the secret ready.
    settings.resolved_secret_key()
    asyncio.run(prepare(settings))
    if args.command == "migrate":
        return
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
