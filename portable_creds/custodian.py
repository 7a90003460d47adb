"""Shared plumbing for cloud-KMS key sources: caching, call counting, one key per source.

A KMS key source (``AwsKmsKeySource``, ``TencentKmsKeySource``) only has to say how to make
and unwrap a data key with its SDK; this base adds the bounded data-key caches
(``datakey_cache``) and the ``KeySource`` surface. The KEK id names the configured key
(``<scheme>.<16 hex of SHA-256 of the key id as configured>``), so every machine must name
the key the same way (use the full key ARN / KeyId, not an alias on one and the ARN on
another); a blob naming another key is refused before any KMS call.
"""

from __future__ import annotations

import abc
import hashlib
import threading
from collections.abc import Mapping

from .datakey_cache import CacheLimits, DataKeyCache
from .errors import IntegrityError
from .keys import CustodianKey, KeySource

#: Reads are cached by default (a hot reader); writes only when configured (see the module
#: docstring of ``datakey_cache`` for the trade-off).
DEFAULT_READ_CACHE = CacheLimits()


def _context_key(encryption_context: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(encryption_context.items()))


class CachingCustodianKeySource(KeySource, CustodianKey):
    """A ``KeySource`` whose one key lives in a KMS; subclasses implement the two calls."""

    scheme: str = "kms"

    def __init__(
        self,
        key_id: str,
        *,
        read_cache: CacheLimits | None = DEFAULT_READ_CACHE,
        write_cache: CacheLimits | None = None,
    ) -> None:
        self.key_id = key_id
        digest = hashlib.sha256(key_id.encode()).hexdigest()[:16]
        self.kek_id = f"{self.scheme}.{digest}"
        self._reads = DataKeyCache(read_cache) if read_cache is not None else None
        self._writes = DataKeyCache(write_cache) if write_cache is not None else None
        self._count_lock = threading.Lock()
        self.kms_calls = 0
        """KMS requests made (GenerateDataKey + Decrypt), for metrics and the benchmark."""

    # -- what a cloud implements ---------------------------------------------------------------

    @abc.abstractmethod
    def _generate(self, encryption_context: Mapping[str, str]) -> tuple[bytes, bytes]:
        """One GenerateDataKey call: (32-byte plaintext key, ciphertext)."""

    @abc.abstractmethod
    def _decrypt(self, wrapped: bytes, encryption_context: Mapping[str, str]) -> bytes:
        """One Decrypt call; IntegrityError when KMS says the ciphertext/context is invalid."""

    # -- CustodianKey ----------------------------------------------------------------------

    def _counted(self) -> None:
        with self._count_lock:
            self.kms_calls += 1

    def generate_data_key(
        self, encryption_context: Mapping[str, str], size: int
    ) -> tuple[bytes, bytes]:
        ckey = _context_key(encryption_context)
        if self._writes is not None:
            hit = self._writes.get(ckey, size)
            if isinstance(hit, tuple):
                return hit
        self._counted()
        dek, wrapped = self._generate(encryption_context)
        if self._writes is not None:
            self._writes.put(ckey, (dek, wrapped), size)
        if self._reads is not None:  # the writer reads its own write without a KMS call
            self._reads.put((wrapped, ckey), dek, 0)
        return dek, wrapped

    def decrypt_data_key(
        self, wrapped: bytes, encryption_context: Mapping[str, str], size: int
    ) -> bytes:
        ckey = (wrapped, _context_key(encryption_context))
        if self._reads is not None:
            hit = self._reads.get(ckey, size)
            if isinstance(hit, bytes):
                return hit
        self._counted()
        dek = self._decrypt(wrapped, encryption_context)
        if self._reads is not None:
            self._reads.put(ckey, dek, size)
        return dek

    def clear_cache(self) -> None:
        """Forget every cached data key (e.g. after revoking access)."""
        for cache in (self._reads, self._writes):
            if cache is not None:
                cache.clear()

    # -- KeySource -------------------------------------------------------------------------

    def current_kek(self, wallet: str, service: str) -> CustodianKey:
        return self

    def kek_for_id(self, wallet: str, service: str, kek_id: str) -> CustodianKey:
        if kek_id != self.kek_id:
            raise IntegrityError()
        return self
