"""``ChainedKeySource``: seal with one key source, open with it or any earlier one.

This is how custody moves (root secret -> signer -> KMS, and back): open the store with
``ChainedKeySource(new, old)`` and call ``rewrap``; every blob whose KEK id is not the new
source's is opened with whichever source knows its id and sealed afresh under the new one
(envelope.rewrap, docs/format.md §7). Afterwards the old source can be dropped.
"""

from __future__ import annotations

from .errors import IntegrityError
from .keys import KeySource, WrappingKey


class ChainedKeySource(KeySource):
    """``current`` for sealing; ``current`` then each of ``previous`` for opening."""

    def __init__(self, current: KeySource, *previous: KeySource) -> None:
        self.current = current
        self.previous = previous

    def current_kek(self, wallet: str, service: str) -> WrappingKey:
        return self.current.current_kek(wallet, service)

    def kek_for_id(self, wallet: str, service: str, kek_id: str) -> WrappingKey:
        for source in (self.current, *self.previous):
            try:
                return source.kek_for_id(wallet, service, kek_id)
            except IntegrityError:
                continue
        raise IntegrityError()
