"""Can this process do its job? Writable data and cache folders with room on their disks."""

import os
import shutil
import tempfile
from pathlib import Path


def _writable(folder: Path) -> str | None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix=".readyz-")
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        return f"{folder} is not writable ({exc.strerror or exc})"
    return None


def _room(folder: Path, min_free_bytes: int) -> str | None:
    try:
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        return f"cannot read free space of {folder} ({exc.strerror or exc})"
    if free < min_free_bytes:
        return f"{folder} has {free // (1024 * 1024)} MiB free, under {min_free_bytes // (1024 * 1024)} MiB"
    return None


def readiness_problems(folders: list[Path], min_free_bytes: int) -> list[str]:
    """Everything that keeps the app from accepting uploads and caching; empty when ready."""
    problems = []
    for folder in folders:
        problem = _writable(folder) or _room(folder, min_free_bytes)
        if problem is not None:
            problems.append(problem)
    return problems
