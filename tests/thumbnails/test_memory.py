import uuid

from mosaic.thumbnails import MemoryTier

FP = (1, 100, 7)


class TestMemoryTier:
    def test_evicts_least_recently_used_by_bytes(self) -> None:
        tier = MemoryTier(max_bytes=300)
        a, b, c = ((str(uuid.uuid4()), "medium") for _ in range(3))
        tier.put(a, b"a" * 100, FP)
        tier.put(b, b"b" * 100, FP)
        assert tier.get(a, FP) == b"a" * 100  # a is now the most recent
        tier.put(c, b"c" * 150, FP)  # 350 bytes: b goes
        assert tier.get(b, FP) is None
        assert tier.get(a, FP) is not None and tier.get(c, FP) is not None
        assert tier.size == 250 and len(tier) == 2

    def test_refuses_what_can_never_fit(self) -> None:
        tier = MemoryTier(max_bytes=10)
        tier.put((str(uuid.uuid4()), "large"), b"x" * 11, FP)
        assert len(tier) == 0 and tier.size == 0

    def test_a_changed_file_is_not_served(self) -> None:
        tier = MemoryTier(max_bytes=1000)
        key = (str(uuid.uuid4()), "small")
        tier.put(key, b"old bytes", FP)
        assert tier.get(key, (1, 100, 8)) is None  # rewritten on disk since
        assert tier.get(key, FP) is None  # and dropped
        assert tier.size == 0

    def test_purge_removes_every_preset_of_one_media(self) -> None:
        tier = MemoryTier(max_bytes=1000)
        gone, kept = str(uuid.uuid4()), str(uuid.uuid4())
        for name in ("small", "medium", "large"):
            tier.put((gone, name), b"x" * 10, FP)
        tier.put((kept, "small"), b"y" * 10, FP)
        tier.purge(gone)
        assert len(tier) == 1 and tier.size == 10
        assert tier.get((kept, "small"), FP) == b"y" * 10
