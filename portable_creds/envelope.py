"""Envelope format v1: one sealed credential, self-describing and bound to where it lives.

Layout (all integers big-endian; the normative description is docs/format.md)::

    off      len  field
    0        3    magic            b"PCE"
    3        1    version          0x01
    4        2    suite            0x0001 (AES-256-GCM payload, AES-256-GCM DEK wrap,
                                           HKDF-SHA256 key commitment)
    6        1    kek_id_len       n, 1..64
    7        n    kek_id           printable ASCII (0x21..0x7e)
    7+n      12   wrap_nonce
    19+n     48   wrapped_dek      AES-256-GCM(KEK, wrap_nonce, DEK, wrap_aad) = ct(32) || tag(16)
    67+n     32   commitment       HKDF-SHA256(DEK)[32:64]
    99+n     12   payload_nonce
    111+n    4    payload_len      L = plaintext length
    115+n    L+16 payload          AES-256-GCM(content_key, payload_nonce, plaintext, payload_aad)

    context     = u16(len(w)) || w || u16(len(s)) || s || u16(len(k)) || k
                  (w = wallet lowercased, s = service, k = storage key; UTF-8)
    wrap_aad    = blob[0 : 7+n] || context
    payload_aad = blob[0 : 6] || blob[67+n : 115+n] || context
    okm         = HKDF-SHA256(ikm=DEK, salt=none, info=b"portable-creds/v1 dek" || suite, L=64)
    content_key = okm[0:32], commitment = okm[32:64]

The payload AAD leaves out the KEK id and the wrap, so ``rewrap`` can replace them without
touching the payload; the KEK id is still authenticated, by the wrap AAD.

Suite 0x0002 (a custodian key, e.g. a cloud KMS, wraps the DEK; docs/format.md §3.2)::

    0        6    magic, version 0x01, suite 0x0002
    6        1+n  kek_id_len, kek_id         as above
    7+n      2    wrapped_len      m, 1..6144
    9+n      m    wrapped_dek      the custodian's ciphertext of the DEK, opaque here
    9+n+m    32   commitment       as above (HKDF info ends in u16(0x0002))
    41+n+m   12   payload_nonce
    53+n+m   4    payload_len      L
    57+n+m   L+16 payload          AES-256-GCM(content_key, payload_nonce, plaintext, payload_aad)

    payload_aad = blob[0 : 9+n] || blob[9+n+m : 57+n+m] || context
    encryption context given to the custodian = kms_context(context)

The custodian authenticates the wrap (and binds the context); the commitment ties the payload
to that DEK; the payload AAD covers the KEK id and the wrapped length.
"""

from __future__ import annotations

import hmac
import os
import re
import struct
from collections.abc import Callable

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import IntegrityError, PayloadTooLarge
from .keys import CustodianKey, Kek, WrappingKey

MAGIC = b"PCE"
VERSION = 1
SUITE_AES256GCM_HKDF_COMMIT = 0x0001
SUITE_CUSTODIAN_WRAP = 0x0002

KEK_ID_MAX = 64
NONCE_LEN = 12
DEK_LEN = 32
TAG_LEN = 16
WRAPPED_DEK_LEN = DEK_LEN + TAG_LEN
COMMITMENT_LEN = 32
FIXED_OVERHEAD = 7 + NONCE_LEN + WRAPPED_DEK_LEN + COMMITMENT_LEN + NONCE_LEN + 4 + TAG_LEN
MAX_HEADER_LEN = FIXED_OVERHEAD - TAG_LEN + KEK_ID_MAX

#: Bounds of suite 0x0002's wrapped key: AWS KMS's CiphertextType is 1..6144 bytes (botocore
#: model); a Tencent KMS CiphertextBlob is far shorter.
WRAPPED_MIN = 1
WRAPPED_MAX = 6144
#: Suite 0x0002 without kek_id, wrapped key and payload: 7 + 2 + 32 + 12 + 4 + 16.
CUSTODIAN_OVERHEAD = 73

