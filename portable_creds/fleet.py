"""Fleet operations: which wallets a backend holds, and how N workers split them.

Enumeration is an administrative act (a tenant's identity may only list its own prefix), so it
goes through ``ObjectStore.list_wallets`` of a store opened with ``wallet=None``.

Sharding is a pure function of the wallet: ``shard_of(wallet, N)`` is the first 8 bytes of
SHA-256 of the canonical wallet, modulo N. It does not depend on which wallets exist, on the
order they are listed in or on the machine, so N processes started independently (a Kubernetes
Indexed Job, N cron hosts) cover every wallet exactly once and each can be rerun on its own.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

import attrs

from . import names
from .driver import ObjectStore
from .errors import ConfigurationError

_CANONICAL_WALLET = re.compile(r"0x[0-9a-f]{40}")
_SHARD_RE = re.compile(r"(\d+)/(\d+)")


def is_canonical_wallet(segment: str) -> bool:
    """A key segment naming a wallet as stores write it (lowercase hex)."""
    return _CANONICAL_WALLET.fullmatch(segment) is not None


def wallet_of_common_prefix(common: str, prefix: str) -> str | None:
    """``<prefix>/<wallet>/`` (a delimited listing's ``CommonPrefixes`` entry) -> the wallet."""
    base = names.validate_prefix(prefix) + "/"
    if not common.startswith(base) or not common.endswith("/"):
        return None
    segment = common[len(base) : -1]
    return segment if is_canonical_wallet(segment) else None


@attrs.frozen
class Shard:
    """Shard ``index`` of ``count`` (0-based, like ``JOB_COMPLETION_INDEX``)."""

    index: int
    count: int

    def __attrs_post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ConfigurationError(
                f"shard {self.index}/{self.count} does not exist: use I/N with 0 <= I < N"
            )

    def contains(self, wallet: str) -> bool:
        return shard_of(wallet, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"I/N"`` -> ``Shard(I, N)``; a clear error for anything else."""
    m = _SHARD_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise ConfigurationError(
            f"--shard {text!r} is not I/N: give this worker's index and the number of workers, "
            "e.g. --shard 0/4 (in a Kubernetes Indexed Job: --shard $JOB_COMPLETION_INDEX/N)"
        )
    return Shard(int(m.group(1)), int(m.group(2)))


def shard_of(wallet: str, count: int) -> int:
    """The shard (0..count-1) a wallet belongs to; stable across processes and machines."""
    digest = hashlib.sha256(names.validate_wallet(wallet).encode("ascii")).digest()
    return int.from_bytes(digest[:8], "big") % count


def select(wallets: Iterable[str], shard: Shard | None) -> list[str]:
    """Canonical, de-duplicated wallets, in order, keeping only ``shard``'s (all if ``None``)."""
    out = list(dict.fromkeys(names.validate_wallet(w) for w in wallets))
    return out if shard is None else [w for w in out if shard.contains(w)]


def list_wallets(
    objects: ObjectStore, prefix: str = names.DEFAULT_PREFIX, shard: Shard | None = None
) -> list[str]:
    """Every wallet ``objects`` (an administrative view) holds under ``prefix``, sorted."""
    return select(sorted(objects.list_wallets(names.validate_prefix(prefix))), shard)
