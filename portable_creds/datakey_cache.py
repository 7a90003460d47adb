"""A bounded cache of custodian (KMS) data keys, so a hot reader does not call KMS per get.

Security trade-off (docs/aws.md, "KMS key custody"): while a data key is cached, revoking the
tenant's KMS access (or disabling the key) does not stop this process from opening blobs it
has already unwrapped, and no CloudTrail event is logged for those opens. Every entry is
therefore bounded three ways, like the AWS Encryption SDK's caching materials manager: by age,
by number of uses and by bytes processed; an entry past any bound is dropped, never served.

The cache key always includes the full encryption context (wallet, service, storage key):
a cached data key is only ever reused for exactly the context KMS bound it to, so caching
never weakens the context binding. Sealing reuses a data key only when write caching is
explicitly configured (a reused DEK means many blobs share one key; each still has its own
random payload nonce, and ``max_uses`` bounds how many).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import attrs

from .errors import ConfigurationError
from .params import bool_param, int_param

MAX_AGE_LIMIT = 3600.0
MAX_USES_LIMIT = 1 << 32
MAX_BYTES_LIMIT = 1 << 40

#: The backend-URL parameters of KMS custody, the same on every KMS driver (``s3://``, ``cos://``):
#: ``kms_key`` turns it on, the rest need it (``cache_limits_from_params`` reads the cache ones).
KMS_PARAMS = frozenset(
    {
        "kms_key",
        "kms_endpoint",
        "kms_cache_age",
        "kms_cache_uses",
        "kms_cache_bytes",
        "kms_write_cache",
    }
)


def _check(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    bounds = {
        "max_age": (0.0, MAX_AGE_LIMIT),
        "max_uses": (1, MAX_USES_LIMIT),
        "max_bytes": (1, MAX_BYTES_LIMIT),
        "max_entries": (1, 1_000_000),
    }[attribute.name]
    if not isinstance(value, int | float) or not bounds[0] < value <= bounds[1]:
        raise ConfigurationError(
            f"data-key cache {attribute.name}={value!r} is outside ({bounds[0]}, {bounds[1]}]"
        )


@attrs.frozen
class CacheLimits:
    """Hard bounds of one cached data key (all must hold) and of the cache's size."""

    max_age: float = attrs.field(default=60.0, validator=_check)
    max_uses: int = attrs.field(default=1000, validator=_check)
    max_bytes: int = attrs.field(default=64 << 20, validator=_check)
    max_entries: int = attrs.field(default=4096, validator=_check)


@attrs.define
class _Entry:
    value: object
    born: float
    uses: int = 0
    nbytes: int = 0


class DataKeyCache:
    """A thread-safe LRU of data-key material with per-entry age/uses/bytes bounds."""

    def __init__(self, limits: CacheLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()

    def get(self, key: Hashable, size: int) -> object | None:
        """The cached value if using it once more for ``size`` bytes stays within every bound."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            lim = self.limits
            if (
                self._clock() - entry.born >= lim.max_age
                or entry.uses + 1 > lim.max_uses
                or entry.nbytes + size > lim.max_bytes
            ):
                del self._entries[key]
                return None
            entry.uses += 1
            entry.nbytes += size
            self._entries.move_to_end(key)
            return entry.value

    def put(self, key: Hashable, value: object, size: int) -> None:
        """Remember ``value`` after its first use (for ``size`` bytes), evicting the LRU."""
        if size > self.limits.max_bytes or self.limits.max_uses < 1:
            return
        with self._lock:
            self._entries[key] = _Entry(value, self._clock(), uses=1, nbytes=size)
            self._entries.move_to_end(key)
            while len(self._entries) > self.limits.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def cache_limits_from_params(
    params: Mapping[str, str], scheme: str
) -> tuple[CacheLimits | None, CacheLimits | None]:
    """The (read, write) data-key cache bounds from a backend URL's ``kms_cache_*`` parameters.

    One rule for every KMS driver: ``kms_cache_age`` (seconds, default 60, ``0`` = no caching),
    ``kms_cache_uses`` (default 1000), ``kms_cache_bytes`` (default 64 MiB); writes are cached
    only with ``kms_write_cache=1``, which needs a cache age above 0.
    """
    age = int_param(params, "kms_cache_age", 60, 0, int(MAX_AGE_LIMIT), scheme=scheme)
    limits = (
        CacheLimits(
            max_age=float(age),
            max_uses=int_param(params, "kms_cache_uses", 1000, 1, 1 << 32, scheme=scheme),
            max_bytes=int_param(params, "kms_cache_bytes", 64 << 20, 1, 1 << 40, scheme=scheme),
        )
        if age
        else None
    )
    write = bool_param(params, "kms_write_cache", False, scheme=scheme)
    if write and limits is None:
        raise ConfigurationError("kms_write_cache=1 needs kms_cache_age > 0")
    return limits, (limits if write else None)