#: The encryption-context keys a custodian binds (and an AWS key policy can condition on).
KMS_CONTEXT_WALLET = "pc_wallet"
KMS_CONTEXT_SERVICE = "pc_service"
KMS_CONTEXT_STORAGE_KEY = "pc_storage_key"

DEFAULT_MAX_PAYLOAD = 1 << 20
ABSOLUTE_MAX_PAYLOAD = 64 << 20

_PREFIX = MAGIC + bytes([VERSION]) + SUITE_AES256GCM_HKDF_COMMIT.to_bytes(2, "big")
_HKDF_INFO = b"portable-creds/v1 dek" + SUITE_AES256GCM_HKDF_COMMIT.to_bytes(2, "big")
_PREFIX2 = MAGIC + bytes([VERSION]) + SUITE_CUSTODIAN_WRAP.to_bytes(2, "big")
_HKDF_INFO2 = b"portable-creds/v1 dek" + SUITE_CUSTODIAN_WRAP.to_bytes(2, "big")
_SHA256 = hashes.SHA256()
_KEK_ID_BYTES = re.compile(rb"[\x21-\x7e]{1,64}")

#: Randomness: ``rng(n)`` returns n bytes. Production uses ``os.urandom``; vectors inject their
#: own. Draw order in ``seal``: DEK (32), wrap nonce (12), payload nonce (12).
Random = Callable[[int], bytes]


