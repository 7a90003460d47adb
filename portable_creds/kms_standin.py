"""A deterministic stand-in for a cloud KMS, so envelope suite 0x0002 has known-answer vectors.

A real KMS's ciphertext is opaque and its randomness is not ours to fix, so vectors for the
custodian suite need a custodian whose every output is specified (docs/format.md §11.1).
The stand-in behaves like a KMS where it matters: its ciphertext names the key that made it,
and it binds the encryption context (a different context, or another key, is refused). It is
a test device, never a key source for real data.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .envelope import (
    KMS_CONTEXT_SERVICE,
    KMS_CONTEXT_STORAGE_KEY,
    KMS_CONTEXT_WALLET,
    Context,
    Random,
)
from .errors import IntegrityError
from .keys import CustodianKey

STANDIN_MAGIC = b"SIK1"


def _lp(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def _context_bytes(encryption_context: Mapping[str, str]) -> bytes:
    try:
        ctx = Context(
            encryption_context[KMS_CONTEXT_WALLET],
            encryption_context[KMS_CONTEXT_SERVICE],
            encryption_context[KMS_CONTEXT_STORAGE_KEY],
        )
    except KeyError:
        raise IntegrityError() from None
    if len(encryption_context) != 3:
        raise IntegrityError()
    return ctx.encode()


class StandInKms(CustodianKey):
    """``wrapped = "SIK1" || lp(kek_id) || nonce(12) || AES-256-GCM(master, nonce, DEK, aad)``
    with ``aad = "SIK1" || lp(kek_id) || context`` (the context encoded as in §4).

    ``rng`` draws the DEK (32) then the nonce (12), in that order.
    """

    def __init__(self, kek_id: str, master: bytes, rng: Random = os.urandom) -> None:
        if len(master) != 32:
            raise ValueError("the stand-in's master key is 32 bytes")
        self.kek_id = kek_id
        self._aead = AESGCM(master)
        self._rng = rng
        self._head = STANDIN_MAGIC + _lp(kek_id.encode("ascii"))
        self.calls = 0

    def generate_data_key(
        self, encryption_context: Mapping[str, str], size: int
    ) -> tuple[bytes, bytes]:
        self.calls += 1
        dek, nonce = self._rng(32), self._rng(12)
        aad = self._head + _context_bytes(encryption_context)
        return dek, self._head + nonce + self._aead.encrypt(nonce, dek, aad)

    def decrypt_data_key(
        self, wrapped: bytes, encryption_context: Mapping[str, str], size: int
    ) -> bytes:
        self.calls += 1
        h = len(self._head)
        if len(wrapped) != h + 12 + 48 or wrapped[:h] != self._head:
            raise IntegrityError()
        aad = self._head + _context_bytes(encryption_context)
        try:
            return self._aead.decrypt(wrapped[h : h + 12], wrapped[h + 12 :], aad)
        except InvalidTag:
            raise IntegrityError() from None
