"""The data-key cache's hard bounds: an entry past max age, uses or bytes is never served."""

from __future__ import annotations

import pytest

from portable_creds.datakey_cache import CacheLimits, DataKeyCache
from portable_creds.errors import ConfigurationError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_max_age() -> None:
    clock = Clock()
    cache = DataKeyCache(CacheLimits(max_age=10), clock)
    cache.put("k", b"dek", 1)
    clock.now = 9.9
    assert cache.get("k", 1) == b"dek"
    clock.now = 10.0
    assert cache.get("k", 1) is None
    assert len(cache) == 0


def test_max_uses_counts_the_first_use() -> None:
    cache = DataKeyCache(CacheLimits(max_uses=3))
    cache.put("k", b"dek", 0)  # use 1
    assert cache.get("k", 0) == b"dek"  # use 2
    assert cache.get("k", 0) == b"dek"  # use 3
    assert cache.get("k", 0) is None


def test_max_bytes() -> None:
    cache = DataKeyCache(CacheLimits(max_bytes=100))
    cache.put("k", b"dek", 60)
    assert cache.get("k", 40) == b"dek"
    assert cache.get("k", 1) is None
    cache.put("big", b"dek", 101)
    assert cache.get("big", 0) is None


def test_lru_bound_on_entries() -> None:
    cache = DataKeyCache(CacheLimits(max_entries=2))
    cache.put("a", 1, 0)
    cache.put("b", 2, 0)
    assert cache.get("a", 0) == 1
    cache.put("c", 3, 0)
    assert cache.get("b", 0) is None and cache.get("a", 0) == 1 and cache.get("c", 0) == 3


@pytest.mark.parametrize(
    "kwargs",
    [{"max_age": 0}, {"max_age": 3601}, {"max_uses": 0}, {"max_bytes": 0}, {"max_entries": 0}],
)
def test_limits_are_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        CacheLimits(**kwargs)  # type: ignore[arg-type]