def _u16(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


@attrs.frozen
class Context:
    """Where a blob lives. Bound into both AADs: a blob copied elsewhere fails to open."""

    wallet: str
    service: str
    storage_key: str

    def encode(self) -> bytes:
        w, s, k = self.wallet.encode(), self.service.encode(), self.storage_key.encode()
        return b"".join(
            (
                len(w).to_bytes(2, "big"),
                w,
                len(s).to_bytes(2, "big"),
                s,
                len(k).to_bytes(2, "big"),
                k,
            )
        )


def kms_context(context: Context) -> dict[str, str]:
    """The encryption context a custodian binds: the same wallet, service and storage key."""
    return {
        KMS_CONTEXT_WALLET: context.wallet,
        KMS_CONTEXT_SERVICE: context.service,
        KMS_CONTEXT_STORAGE_KEY: context.storage_key,
    }


@attrs.frozen
class Header:
    """The parsed, not yet authenticated, header of a sealed blob."""

    version: int
    suite: int
    kek_id: str
    #: Empty for suite 0x0002 (the custodian's ciphertext carries its own nonce).
    wrap_nonce: bytes
    wrapped_dek: bytes
    commitment: bytes
    payload_nonce: bytes
    payload_len: int
    header_len: int


def check_max_payload(max_payload: int) -> int:
    if not 0 <= max_payload <= ABSOLUTE_MAX_PAYLOAD:
        raise PayloadTooLarge(
            f"max payload {max_payload} bytes is outside 0..{ABSOLUTE_MAX_PAYLOAD} (64 MiB)"
        )
    return max_payload


def max_blob_size(max_payload: int) -> int:
    """The largest sealed blob a reader with ``max_payload`` can open (longest KEK id, and
    for suite 0x0002 the longest wrapped key)."""
    overhead = max(FIXED_OVERHEAD, CUSTODIAN_OVERHEAD + WRAPPED_MAX)
    return overhead + KEK_ID_MAX + check_max_payload(max_payload)


def _derive(dek: bytes, info: bytes = _HKDF_INFO) -> tuple[bytes, bytes]:
    okm = HKDF(algorithm=_SHA256, length=64, salt=None, info=info).derive(dek)
    return okm[:32], okm[32:]


def _check_size(plaintext: bytes, max_payload: int) -> None:
    if len(plaintext) > check_max_payload(max_payload):
        raise PayloadTooLarge(
            f"secret is {len(plaintext)} bytes; the maximum is {max_payload} bytes "
            "(raise max_payload, up to 64 MiB, if this is intended)"
        )


def seal(
    plaintext: bytes,
    *,
    kek: WrappingKey,
    context: Context,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    rng: Random = os.urandom,
) -> bytes:
    """Encrypt ``plaintext`` under a fresh DEK wrapped by ``kek``, bound to ``context``.

    A ``Kek`` gives suite 0x0001; a ``CustodianKey`` suite 0x0002, where the custodian makes
    the DEK and ``rng`` draws only the payload nonce.
    """
    _check_size(plaintext, max_payload)
    if isinstance(kek, CustodianKey):
        dek, wrapped = kek.generate_data_key(kms_context(context), len(plaintext))
        return _seal_custodian(plaintext, kek.kek_id, dek, wrapped, context, rng)
    dek, wrap_nonce, payload_nonce = rng(DEK_LEN), rng(NONCE_LEN), rng(NONCE_LEN)
    if len(dek) != DEK_LEN or len(wrap_nonce) != NONCE_LEN or len(payload_nonce) != NONCE_LEN:
        raise ValueError("rng returned the wrong number of bytes")
    ctx = context.encode()
    kek_id = kek.kek_id.encode("ascii")
    head = _PREFIX + bytes([len(kek_id)]) + kek_id
    wrapped = AESGCM(kek.key).encrypt(wrap_nonce, dek, head + ctx)
    content_key, commitment = _derive(dek)
    tail = commitment + payload_nonce + struct.pack(">I", len(plaintext))
    payload = AESGCM(content_key).encrypt(payload_nonce, plaintext, _PREFIX + tail + ctx)
    return b"".join((head, wrap_nonce, wrapped, tail, payload))


def _seal_custodian(
    plaintext: bytes, kek_id: str, dek: bytes, wrapped: bytes, context: Context, rng: Random
) -> bytes:
    if len(dek) != DEK_LEN or not WRAPPED_MIN <= len(wrapped) <= WRAPPED_MAX:
        raise ValueError("the custodian returned a data key or wrapped key of the wrong size")
    payload_nonce = rng(NONCE_LEN)
    if len(payload_nonce) != NONCE_LEN:
        raise ValueError("rng returned the wrong number of bytes")
    raw_id = kek_id.encode("ascii")
    head = _PREFIX2 + bytes([len(raw_id)]) + raw_id + len(wrapped).to_bytes(2, "big")
    content_key, commitment = _derive(dek, _HKDF_INFO2)
    tail = commitment + payload_nonce + struct.pack(">I", len(plaintext))
    payload = AESGCM(content_key).encrypt(payload_nonce, plaintext, head + tail + context.encode())
    return b"".join((head, wrapped, tail, payload))


@attrs.frozen
class _Layout2:
    """Offsets of a parsed suite 0x0002 blob."""

    n: int
    m: int
    payload_len: int

    @property
    def tail(self) -> int:
        return 9 + self.n + self.m


def _parse2(blob: bytes, max_payload: int) -> _Layout2:
    """Strict structural checks of a suite 0x0002 blob; any deviation is IntegrityError."""
    size = len(blob)
    if size < CUSTODIAN_OVERHEAD + 2 or blob[:6] != _PREFIX2:
        raise IntegrityError()
    n = blob[6]
    if not 1 <= n <= KEK_ID_MAX or size < CUSTODIAN_OVERHEAD + n + WRAPPED_MIN:
        raise IntegrityError()
    if _KEK_ID_BYTES.fullmatch(blob, 7, 7 + n) is None:
        raise IntegrityError()
    m = int.from_bytes(blob[7 + n : 9 + n], "big")
    if not WRAPPED_MIN <= m <= WRAPPED_MAX or size < CUSTODIAN_OVERHEAD + n + m:
        raise IntegrityError()
    t = 9 + n + m
    payload_len = int.from_bytes(blob[t + 44 : t + 48], "big")
    if size != CUSTODIAN_OVERHEAD + n + m + payload_len:
        raise IntegrityError()
    if payload_len > max_payload:
        raise PayloadTooLarge(
            f"stored secret is {payload_len} bytes, above this reader's maximum of "
            f"{max_payload} bytes; open it with a larger max_payload"
        )
    return _Layout2(n, m, payload_len)


def suite_of(blob: bytes) -> int:
    """The suite a blob declares (0 if it is not even a v1 envelope); nothing is checked."""
    if len(blob) < 6 or blob[:4] != _PREFIX[:4]:
        return 0
    return int.from_bytes(blob[4:6], "big")


def _parse(blob: bytes, max_payload: int) -> tuple[int, int]:
    """Strict structural checks; returns (n, payload_len). Any deviation is IntegrityError."""
    size = len(blob)
    if size < FIXED_OVERHEAD + 1 or blob[:6] != _PREFIX:
        raise IntegrityError()
    n = blob[6]
    if not 1 <= n <= KEK_ID_MAX or size < FIXED_OVERHEAD + n:
        raise IntegrityError()
    if _KEK_ID_BYTES.fullmatch(blob, 7, 7 + n) is None:
        raise IntegrityError()
    payload_len = int.from_bytes(blob[111 + n : 115 + n], "big")
    if size != FIXED_OVERHEAD + n + payload_len:
        raise IntegrityError()
    if payload_len > max_payload:
        raise PayloadTooLarge(
            f"stored secret is {payload_len} bytes, above this reader's maximum of "
            f"{max_payload} bytes; open it with a larger max_payload"
        )
    return n, payload_len


def parse_header(blob: bytes, *, max_payload: int = ABSOLUTE_MAX_PAYLOAD) -> Header:
    """Strictly parse the header; any deviation (including total length) is an IntegrityError.

    A well-formed blob whose declared payload exceeds ``max_payload`` raises PayloadTooLarge,
    so a reader configured for smaller secrets says so instead of claiming tampering.
    """
    if suite_of(blob) == SUITE_CUSTODIAN_WRAP:
        lay = _parse2(blob, max_payload)
        t = lay.tail
        return Header(
            version=VERSION,
            suite=SUITE_CUSTODIAN_WRAP,
            kek_id=blob[7 : 7 + lay.n].decode("ascii"),
            wrap_nonce=b"",
            wrapped_dek=bytes(blob[9 + lay.n : t]),
            commitment=bytes(blob[t : t + 32]),
            payload_nonce=bytes(blob[t + 32 : t + 44]),
            payload_len=lay.payload_len,
            header_len=t + 48,
        )
    n, payload_len = _parse(blob, max_payload)
    o = 7 + n
    return Header(
        version=VERSION,
        suite=SUITE_AES256GCM_HKDF_COMMIT,
        kek_id=blob[7:o].decode("ascii"),
        wrap_nonce=bytes(blob[o : o + 12]),
        wrapped_dek=bytes(blob[o + 12 : o + 60]),
        commitment=bytes(blob[o + 60 : o + 92]),
        payload_nonce=bytes(blob[o + 92 : o + 104]),
        payload_len=payload_len,
        header_len=o + 108,
    )


def _unwrap(blob: bytes, n: int, kek: WrappingKey, ctx: bytes) -> bytes:
    o = 7 + n
    if not isinstance(kek, Kek) or kek.kek_id.encode("ascii") != blob[7:o]:
        raise IntegrityError()
    try:
        return AESGCM(kek.key).decrypt(blob[o : o + 12], blob[o + 12 : o + 60], blob[:o] + ctx)
    except InvalidTag:
        raise IntegrityError() from None


def open_blob(
    blob: bytes,
    *,
    context: Context,
    resolve_kek: Callable[[str], WrappingKey],
    max_payload: int = DEFAULT_MAX_PAYLOAD,
) -> bytes:
    """Authenticate and decrypt. Every failure is the same ``IntegrityError``; no partial output.

    ``resolve_kek(kek_id)`` returns the KEK named in the header (it may raise IntegrityError).
    """
    if suite_of(blob) == SUITE_CUSTODIAN_WRAP:
        return _open_custodian(blob, context, resolve_kek, check_max_payload(max_payload))
    n, _ = _parse(blob, check_max_payload(max_payload))
    ctx = context.encode()
    dek = _unwrap(blob, n, resolve_kek(blob[7 : 7 + n].decode("ascii")), ctx)
    return _open_payload(blob, n, dek, ctx)


def _open_custodian(
    blob: bytes, context: Context, resolve_kek: Callable[[str], WrappingKey], max_payload: int
) -> bytes:
    lay = _parse2(blob, max_payload)
    kek = resolve_kek(blob[7 : 7 + lay.n].decode("ascii"))
    if not isinstance(kek, CustodianKey) or kek.kek_id.encode("ascii") != blob[7 : 7 + lay.n]:
        raise IntegrityError()
    t = lay.tail
    dek = kek.decrypt_data_key(bytes(blob[9 + lay.n : t]), kms_context(context), lay.payload_len)
    if len(dek) != DEK_LEN:
        raise IntegrityError()
    content_key, commitment = _derive(dek, _HKDF_INFO2)
    if not hmac.compare_digest(commitment, blob[t : t + 32]):
        raise IntegrityError()
    try:
        return AESGCM(content_key).decrypt(
            blob[t + 32 : t + 44],
            memoryview(blob)[t + 48 :],
            blob[: 9 + lay.n] + blob[t : t + 48] + context.encode(),
        )
    except InvalidTag:
        raise IntegrityError() from None


def _open_payload(blob: bytes, n: int, dek: bytes, ctx: bytes) -> bytes:
    content_key, commitment = _derive(dek)
    if not hmac.compare_digest(commitment, blob[67 + n : 99 + n]):
        raise IntegrityError()
    start = 115 + n
    try:
        return AESGCM(content_key).decrypt(
            blob[99 + n : 111 + n], memoryview(blob)[start:], _PREFIX + blob[67 + n : start] + ctx
        )
    except InvalidTag:
        raise IntegrityError() from None


def rewrap(
    blob: bytes,
    *,
    context: Context,
    resolve_kek: Callable[[str], WrappingKey],
    new_kek: WrappingKey,
    rng: Random = os.urandom,
) -> bytes:
    """Re-wrap the DEK under ``new_kek``; the payload bytes are carried over unchanged.

    The whole blob is authenticated first (wrap, commitment and payload tag; the plaintext
    is discarded), so a blob that would not open is never re-wrapped. A custody move (to or
    from a custodian key, or between two) re-seals instead: the suites derive their content
    keys differently, so the payload cannot be carried over (docs/format.md §7).
    """
    if suite_of(blob) == SUITE_CUSTODIAN_WRAP or isinstance(new_kek, CustodianKey):
        plaintext = open_blob(
            blob, context=context, resolve_kek=resolve_kek, max_payload=ABSOLUTE_MAX_PAYLOAD
        )
        return seal(
            plaintext, kek=new_kek, context=context, max_payload=ABSOLUTE_MAX_PAYLOAD, rng=rng
        )
    n, _ = _parse(blob, ABSOLUTE_MAX_PAYLOAD)
    ctx = context.encode()
    dek = _unwrap(blob, n, resolve_kek(blob[7 : 7 + n].decode("ascii")), ctx)
    _open_payload(blob, n, dek, ctx)
    wrap_nonce = rng(NONCE_LEN)
    kek_id = new_kek.kek_id.encode("ascii")
    head = _PREFIX + bytes([len(kek_id)]) + kek_id
    wrapped = AESGCM(new_kek.key).encrypt(wrap_nonce, dek, head + ctx)
    return b"".join((head, wrap_nonce, wrapped, memoryview(blob)[67 + n :]))
