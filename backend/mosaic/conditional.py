"""HTTP conditional requests (RFC 9110 section 13)."""


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header matches `etag` by weak comparison.

    >>> etag_matches('W/"abc", "def"', '"abc"')
    True
    >>> etag_matches("*", '"abc"')
    True
    """
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(
        candidate.strip().removeprefix("W/") == opaque for candidate in if_none_match.split(",")
    )
