import logging
import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

logger = logging.getLogger("mosaic")

MIB = 1024 * 1024
SECRET_FILE = "secret_key"
# prometheus_client's multiprocess folder: `mosaic serve` sets it for several
# workers, and each worker's /metrics then reports the sum over all of them.
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# `mosaic fsck` leaves files younger than this alone: a running server may be writing them.
FSCK_GRACE_SECONDS = 600.0


def _cores() -> int:
    """Cores this process may run on (a container's cpuset, not the host's count)."""
    return len(os.sched_getaffinity(0)) or 1


class Settings(BaseSettings):
    """Every knob of the app, read from `MOSAIC_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="MOSAIC_", extra="ignore", env_ignore_empty=True)

    data_dir: Path = Path("./data")
    # Defaults to <data_dir>/cache when unset.
    cache_dir: Path | None = None
    # Any SQLAlchemy async URL; defaults to SQLite at <data_dir>/mosaic.db.
    database_url: str | None = None
    # Generated on first start and kept in <data_dir>/secret_key (mode 0600) when unset.
    secret_key: str | None = Field(default=None, repr=False)
    admin_username: str = "admin"
    admin_password: str | None = Field(default=None, repr=False)
    max_upload_bytes: int = Field(default=200 * MIB, gt=0)
    # Decoded pixels (width x height) above which an image is refused: 100 MP is
    # about 400 MB of RGBA, the most a 2-core/24 GiB box should decode at once.
    max_pixels: int = Field(default=100_000_000, gt=0)
    # CPU seconds one decode may use (upload check or thumbnail render) before
    # the image is refused with 422: bounds the time of a hostile file. A
    # 100 MP RGB PNG, the largest allowed, decodes in under 2 s here.
    render_cpu_seconds: float = Field(default=15.0, gt=0)
    cookie_secure: bool = False
    # Lifetime of a session token, in minutes (one week: a photo app stays signed in).
    access_token_minutes: int = Field(default=7 * 24 * 60, gt=0)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # Worker processes of `mosaic serve`; by default one per core. Each holds
    # its own copy of the app (~100 MiB).
    workers: int | None = Field(default=None, ge=1)
    # The server behind `mosaic serve`: granian over its own RSGI interface
    # (`mosaic.rsgi`), granian over ASGI, or uvicorn; see docs/performance.md.
    server: Literal["granian", "granian-asgi", "uvicorn"] = "granian"
    # Threads per worker process that decode and encode thumbnails; by default
    # the cores shared out between the workers (renders are CPU-bound: more
    # threads than cores only add memory and context switches).
    render_threads: int | None = Field(default=None, ge=1)
    # How far below the rest of the worker thumbnail renders and their writes
    # run (Linux nice steps): requests that need no render are answered first
    # when the cores are full. 0 renders at the worker's own priority.
    render_nice: int = Field(default=10, ge=0, le=19)
    # Renders running or queued per process before new misses get 503 +
    # Retry-After (hits are still served): 64 is ~1 s of work on 2 cores.
    render_queue: int = Field(default=64, ge=1)
    # /readyz reports not ready when the data or cache disk has less free space.
    min_free_bytes: int = Field(default=512 * MIB, ge=0)
    # Bytes of recently served thumbnails kept in memory (LRU) above the disk
    # cache, shared out between the workers; 64 MiB holds about 3,000 medium
    # thumbnails. 0 turns it off.
    memory_cache_bytes: int = Field(default=64 * MIB, ge=0)
    # Built frontend served at "/"; ignored when the folder does not exist.
    frontend_dir: Path = Path("frontend/dist")
    log_level: str = "INFO"

    @field_validator("secret_key")
    @classmethod
    def _refuse_placeholder_secret(cls, value: str | None) -> str | None:
        if value is not None and value.strip().lower() in {"changethis", "secret"}:
            raise ValueError("MOSAIC_SECRET_KEY is a placeholder; unset it to generate one")
        return value

    @property
    def resolved_workers(self) -> int:
        return self.workers if self.workers is not None else _cores()

    @property
    def resolved_render_threads(self) -> int:
        if self.render_threads is not None:
            return self.render_threads
        return max(1, _cores() // self.resolved_workers)

    @property
    def memory_cache_bytes_per_worker(self) -> int:
        return self.memory_cache_bytes // self.resolved_workers

    @property
    def originals_dir(self) -> Path:
        return self.data_dir / "originals"

    @property
    def resolved_cache_dir(self) -> Path:
        return self.cache_dir if self.cache_dir is not None else self.data_dir / "cache"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'mosaic.db').resolve()}"

    def resolved_secret_key(self) -> str:
        """The configured secret, or the one kept in the data dir (created once, mode 0600)."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / SECRET_FILE
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{SECRET_FILE}.{secrets.token_hex(8)}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
            try:
                # link() never replaces: when several workers start at once, the
                # first key wins and nobody reads a half-written file.
                os.link(tmp, path)
                logger.info("generated a secret key in %s", path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return path.read_text().strip()
