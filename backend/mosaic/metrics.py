import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

from .config import METRICS_DIR_VARIABLE


class Metrics:
    """The app's Prometheus metrics, in a registry of its own (one per app instance).

    With several worker processes (`METRICS_DIR_VARIABLE` set), `exposition()`
    reports the sum over all of them, whichever worker answers.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.multiprocess = bool(os.environ.get(METRICS_DIR_VARIABLE))
        self.thumbnail_requests = Counter(
            "mosaic_thumbnail_requests",
            "Thumbnail requests by how they were answered.",
            ["result"],
            registry=self.registry,
        )
        self.generations = Counter(
            "mosaic_thumbnail_generations", "Thumbnails rendered.", registry=self.registry
        )
        self.generation_seconds = Histogram(
            "mosaic_thumbnail_generation_seconds",
            "Time to decode, resize and encode one thumbnail.",
            # A 12 MP JPEG takes about 30 ms with draft mode; a large PNG a few 100 ms.
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.cache_errors = Counter(
            "mosaic_thumbnail_cache_errors",
            "Thumbnail requests that could not use the disk cache.",
            registry=self.registry,
        )
        # Bound once: labels() is a dictionary lookup behind a lock, per request.
        self.hits = self.thumbnail_requests.labels(result="hit")
        self.misses = self.thumbnail_requests.labels(result="miss")
        self.not_modified = self.thumbnail_requests.labels(result="not_modified")

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric (of every worker)."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    # CacheMetrics protocol of mosaic.thumbnails
    def generated(self, seconds: float) -> None:
        self.generations.inc()
        self.generation_seconds.observe(seconds)

    def cache_error(self) -> None:
        self.cache_errors.inc()
