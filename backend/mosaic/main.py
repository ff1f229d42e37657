import asyncio
import gc
import logging
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.routing import APIRoute
from filelock import AsyncFileLock
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send

from . import __version__, crud
from .access import AccessIndex
from .config import Settings
from .db import create_engine, migrate
from .errors import register_error_handlers
from .fastpath import ThumbnailHits
from .frontend import SinglePageApp
from .logs import RequestLogMiddleware, configure_logging
from .metrics import Metrics
from .openapi import install as install_openapi
from .routes import auth, health, media, users
from .security import TokenIssuer
from .stop_signals import keep_stop_signals
from .thumbnails import ThumbnailCache, adopt_render_version

if TYPE_CHECKING:
    from .rsgi import RSGIApp

logger = logging.getLogger("mosaic")
# Held while one process migrates and creates the first admin.
_PREPARE_LOCK = ".prepare.lock"
# Which render version made the cached thumbnails (see adopt_render_version).
RENDER_VERSION_FILE = "render-version"


async def bootstrap_admin(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """Create the first admin when there are no users yet."""
    async with sessionmaker() as session:
        if await crud.count_users(session) > 0:
            return
        password = settings.admin_password or secrets.token_urlsafe(12)
        await crud.create_user(
            session, username=settings.admin_username, password=password, is_admin=True
        )
        try:
            await session.commit()
        except IntegrityError:  # another process created it first
            return
    if not settings.admin_password:
        # Shown once: it is stored only as a hash.
        sys.stdout.write(
            f"Created admin user {settings.admin_username!r} with password: {password}\n"
        )
        sys.stdout.flush()
    logger.info("created admin user %r", settings.admin_username)


async def prepare(settings: Settings) -> None:
    """Everything a fresh data folder needs before serving: schema and first admin."""
    engine = create_engine(settings.resolved_database_url)
    try:
        await _prepare(settings, engine, async_sessionmaker(engine, expire_on_commit=False))
    finally:
        await engine.dispose()


async def _prepare(
    settings: Settings, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    # Every server process runs this as it starts. The lock lets one of them
    # migrate, create the admin and retire thumbnails of an older render
    # version while the others wait, then find all of it done.
    settings.originals_dir.mkdir(parents=True, exist_ok=True)
    async with AsyncFileLock(settings.data_dir / _PREPARE_LOCK):
        await migrate(engine)
        await bootstrap_admin(sessionmaker, settings)
        await asyncio.to_thread(
            adopt_render_version,
            settings.resolved_cache_dir,
            settings.data_dir / RENDER_VERSION_FILE,
        )


def _freeze_heap() -> None:
    # Everything allocated so far (modules, routes, models: ~125k objects)
    # lives as long as the process. Frozen, a full collection no longer
    # scans it: ~100 ms pauses that stalled bursts of requests become ~1 ms.
    # Once per process (tests start many apps); undone at shutdown.
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()


class MosaicApp(FastAPI):
    """The app, with thumbnail requests and `GET /healthz` answered in front of
    FastAPI's own middleware and routing (`ThumbnailHits`) once start-up is done.

    Middleware added with `add_middleware` does not see the requests the
    shortcut answers: whatever every response needs goes in `ThumbnailHits`
    too (as the request id and the access log line do).
    """

    thumbnails: ThumbnailHits | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hits = self.thumbnails
        if hits is None or scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        await hits(scope, receive, send)

    async def by_the_book(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI's own handling: what `ThumbnailHits` falls back to."""
        await super().__call__(scope, receive, send)


def _traced(app: FastAPI) -> bool:
    # FastAPI traces requests itself once an OpenTelemetry provider is set up.
    # The thumbnail shortcut would skip that, so it stays off then.
    telemetry = getattr(app, "_native_telemetry", None)
    return telemetry is not None and bool(telemetry.enabled())


class _Startup:
    """Runs start-up once, from the lifespan or, when a host skips it, the first request."""

    def __init__(self, app: MosaicApp, *, prepared: bool) -> None:
        self.app = app
        self.prepared = prepared
        self.done = False
        self.lock = asyncio.Lock()

    async def __call__(self) -> None:
        if self.done:
            return
        async with self.lock:
            if self.done:
                return
            state = self.app.state
            if not self.prepared:
                await _prepare(state.settings, state.engine, state.sessionmaker)
            # Leftovers of a crash; off the start-up path, it can take a while on a big cache.
            state.cleanup = asyncio.create_task(asyncio.to_thread(state.cache.clean_stale))
            # First-use costs paid here rather than by the first burst of requests
            # a worker gets (a worker that had none yet answered ~7 ms later).
            state.tokens.warm()
            state.access.warm()
            if not _traced(self.app):
                self.app.thumbnails = ThumbnailHits(self.app.by_the_book, state)
            _freeze_heap()
            self.done = True


class _EnsureStarted:
    def __init__(self, app: ASGIApp, startup: _Startup) -> None:
        self.app = app
        self.startup = startup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.startup.done:
            await self.startup()
        await self.app(scope, receive, send)


def _operation_id(route: APIRoute) -> str:
    # Handler names become operation ids and so the names of a generated client.
    return route.name


def served_app() -> MosaicApp:
    """The app of one `mosaic serve` worker (each loads and prepares its own).

    Under granian the data folder is prepared here, before the server gives
    the worker's loop its signal handlers: a worker told to stop meanwhile just
    exits. A stop signal that comes later, between the loop's runs, is kept for
    its next run (`mosaic.stop_signals`). uvicorn loads the app inside its
    running loop; there the lifespan prepares, as for any host.
    """
    settings = Settings()
    configure_logging(settings.log_level)  # what preparing logs is not lost
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        loop = asyncio.new_event_loop()  # not the server's loop: that one is not running yet
        try:
            loop.run_until_complete(prepare(settings))
        finally:
            loop.close()
        # granian has made the worker's loop the current one; it runs it next.
        keep_stop_signals(asyncio.get_event_loop())
        return create_app(settings, prepared=True)
    return create_app(settings)


def served_rsgi_app() -> "RSGIApp":
    """`served_app` for granian's RSGI interface (`mosaic.rsgi`)."""
    from .rsgi import RSGIApp

    return RSGIApp(served_app())


def create_app(settings: Settings | None = None, *, prepared: bool = False) -> MosaicApp:
    """The ASGI app. Its start-up (lifespan, or the first request) migrates the
    database and creates the first admin unless `prepared` says it is done."""
    settings = settings or Settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await startup()
        yield
        app.state.cache.close()
        app.state.access.close()
        await app.state.engine.dispose()
        gc.unfreeze()

    app = MosaicApp(
        title="Mosaic",
        version=__version__,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
    )
    startup = _Startup(app, prepared=prepared)
    metrics = Metrics()
    engine = create_engine(settings.resolved_database_url)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    app.state.metrics = metrics
    app.state.access = AccessIndex(settings.resolved_database_url)
    app.state.tokens = TokenIssuer(settings.resolved_secret_key(), settings.access_token_minutes)
    app.state.cache = ThumbnailCache(
        settings.resolved_cache_dir,
        max_pixels=settings.max_pixels,
        cpu_seconds=settings.render_cpu_seconds,
        threads=settings.resolved_render_threads,
        nice=settings.render_nice,
        memory_bytes=settings.memory_cache_bytes_per_worker,
        max_pending=settings.render_queue,
        metrics=metrics,
    )

    register_error_handlers(app)
    install_openapi(app)
    for module in (auth, users, media, health):
        app.include_router(module.router)
    if settings.frontend_dir.is_dir():
        app.mount("/", SinglePageApp(settings.frontend_dir), name="frontend")
    app.add_middleware(_EnsureStarted, startup=startup)
    app.add_middleware(RequestLogMiddleware)
    return app
