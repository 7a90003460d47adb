"""Envelope suite 0x0002 (custodian-wrapped DEK): known answers, bounds, tampering, custody moves.

``Ref2`` is a second implementation of docs/format.md §3.2/§5.2/§6.2 and of the stand-in KMS
(§11.1), written with raw ``cryptography`` primitives, so the shipped vectors are justified
independently of ``portable_creds.envelope``.
"""

from __future__ import annotations

import hmac
import os
import struct
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from portable_creds import envelope, vectors
from portable_creds.envelope import Context
from portable_creds.errors import IntegrityError, PayloadTooLarge
from portable_creds.keys import Kek
from portable_creds.kms_standin import StandInKms


class RefFailure(Exception):
    """The reference refuses the blob; the message is the error class the format names."""


def lp(x: bytes) -> bytes:
    return struct.pack(">H", len(x)) + x


class Ref2:
    PREFIX = b"PCE\x01\x00\x02"
    DEK_INFO = b"portable-creds/v1 dek\x00\x02"

    @staticmethod
    def ctx(v: dict[str, Any]) -> bytes:
        return lp(v["wallet"].encode()) + lp(v["service"].encode()) + lp(v["storage_key"].encode())

    @staticmethod
    def standin_wrap(kek_id: str, master: bytes, dek: bytes, nonce: bytes, ctx: bytes) -> bytes:
        head = b"SIK1" + lp(kek_id.encode())
        return head + nonce + AESGCM(master).encrypt(nonce, dek, head + ctx)

    @staticmethod
    def standin_unwrap(kek_id: str, master: bytes, wrapped: bytes, ctx: bytes) -> bytes:
        head = b"SIK1" + lp(kek_id.encode())
        if not wrapped.startswith(head) or len(wrapped) != len(head) + 60:
            raise RefFailure("IntegrityError")
        try:
            return AESGCM(master).decrypt(
                wrapped[len(head) : len(head) + 12], wrapped[len(head) + 12 :], head + ctx
            )
        except InvalidTag:
            raise RefFailure("IntegrityError") from None

    @classmethod
    def okm(cls, dek: bytes) -> tuple[bytes, bytes]:
        okm = HKDF(hashes.SHA256(), 64, salt=b"\x00" * 32, info=cls.DEK_INFO).derive(dek)
        return okm[:32], okm[32:]

    @classmethod
    def seal(
        cls, plaintext: bytes, kek_id: str, wrapped: bytes, dek: bytes, nonce: bytes, ctx: bytes
    ) -> bytes:
        head = cls.PREFIX + bytes([len(kek_id)]) + kek_id.encode() + struct.pack(">H", len(wrapped))
        content_key, commitment = cls.okm(dek)
        tail = commitment + nonce + struct.pack(">I", len(plaintext))
        return (
            head + wrapped + tail + AESGCM(content_key).encrypt(nonce, plaintext, head + tail + ctx)
        )

    @classmethod
    def open(
        cls, blob: bytes, standins: dict[str, bytes], ctx: bytes, max_payload: int = 1 << 20
    ) -> bytes:
        bad = RefFailure("IntegrityError")
        if len(blob) < 75 or blob[:6] != cls.PREFIX:
            raise bad
        n = blob[6]
        if not 1 <= n <= 64 or len(blob) < 74 + n:
            raise bad
        kek_id = blob[7 : 7 + n]
        if any(not 0x21 <= b <= 0x7E for b in kek_id):
            raise bad
        (m,) = struct.unpack(">H", blob[7 + n : 9 + n])
        if not 1 <= m <= 6144 or len(blob) < 73 + n + m:
            raise bad
        t = 9 + n + m
        (size,) = struct.unpack(">I", blob[t + 44 : t + 48])
        if len(blob) != 73 + n + m + size:
            raise bad
        if size > max_payload:
            raise RefFailure("PayloadTooLarge")
        if kek_id.decode() not in standins:
            raise bad
        dek = cls.standin_unwrap(kek_id.decode(), standins[kek_id.decode()], blob[9 + n : t], ctx)
        content_key, commitment = cls.okm(dek)
        if not hmac.compare_digest(commitment, blob[t : t + 32]):
            raise bad
        try:
            return AESGCM(content_key).decrypt(
                blob[t + 32 : t + 44], blob[t + 48 :], blob[: 9 + n] + blob[t : t + 48] + ctx
            )
        except InvalidTag:
            raise bad from None


DOC = vectors.load_vectors()


def _ids(group: str) -> list[str]:
    return [v["name"] for v in DOC[group]]


def _context(v: dict[str, Any]) -> Context:
    return Context(v["wallet"], v["service"], v["storage_key"])


