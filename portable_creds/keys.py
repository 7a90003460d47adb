"""Key sources: where the key-encryption key (KEK) for a (wallet, service) comes from.

A key source is deliberately tiny: give the current KEK for sealing, and the KEK with a given
id for opening. The KEK id is stored in every sealed blob's header, so rotation (a new KEK
version) and misconfiguration (a different root secret) are detected rather than guessed.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping

import attrs


def _check_kek(instance: object, attribute: object, value: bytes) -> None:
    if not isinstance(value, bytes) or len(value) != 32:
        raise ValueError("a KEK is exactly 32 bytes")


def _check_kek_id(instance: object, attribute: object, value: str) -> None:
    if not isinstance(value, str) or not value.isascii():
        raise ValueError("a KEK id is 1-64 printable ASCII characters without spaces")
    raw = value.encode("ascii")
    if not 1 <= len(raw) <= 64 or any(not 0x21 <= b <= 0x7E for b in raw):
        raise ValueError("a KEK id is 1-64 printable ASCII characters without spaces")


@attrs.frozen(repr=False)
class Kek:
    """A 256-bit key-encryption key and its stable id. ``repr`` never shows the key."""

    kek_id: str = attrs.field(validator=_check_kek_id)
    key: bytes = attrs.field(validator=_check_kek)

    def __repr__(self) -> str:
        return f"Kek(kek_id={self.kek_id!r}, key=<32 bytes>)"


class CustodianKey(abc.ABC):
    """A key that never leaves its custodian (a cloud KMS): it makes and unwraps data keys.

    Blobs sealed with one use envelope suite 0x0002 (docs/format.md): the wrapped key is the
    custodian's own ciphertext, of variable length. ``encryption_context`` is always the blob's
    wallet, service and storage key (``envelope.kms_context``): the custodian binds it, so it
    refuses to unwrap a blob moved to another tenant or path, and can log who asked for what.
    ``size`` is the plaintext length, for data-key caches bounded in bytes.
    """

    #: Printable ASCII, 1-64 characters, stored in the blob header (docs/format.md §3).
    kek_id: str

    @abc.abstractmethod
    def generate_data_key(
        self, encryption_context: Mapping[str, str], size: int
    ) -> tuple[bytes, bytes]:
        """A fresh 32-byte data key and its wrapped form (1..6144 bytes)."""

    @abc.abstractmethod
    def decrypt_data_key(
        self, wrapped: bytes, encryption_context: Mapping[str, str], size: int
    ) -> bytes:
        """The 32-byte data key; ``IntegrityError`` if the custodian refuses it as invalid."""


#: What a key source hands the envelope: a local KEK (suite 0x0001) or a custodian (0x0002).
WrappingKey = Kek | CustodianKey


class KeySource(abc.ABC):
    """Produces KEKs for (wallet, service). Wallets arrive canonical (lowercased)."""

    @abc.abstractmethod
    def current_kek(self, wallet: str, service: str) -> WrappingKey:
        """The KEK (or custodian key) to seal new objects with."""

    @abc.abstractmethod
    def kek_for_id(self, wallet: str, service: str, kek_id: str) -> WrappingKey:
        """The KEK named ``kek_id`` (from a blob header).

        Raise ``IntegrityError`` if this source cannot produce that id (another root secret,
        an unknown version): from the caller's point of view the blob cannot be opened.
        """
