"""`mosaic fsck` finds and repairs inconsistencies between rows, originals and the cache."""

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from mosaic import fsck
from mosaic.config import Settings
from tests.conftest import upload
from tests.images import encode, quadrants

pytestmark = pytest.mark.anyio


def age(path: Path, seconds: float = 3600) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


@dataclass
class Mess:
    kept: dict[str, str]
    lost: dict[str, str]
    stray: Path
    fresh: Path
    partial: Path
    ghost: Path


async def make_mess(client: httpx.AsyncClient, headers: dict[str, str], settings: Settings) -> Mess:
    kept = (await upload(client, headers, encode(quadrants(), "JPEG"))).json()
    lost_file = (await upload(client, headers, encode(quadrants(), "PNG"))).json()
    await client.get(kept["thumbnail_url"], headers=headers)
    await client.get(lost_file["thumbnail_url"], headers=headers)
    (settings.originals_dir / lost_file["id"]).unlink()  # a row without its original

    stray = settings.originals_dir / str(uuid.uuid4())  # an original without a row
    stray.write_bytes(b"someone's photo")
    fresh = settings.originals_dir / str(uuid.uuid4())  # one being uploaded right now
    fresh.write_bytes(b"in flight")
    partial = settings.originals_dir / ".upload-abc.part"
    partial.write_bytes(b"half")
    ghost = settings.resolved_cache_dir / "ff" / str(uuid.UUID("ff" + "0" * 30))
    ghost.mkdir(parents=True)
    (ghost / "medium.jpg").write_bytes(b"\xff\xd8...\xff\xd9")
    for path in (stray, partial, ghost):  # old enough: not a write in progress
        age(path)
    return Mess(kept, lost_file, stray, fresh, partial, ghost)


async def test_check_and_repair(
    app: FastAPI, client: httpx.AsyncClient, alice: dict[str, str], settings: Settings
) -> None:
    mess = await make_mess(client, alice, settings)
    report = await fsck.check(app.state.engine, settings)
    assert report.rows_without_original == [uuid.UUID(mess.lost["id"])]
    assert report.originals_without_row == [mess.stray]
    assert report.partial_uploads == [mess.partial]
    assert report.cache_without_row == [mess.ghost]
    assert not report.clean

    await fsck.repair(app.state.engine, settings, report)
    assert (await fsck.check(app.state.engine, settings)).clean
    assert (settings.data_dir / "lost+found" / mess.stray.name).read_bytes() == b"someone's photo"
    assert mess.fresh.exists()  # too young to judge
    assert not mess.ghost.exists()
    listing = (await client.get("/api/media", headers=alice)).json()["items"]
    assert [item["id"] for item in listing] == [mess.kept["id"]]
    assert (await client.get(mess.kept["thumbnail_url"], headers=alice)).status_code == 200


def test_command_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
    env |= {"MOSAIC_DATA_DIR": str(tmp_path / "data"), "MOSAIC_ADMIN_PASSWORD": "fsck-admin-pass"}
    mosaic = str(Path(sys.executable).with_name("mosaic"))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [mosaic, "fsck", *args], env=env, capture_output=True, text=True, timeout=60
        )

    assert run().stdout.strip() == "clean"
    partial = tmp_path / "data" / "originals" / ".upload-x.part"
    partial.write_bytes(b"x")
    age(partial)
    found = run()
    assert found.returncode == 1 and "partial upload" in found.stdout
    fixed = run("--repair")
    assert fixed.returncode == 0 and "repaired" in fixed.stdout
    assert run().returncode == 0
    # A fresh leftover is left alone (a server may be writing it) unless no
    # server runs and the caller says so with --grace 0.
    partial.write_bytes(b"x")
    assert run().returncode == 0
    assert run("--grace", "0").returncode == 1