def test_kms_vectors_cover_bounds_and_variable_length() -> None:
    wrapped_lengths = {len(v["wrapped"]) // 2 for v in DOC["envelope_kms"]}
    assert len(wrapped_lengths) >= 3  # the wrapped key really is variable-length
    names = {v["name"].split("/")[-1] for v in DOC["envelope_kms_negative"]}
    for required in (
        "wrapped-len-0", "wrapped-len-6145", "wrapped-len-plus-1", "wrapped-len-minus-1",
        "wrapped-first", "wrapped-last", "suite-0001", "kek-id-changed", "wrong-wallet",
        "wrong-service", "wrong-storage-key", "wrong-custodian-key", "local-kek-under-id",
        "above-reader-limit", "truncated-9",
    ):  # fmt: skip
        assert required in names


@pytest.mark.parametrize("v", DOC["envelope_kms"], ids=_ids("envelope_kms"))
def test_reference_reproduces_kms_vector(v: dict[str, Any]) -> None:
    ctx = Ref2.ctx(v)
    master, dek = bytes.fromhex(v["standin_key"]), bytes.fromhex(v["dek"])
    wrapped = Ref2.standin_wrap(v["kek_id"], master, dek, bytes.fromhex(v["wrap_nonce"]), ctx)
    assert wrapped.hex() == v["wrapped"]
    plaintext = bytes.fromhex(v["plaintext"])
    blob = Ref2.seal(plaintext, v["kek_id"], wrapped, dek, bytes.fromhex(v["payload_nonce"]), ctx)
    assert blob.hex() == v["blob"]
    assert len(blob) == 73 + len(v["kek_id"]) + len(wrapped) + len(plaintext)
    assert Ref2.open(blob, {v["kek_id"]: master}, ctx) == plaintext


@pytest.mark.parametrize("v", DOC["envelope_kms"], ids=_ids("envelope_kms"))
def test_library_reproduces_kms_vector(v: dict[str, Any]) -> None:
    vectors.check_envelope_kms(v)
    header = envelope.parse_header(bytes.fromhex(v["blob"]))
    assert header.suite == envelope.SUITE_CUSTODIAN_WRAP
    assert header.kek_id == v["kek_id"] and header.wrapped_dek.hex() == v["wrapped"]


@pytest.mark.parametrize("v", DOC["envelope_kms_negative"], ids=_ids("envelope_kms_negative"))
def test_kms_negative_vector_fails_in_reference_and_library(v: dict[str, Any]) -> None:
    max_payload = v.get("max_payload", 1 << 20)
    standins = {k: bytes.fromhex(h) for k, h in v["standin_keys"].items()}
    with pytest.raises(RefFailure) as ref_exc:
        Ref2.open(bytes.fromhex(v["blob"]), standins, Ref2.ctx(v), max_payload)
    assert str(ref_exc.value) == v["error"]
    expected = {"IntegrityError": IntegrityError, "PayloadTooLarge": PayloadTooLarge}[v["error"]]
    with pytest.raises(expected):
        envelope.open_blob(
            bytes.fromhex(v["blob"]),
            context=_context(v),
            resolve_kek=vectors.kms_resolver(v.get("keks", {}), v["standin_keys"]),
            max_payload=max_payload,
        )
    vectors.check_negative_kms(v)


@pytest.mark.parametrize("v", DOC["rewrap_kms"], ids=_ids("rewrap_kms"))
def test_custody_move_vector(v: dict[str, Any]) -> None:
    ctx = Ref2.ctx(v)
    source = next(e for e in DOC["envelope"] if e["blob"] == v["source_blob"])
    plaintext = bytes.fromhex(source["plaintext"])
    master, dek = bytes.fromhex(v["standin_key"]), bytes.fromhex(v["dek"])
    wrapped = Ref2.standin_wrap(v["new_kek_id"], master, dek, bytes.fromhex(v["wrap_nonce"]), ctx)
    expected = Ref2.seal(
        plaintext, v["new_kek_id"], wrapped, dek, bytes.fromhex(v["payload_nonce"]), ctx
    )
    assert expected.hex() == v["blob"]
    vectors.check_rewrap_kms(v)


# -- properties beyond the vectors -----------------------------------------------------------

CTX = Context("0x" + "11" * 20, "svc", "bots/0x" + "11" * 20 + "/credentials/svc.enc")


@pytest.fixture
def standin() -> StandInKms:
    return StandInKms("kms.prop", os.urandom(32))


def test_every_bit_flip_and_truncation_fails(standin: StandInKms) -> None:
    blob = envelope.seal(b"hunter2", kek=standin, context=CTX)
    assert envelope.open_blob(blob, context=CTX, resolve_kek=lambda _: standin) == b"hunter2"
    for i in range(len(blob)):
        for bit in (0x01, 0x80):
            bad = bytearray(blob)
            bad[i] ^= bit
            with pytest.raises((IntegrityError, PayloadTooLarge)):
                envelope.open_blob(bytes(bad), context=CTX, resolve_kek=lambda _: standin)
    for cut in range(len(blob)):
        with pytest.raises(IntegrityError):
            envelope.open_blob(blob[:cut], context=CTX, resolve_kek=lambda _: standin)


def test_custody_moves_both_directions(standin: StandInKms) -> None:
    kek = Kek("local-1", os.urandom(32))
    keys: dict[str, Kek | StandInKms] = {kek.kek_id: kek, standin.kek_id: standin}
    local = envelope.seal(b"value", kek=kek, context=CTX)
    to_kms = envelope.rewrap(local, context=CTX, resolve_kek=keys.__getitem__, new_kek=standin)
    assert envelope.parse_header(to_kms).suite == envelope.SUITE_CUSTODIAN_WRAP
    back = envelope.rewrap(to_kms, context=CTX, resolve_kek=keys.__getitem__, new_kek=kek)
    assert envelope.parse_header(back).suite == envelope.SUITE_AES256GCM_HKDF_COMMIT
    assert envelope.open_blob(back, context=CTX, resolve_kek=keys.__getitem__) == b"value"
    moved = CTX.__class__(CTX.wallet, "other", CTX.storage_key)
    with pytest.raises(IntegrityError):  # a custody move never re-binds a blob elsewhere
        envelope.rewrap(to_kms, context=moved, resolve_kek=keys.__getitem__, new_kek=kek)


def test_custodian_returning_a_bad_wrap_is_refused_before_writing() -> None:
    class Broken(StandInKms):
        def generate_data_key(self, encryption_context: Any, size: int) -> tuple[bytes, bytes]:
            return os.urandom(32), b"x" * 6145

    with pytest.raises(ValueError, match="wrong size"):
        envelope.seal(b"v", kek=Broken("kms.broken", os.urandom(32)), context=CTX)
