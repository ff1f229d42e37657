"""Collects benchmark medians and prints ratios against the baselines of the same run."""

import pytest

MEDIANS: dict[str, float] = {}
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
]


def record(name: str, median: float) -> None:
    MEDIANS[name] = median


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not MEDIANS:
        return
    terminalreporter.section("mosaic ratios (medians, same run)")
    for name, value in sorted(MEDIANS.items()):
        terminalreporter.write_line(f"{name:>20}: {value * 1000:9.3f} ms")
    for label, top, bottom, meaning in RATIOS:
        if top in MEDIANS and bottom in MEDIANS:
            ratio = MEDIANS[top] / MEDIANS[bottom]
            terminalreporter.write_line(f"{label:>20}: {ratio:7.3f}x  ({meaning})")
