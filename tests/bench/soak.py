"""Soak: a real server under a bounded mixed load, then a consistency check.

Two users share a `mosaic serve` (2 workers by default) while `--connections`
clients loop for `--minutes` over a mix of thumbnail hits, 304 revalidations,
uploads (each followed by the misses of its three sizes), deletes (each
followed by a fetch that must now be 404), originals, listings and another
user's media (must be 404). It passes when:

  - no response is a 5xx and none is unexpected (a 404 is expected only for
    media another client is deleting or has deleted);
  - every thumbnail served is a whole JPEG;
  - the server's RSS is flat after warm-up: the mean of the last quarter of
    the samples is at most 10% (and 16 MiB) above the mean of the second;
  - after a clean stop, `mosaic fsck --grace 0` finds nothing.

Run: make soak  (or: uv run python -m tests.bench.soak --minutes 10 --connections 64)
Bounded in time (the duration plus about a minute of set-up and checks); only
127.0.0.1.
"""

import argparse
import asyncio
import io
import json
import os
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from PIL import Image

from tests.bench.misses import Sampling, memory
from tests.bench.test_render_benchmark import photo_like
from tests.live_server import LiveServer, server_processes

PASSWORD = "soak-admin-password"
USER_PASSWORD = "soak-user-password"
MIB = 1024 * 1024
SIZES = ("small", "medium", "large")
MEMORY_TIER = 8 * MIB  # per worker
MIN_POOL = 6  # media a user keeps at least, so hits always have targets
# action -> weight: mostly what a scrolling gallery does.
MIX = {
    "hit": 60,
    "revalidate": 15,
    "upload": 5,
    "delete": 5,
    "original": 4,
    "list": 6,
    "foreign": 5,
}


def with_comment(jpeg: bytes, text: str) -> bytes:
    """The same picture with a JPEG comment after SOI: distinct bytes and
    sha256 (a new media and a real miss) without encoding a new image."""
    payload = text.encode()
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, quality=88)
    return buffer.getvalue()


@dataclass
class Media:
    id: str
    url: str


@dataclass
class User:
    name: str
    headers: dict[str, str]
    pool: list[Media] = field(default_factory=list)


@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)
    etags: dict[str, str] = field(default_factory=dict)
    requests: int = 0

    def fail(self, message: str) -> None:
        if len(self.failures) < 50:
            self.failures.append(message)


