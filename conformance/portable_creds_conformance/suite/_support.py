"""Small helpers shared by the groups."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from portable_creds import envelope, names
from portable_creds.errors import IntegrityError, PortableCredsError
from portable_creds.keys import Kek, KeySource
from portable_creds.store import CredentialStore

from ..run import ConformanceRun


def key_of(store: CredentialStore, service: str) -> str:
    """Where ``service`` lives, computed from the layout (not asked of the store)."""
    return names.object_key(store.wallet, service, store.prefix)


def secret(n: int = 48) -> bytes:
    return os.urandom(n)


def leaks(text: str, plaintext: bytes) -> bool:
    """Whether ``text`` shows ``plaintext`` in any common rendering."""
    if len(plaintext) < 8:
        return False
    renderings = {
        plaintext.decode("latin-1"),
        plaintext.hex(),
        base64.b64encode(plaintext).decode(),
        repr(plaintext)[2:-1],
    }
    return any(r in text for r in renderings)


def assert_no_leak(exc: BaseException, plaintext: bytes) -> None:
    assert not leaks(str(exc) + repr(exc), plaintext), "an error message shows the plaintext"


def expect_integrity_error(
    store: CredentialStore, service: str, plaintext: bytes, what: str
) -> None:
    """``store.get(service)`` must raise IntegrityError and never return (any) plaintext."""
    try:
        got = store.get(service)
    except IntegrityError as exc:
        assert_no_leak(exc, plaintext)
        return
    except PortableCredsError as exc:
        pytest.fail(f"{what}: expected IntegrityError, got {type(exc).__name__}: {exc}")
    shown = "A's plaintext" if got.reveal() == plaintext else f"{len(got)} bytes"
    pytest.fail(f"{what}: the read succeeded and returned {shown} (expected IntegrityError)")


def expect_error(
    kinds: type[BaseException] | tuple[type[BaseException], ...],
    fn: Callable[[], object],
    what: str,
) -> BaseException:
    """Run ``fn``; it must raise one of ``kinds``. Returns the exception."""
    try:
        result = fn()
    except kinds as exc:
        return exc
    except PortableCredsError as exc:
        names_ = (kinds,) if isinstance(kinds, type) else kinds
        wanted = " or ".join(k.__name__ for k in names_)
        pytest.fail(f"{what}: expected {wanted}, got {type(exc).__name__}: {exc}")
    names_ = (kinds,) if isinstance(kinds, type) else kinds
    wanted = " or ".join(k.__name__ for k in names_)
    pytest.fail(f"{what}: succeeded (returned {_shown(result)}), expected {wanted}")


def _shown(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    return type(value).__name__


def put_many(store: CredentialStore, items: dict[str, bytes], workers: int = 8) -> None:
    """Put concurrently (listing tests need thousands of credentials, quickly)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda kv: store.put(*kv), items.items()))


def snapshot(pc: ConformanceRun) -> dict[str, bytes]:
    """Every object below the run root, key -> bytes (admin view)."""
    return {key: pc.admin.get(key).data for key in pc.run_keys()}


class FixedKeySource(KeySource):
    """One KEK for every tenant and service: with it, only the context binding in the AAD
    stands between a copied blob and its plaintext, so the isolation-crypto group can prove
    that binding on its own."""

    def __init__(self) -> None:
        self.kek = Kek("conformance-fixed-kek", os.urandom(32))

    def current_kek(self, wallet: str, service: str) -> Kek:
        return self.kek

    def kek_for_id(self, wallet: str, service: str, kek_id: str) -> Kek:
        if kek_id != self.kek.kek_id:
            raise IntegrityError()
        return self.kek


def header_fields(blob: bytes) -> dict[str, tuple[int, int]]:
    """(offset, length) of every field of an envelope v1 blob (docs/format.md).

    Suite 0x0002 (a KMS-wrapped key) has no wrap nonce: its ``wrap-nonce`` entry is the
    2-byte wrapped-key length in the same place, and ``wrapped-dek`` is the KMS ciphertext.
    """
    header = envelope.parse_header(blob)
    n = len(header.kek_id)
    length = header.payload_len
    if header.suite == envelope.SUITE_CUSTODIAN_WRAP:
        t = 9 + n + len(header.wrapped_dek)
        return {
            "magic": (0, 3),
            "version": (3, 1),
            "suite": (4, 2),
            "kek-id-length": (6, 1),
            "kek-id": (7, n),
            "wrap-nonce": (7 + n, 2),
            "wrapped-dek": (9 + n, t - 9 - n),
            "commitment": (t, 32),
            "payload-nonce": (t + 32, 12),
            "payload-length": (t + 44, 4),
            "ciphertext": (t + 48, length),
            "tag": (t + 48 + length, 16),
        }
    return {
        "magic": (0, 3),
        "version": (3, 1),
        "suite": (4, 2),
        "kek-id-length": (6, 1),
        "kek-id": (7, n),
        "wrap-nonce": (7 + n, 12),
        "wrapped-dek": (19 + n, 48),
        "commitment": (67 + n, 32),
        "payload-nonce": (99 + n, 12),
        "payload-length": (111 + n, 4),
        "ciphertext": (115 + n, length),
        "tag": (115 + n + length, 16),
    }
