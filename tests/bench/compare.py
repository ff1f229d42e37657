"""Two server settings side by side on cold galleries, in pairs: does B render faster than A?

This machine's speed drifts by 10-30% within minutes, so galleries of one
setting run minutes after those of another cannot show a 3% change. Here both
servers run at once (each idle while the other is measured), each pair of
galleries runs back to back on the same images (uploaded again to each server,
so every request is a cold miss) and the order alternates, so the drift falls
on both sides. The result is the median of the pairs' speed-ups and how many
pairs B won; each pair also prints the slowest `/healthz` poll of either gallery.

Run: uv run python -m tests.bench.compare --pairs 12 MOSAIC_RENDER_THREADS=2
Bounded: pairs x (2 galleries of --gallery misses + their uploads), ~8 s a pair.
"""

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

import httpx
import uvloop

from tests.bench.misses import PASSWORD, distinct, freeze_client_heap, gallery, upload
from tests.bench.test_render_benchmark import photo_like
from tests.live_server import LiveServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("settings", nargs="+", metavar="NAME=VALUE", help="server B's MOSAIC_*")
    parser.add_argument("--pairs", type=int, default=12, help="pairs of galleries")
    parser.add_argument("--gallery", type=int, default=120, help="distinct 12 MP JPEGs in each")
    args = parser.parse_args()
    settings = dict(item.split("=", 1) for item in args.settings)
    freeze_client_heap()
    work = Path(tempfile.mkdtemp(prefix="mosaic-compare-"))
    try:
        speedups = compare(work, settings, args.pairs, args.gallery)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    won = sum(speedup > 1 for speedup in speedups)
    print(
        f"\nB ({' '.join(args.settings)}) against A (defaults): median speed-up "
        f"{statistics.median(speedups):.3f}, B faster in {won} of {len(speedups)} pairs"
    )


def compare(work: Path, settings: dict[str, str], pairs: int, size: int) -> list[float]:
    """Per pair, A's gallery time over B's."""
    scene = photo_like((4000, 3000), 11)
    images = [distinct(scene, 5000 + i) for i in range(size)]
    env = {"MOSAIC_ADMIN_PASSWORD": PASSWORD}
    servers = {
        "A": LiveServer(work / "a", workers=None, env=env),
        "B": LiveServer(work / "b", workers=None, env={**env, **settings}),
    }
    speedups = []
    try:
        headers = {name: server.token("admin", PASSWORD) for name, server in servers.items()}
        for pair in range(pairs):
            paths, seconds, health = {}, {}, {}
            for name, server in servers.items():
                with httpx.Client(
                    base_url=server.url, headers=headers[name], timeout=120
                ) as client:
                    paths[name] = [
                        upload(client, data, f"c{i}.jpg") for i, data in enumerate(images)
                    ]
            for name in ("A", "B") if pair % 2 == 0 else ("B", "A"):
                seconds[name], health[name] = uvloop.run(
                    gallery(servers[name].url, headers[name], paths[name])
                )
            speedups.append(seconds["A"] / seconds["B"])
            slowest = {name: 1000 * max(samples) for name, samples in health.items()}
            print(
                f"pair {pair + 1}: A {seconds['A']:.2f} s, B {seconds['B']:.2f} s, "
                f"B's speed-up {speedups[-1]:.3f}; slowest /healthz A {slowest['A']:.1f} ms, "
                f"B {slowest['B']:.1f} ms",
                flush=True,
            )
    finally:
        for server in servers.values():
            server.stop()
    return speedups


if __name__ == "__main__":
    main()
