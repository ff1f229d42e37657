"""Collects benchmark medians and prints ratios against the baselines of the same run."""

import statistics
from collections.abc import Callable

import pytest

MEDIANS: dict[str, float] = {}
SCORES: dict[str, float] = {}
# (name, numerator, denominator, what the ratio means)
RATIOS = [
    (
        "miss / bare render",
        "http_cold_miss",
        "bare_render",
        "cost of a miss over the render itself",
    ),
    (
        "hit / bare render",
        "http_warm_hit",
        "bare_render",
        "how much cheaper a hit is than a render",
    ),
    ("304 / hit", "http_not_modified", "http_warm_hit", "revalidation vs. serving bytes"),
    ("hit / health", "http_warm_hit", "http_health", "a hit vs. the cheapest route (auth+DB+read)"),
    (
        "hit in front / through FastAPI",
        "asgi_hit",
        "asgi_hit_by_the_book",
        "the app's own time for a hit, without HTTP",
    ),
    (
        "hit over RSGI / over ASGI",
        "rsgi_hit",
        "asgi_hit",
        "the app's own time only; granian's side is in the load test",
    ),
    ("token remembered / verified", "token_remembered", "token_verified", "token memory"),
    (
        "pillow / pyvips JPEG",
        "render_jpeg_pillow",
        "render_jpeg_pyvips",
        "separate medians; target 3b (<= 0.9) is pillow_over_pyvips_jpeg_in_pairs",
    ),
    (
        "pillow / pyvips PNG",
        "render_png_pillow",
        "render_png_pyvips",
        "separate medians; target 3c (<= 1.2) is pillow_over_pyvips_png_in_pairs",
    ),
]


def record(name: str, median: float) -> None:
    MEDIANS[name] = median


def record_score(name: str, value: float) -> None:
    SCORES[name] = value


def record_in_pairs(
    name: str, top: Callable[[], float], bottom: Callable[[], float], pairs: int
) -> None:
    """Score `name`: the median over `pairs` of `top()`'s seconds over `bottom()`'s,
    each pair back to back, in alternating order (so the machine's drift falls on
    both sides); `name`_max is the worst pair. Each callable returns the seconds
    it measured itself."""
    ratios = []
    for index in range(pairs):
        if index % 2 == 0:
            below = bottom()
            ratios.append(top() / below)
        else:
            above = top()
            ratios.append(above / bottom())
    record_score(name, statistics.median(ratios))
    record_score(f"{name}_max", max(ratios))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not MEDIANS and not SCORES:
        return
    terminalreporter.section("mosaic ratios (medians, same run)")
    for name, value in sorted(MEDIANS.items()):
        terminalreporter.write_line(f"{name:>36}: {value * 1000:9.3f} ms")
    for name, score in sorted(SCORES.items()):
        terminalreporter.write_line(f"{name:>36}: {score:9.4f}")
    for label, top, bottom, meaning in RATIOS:
        if top in MEDIANS and bottom in MEDIANS:
            ratio = MEDIANS[top] / MEDIANS[bottom]
            terminalreporter.write_line(f"{label:>20}: {ratio:7.3f}x  ({meaning})")
