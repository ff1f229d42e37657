from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    """The app's Prometheus metrics, in a registry of its own (one per app instance)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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

    # CacheMetrics protocol of mosaic.thumbnails
    def generated(self, seconds: float) -> None:
        self.generations.inc()
        self.generation_seconds.observe(seconds)

    def cache_error(self) -> None:
        self.cache_errors.inc()