class Load:
    def __init__(self, url: str, users: list[User], photos: list[bytes], tally: Tally) -> None:
        self.url = url
        self.users = users
        self.photos = photos
        self.tally = tally
        self.serial = 0
        self.rng = random.Random(11)

    def expect(
        self, action: str, response: httpx.Response, ok: set[int], media: Media | None
    ) -> bool:
        status = response.status_code
        self.tally.requests += 1
        self.tally.statuses[f"{action} {status}"] += 1
        if status in ok:
            return True
        gone = media is not None and media.id in self.tally.deleted
        if status == 404 and gone:
            return False  # deleted by another client meanwhile: expected
        self.tally.fail(f"{action} {response.request.url.path}: {status} {response.text[:200]}")
        return False

    def check_jpeg(self, response: httpx.Response) -> None:
        body = response.content
        if not (body.startswith(b"\xff\xd8") and body.endswith(b"\xff\xd9")):
            self.tally.fail(f"partial thumbnail from {response.request.url.path}")

    async def thumbnail(
        self,
        client: httpx.AsyncClient,
        user: User,
        media: Media,
        action: str,
        size: str | None = None,
    ) -> None:
        size = size or self.rng.choice(SIZES)
        key = f"{media.id}/{size}"
        headers = dict(user.headers)
        etag = self.tally.etags.get(key)
        revalidate = action == "revalidate" and etag is not None
        if revalidate and etag is not None:
            headers["If-None-Match"] = etag
        response = await client.get(media.url, params={"size": size}, headers=headers)
        if self.expect(action, response, {304} if revalidate else {200}, media):
            if response.status_code == 200:
                self.check_jpeg(response)
                self.tally.etags[key] = response.headers["etag"]

    async def upload(self, client: httpx.AsyncClient, user: User) -> None:
        self.serial += 1
        data = with_comment(self.rng.choice(self.photos), f"soak {self.serial}")
        files = {"file": (f"soak-{self.serial}.jpg", data, "image/jpeg")}
        response = await client.post("/api/media", files=files, headers=user.headers)
        if not self.expect("upload", response, {201}, None):
            return
        body = response.json()
        media = Media(body["id"], body["thumbnail_url"])
        for size in SIZES:  # a gallery and a viewer ask for it at once: misses
            await self.thumbnail(client, user, media, "miss", size)
        user.pool.append(media)

    async def delete(self, client: httpx.AsyncClient, user: User) -> None:
        if len(user.pool) <= MIN_POOL:
            await self.upload(client, user)  # keep targets for hits instead
            return
        media = user.pool.pop(self.rng.randrange(len(user.pool)))
        self.tally.deleted.add(media.id)
        response = await client.delete(f"/api/media/{media.id}", headers=user.headers)
        if self.expect("delete", response, {204}, None):
            after = await client.get(media.url, headers=user.headers)
            self.tally.requests += 1
            if after.status_code != 404:
                self.tally.fail(f"thumbnail served after its delete returned: {after.status_code}")

    async def step(self, client: httpx.AsyncClient) -> None:
        user = self.rng.choice(self.users)
        action = self.rng.choices(list(MIX), weights=list(MIX.values()))[0]
        media = self.rng.choice(user.pool)
        if action in {"hit", "revalidate"}:
            await self.thumbnail(client, user, media, action)
        elif action == "upload":
            await self.upload(client, user)
        elif action == "delete":
            await self.delete(client, user)
        elif action == "original":
            response = await client.get(f"/api/media/{media.id}/original", headers=user.headers)
            self.expect(action, response, {200}, media)
        elif action == "list":
            response = await client.get("/api/media", params={"limit": 50}, headers=user.headers)
            self.expect(action, response, {200}, None)
        else:  # another user's media: must look like it does not exist
            other = next(u for u in self.users if u is not user)
            target = self.rng.choice(other.pool)
            response = await client.get(target.url, headers=user.headers)
            self.expect(action, response, {404}, None)

    async def run(self, connections: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(base_url=self.url, limits=limits, timeout=60) as client:

            async def worker() -> None:
                while time.monotonic() < deadline:
                    try:
                        await self.step(client)
                    except httpx.HTTPError as exc:
                        self.tally.fail(f"transport error: {exc!r}")

            await asyncio.gather(*(worker() for _ in range(connections)))


class RssSeries(Sampling):
    """Total RSS of the server's processes every `interval` seconds."""

    def __init__(self, root_pid: int, interval: float) -> None:
        super().__init__(interval)
        self.root_pid = root_pid
        self.samples: list[int] = []

    def sample(self) -> None:
        self.samples.append(memory(server_processes(self.root_pid), "VmRSS"))

    def growth(self) -> tuple[float, float, bool]:
        """(warm MiB, late MiB, flat): second quarter against the last quarter."""
        quarter = max(1, len(self.samples) // 4)
        warm = statistics.mean(self.samples[quarter : 2 * quarter] or self.samples)
        late = statistics.mean(self.samples[-quarter:])
        flat = late <= warm + max(0.10 * warm, 16 * MIB)
        return warm / MIB, late / MIB, flat


def fsck(data_dir: Path) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
    env["MOSAIC_DATA_DIR"] = str(data_dir)
    mosaic = str(Path(sys.executable).with_name("mosaic"))
    done = subprocess.run(
        [mosaic, "fsck", "--grace", "0"], env=env, capture_output=True, text=True, timeout=300
    )
    return done.returncode, done.stdout.strip()


def prepare(live: LiveServer) -> list[User]:
    admin = live.token("admin", PASSWORD)
    users = []
    with httpx.Client(base_url=live.url, timeout=60) as client:
        for name in ("alice", "bob"):
            body = {"username": name, "password": USER_PASSWORD}
            assert client.post("/api/users", json=body, headers=admin).status_code == 201
            users.append(User(name, live.token(name, USER_PASSWORD)))
    return users


def seed(live: LiveServer, users: list[User], photos: list[bytes]) -> None:
    with httpx.Client(base_url=live.url, timeout=60) as client:
        for user in users:
            for index in range(MIN_POOL * 2):
                data = with_comment(photos[index % len(photos)], f"seed {user.name} {index}")
                files = {"file": (f"seed-{index}.jpg", data, "image/jpeg")}
                response = client.post("/api/media", files=files, headers=user.headers)
                assert response.status_code == 201, response.text
                body = response.json()
                user.pool.append(Media(body["id"], body["thumbnail_url"]))


def soak(minutes: float, connections: int, workers: int) -> dict[str, object]:
    """Run the soak in a temporary folder of its own, removed afterwards."""
    work = Path(tempfile.mkdtemp(prefix="mosaic-soak-"))
    try:
        return _soak(work, minutes, connections, workers)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _soak(work: Path, minutes: float, connections: int, workers: int) -> dict[str, object]:
    photos = [encode(photo_like((2400, 1600), seed), "JPEG") for seed in range(4)]
    # A small memory tier fills up during warm-up, so growth after it is a leak,
    # not the bounded cache still filling (64 MiB per worker would take most of
    # the run to fill at this upload rate).
    env = {"MOSAIC_ADMIN_PASSWORD": PASSWORD, "MOSAIC_MEMORY_CACHE_BYTES": str(MEMORY_TIER)}
    live = LiveServer(work / "data", workers=workers, env=env)
    tally = Tally()
    try:
        users = prepare(live)
        seed(live, users, photos)
        load = Load(live.url, users, photos, tally)
        started = time.monotonic()
        interval = max(0.5, minutes * 60 / 120)  # about 120 samples
        with RssSeries(live.process.pid, interval) as rss:
            asyncio.run(load.run(connections, minutes * 60))
        elapsed = time.monotonic() - started
    finally:
        live.stop()
    fsck_code, fsck_output = fsck(work / "data")
    warm, late, flat = rss.growth()
    server_errors = sum(n for key, n in tally.statuses.items() if key.split()[-1].startswith("5"))
    passed = not tally.failures and server_errors == 0 and flat and fsck_code == 0
    return {
        "minutes": round(elapsed / 60, 2),
        "connections": connections,
        "workers": workers,
        "requests": tally.requests,
        "requests_per_s": round(tally.requests / elapsed, 1),
        "statuses": dict(sorted(tally.statuses.items())),
        "server_errors": server_errors,
        "failures": tally.failures,
        "rss_warm_mib": round(warm, 1),
        "rss_late_mib": round(late, 1),
        "rss_peak_mib": round(max(rss.samples) / MIB, 1),
        "rss_flat": flat,
        "fsck": fsck_output,
        "passed": passed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    result = soak(args.minutes, args.connections, args.workers)
    for key, value in result.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for name, count in value.items():
                print(f"  {name:<24} {count}")
        elif isinstance(value, list):
            for failure in value[:10]:
                print(f"  FAIL {failure}")
        else:
            print(f"{key:<16} {value}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
