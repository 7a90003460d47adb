"""Known-answer vectors for the v1 envelope and the key sources: load, check, (re)generate.

The vectors live in the conformance distribution (``portable_creds_conformance/data/
vectors.json``) so that other implementations can use them without this library. Their
layout is described in docs/format.md ("Test vectors"). ``tools/gen_vectors.py`` rewrites the
file from :func:`generate_vectors`; the test suite checks the file against an independent
re-implementation written from docs/format.md, so the expected bytes are not merely whatever
this library happens to produce.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from hashlib import sha256
from importlib import resources
from pathlib import Path
from typing import Any

from . import envelope, errors
from .envelope import Context, Random
from .errors import ConfigurationError, IntegrityError
from .keys import Kek, WrappingKey
from .kms_standin import StandInKms
from .secret_key import SecretKeySource
from .signer import default_omni_account, kek_from_signature, kek_message, signer_kek_id

VECTORS_PACKAGE = "portable_creds_conformance"
VECTORS_RESOURCE = ("data", "vectors.json")
SCHEMA = "portable-creds/vectors/v1"

Vector = dict[str, Any]


class VectorMismatch(AssertionError):
    """The implementation under test disagrees with a known-answer vector."""


def load_vectors(path: str | Path | None = None) -> dict[str, Any]:
    """The vectors document: from ``path``, or from the installed conformance package data."""
    if path is not None:
        text = Path(path).read_text(encoding="utf-8")
    else:
        try:
            ref = resources.files(VECTORS_PACKAGE)
            for part in VECTORS_RESOURCE:
                ref = ref.joinpath(part)
            text = ref.read_text(encoding="utf-8")
        except (ModuleNotFoundError, FileNotFoundError):
            raise ConfigurationError(
                "the known-answer vectors ship with portable-creds-conformance; install it "
                "(pip install portable-creds-conformance) or pass the path to vectors.json"
            ) from None
    doc: dict[str, Any] = json.loads(text)
    if doc.get("schema") != SCHEMA:
        raise ConfigurationError(f"vectors file has schema {doc.get('schema')!r}, not {SCHEMA}")
    return doc


def fixed_rng(*chunks: bytes) -> Random:
    """An ``rng`` that hands out ``chunks`` in order, refusing a draw of any other size."""
    queue: Iterator[bytes] = iter(chunks)

    def rng(n: int) -> bytes:
        chunk = next(queue, None)
        if chunk is None or len(chunk) != n:
            raise VectorMismatch(f"unexpected draw of {n} random bytes")
        return chunk

    return rng


def _context(v: Vector) -> Context:
    return Context(wallet=v["wallet"], service=v["service"], storage_key=v["storage_key"])


def resolver(keks: dict[str, str]) -> Callable[[str], Kek]:
    """``resolve_kek`` over a map of KEK id -> KEK hex; unknown ids are IntegrityError."""

    def resolve(kek_id: str) -> Kek:
        if kek_id not in keks:
            raise IntegrityError()
        return Kek(kek_id, bytes.fromhex(keks[kek_id]))

    return resolve


def kms_resolver(keks: dict[str, str], standins: dict[str, str]) -> Callable[[str], WrappingKey]:
    """Like ``resolver``, plus stand-in custodians (KEK id -> stand-in master key hex)."""
    plain = resolver(keks)

    def resolve(kek_id: str) -> WrappingKey:
        if kek_id in standins:
            return StandInKms(kek_id, bytes.fromhex(standins[kek_id]))
        return plain(kek_id)

    return resolve


def _expect(label: str, got: object, want: object) -> None:
    if got != want:
        raise VectorMismatch(f"{label}: got {got!r}, expected {want!r}")


# -- checks ---------------------------------------------------------------------------------


def check_envelope(v: Vector) -> None:
    """``seal`` with the vector's KEK, DEK and nonces gives exactly ``blob``; it opens again."""
    kek = Kek(v["kek_id"], bytes.fromhex(v["kek"]))
    plaintext = bytes.fromhex(v["plaintext"])
    rng = fixed_rng(*(bytes.fromhex(v[k]) for k in ("dek", "wrap_nonce", "payload_nonce")))
    blob = envelope.seal(plaintext, kek=kek, context=_context(v), rng=rng)
    _expect(f"{v['name']}: sealed blob", blob.hex(), v["blob"])
    opened = envelope.open_blob(
        bytes.fromhex(v["blob"]), context=_context(v), resolve_kek=resolver({kek.kek_id: v["kek"]})
    )
    _expect(f"{v['name']}: opened plaintext", opened.hex(), v["plaintext"])


def check_negative(v: Vector) -> None:
    """Opening ``blob`` must raise exactly the named error class, never return anything."""
    expected = getattr(errors, v["error"])
    try:
        envelope.open_blob(
            bytes.fromhex(v["blob"]),
            context=_context(v),
            resolve_kek=resolver(v["keks"]),
            max_payload=v.get("max_payload", envelope.DEFAULT_MAX_PAYLOAD),
        )
    except errors.PortableCredsError as exc:
        _expect(f"{v['name']}: error class", type(exc).__name__, expected.__name__)
        return
    raise VectorMismatch(f"{v['name']}: opened, but must fail with {v['error']}")


def check_rewrap(v: Vector) -> None:
    """``rewrap`` to the new KEK with the given wrap nonce gives exactly ``blob``."""
    new_kek = Kek(v["new_kek_id"], bytes.fromhex(v["new_kek"]))
    blob = envelope.rewrap(
        bytes.fromhex(v["source_blob"]),
        context=_context(v),
        resolve_kek=resolver(v["keks"]),
        new_kek=new_kek,
        rng=fixed_rng(bytes.fromhex(v["wrap_nonce"])),
    )
    _expect(f"{v['name']}: rewrapped blob", blob.hex(), v["blob"])


def check_secret_key(v: Vector) -> None:
    """SecretKeySource derives exactly ``kek`` with id ``kek_id``."""
    source = SecretKeySource(bytes.fromhex(v["root"]), v["version"])
    kek = source.current_kek(v["wallet"], v["service"])
    _expect(f"{v['name']}: KEK id", kek.kek_id, v["kek_id"])
    _expect(f"{v['name']}: KEK", kek.key.hex(), v["kek"])


def check_signer(v: Vector) -> None:
    """Upstream's signer route: message, omni account and KEK from the signature."""
    _expect(f"{v['name']}: message", kek_message(v["wallet"], v["service"]).hex(), v["message_hex"])
    _expect(f"{v['name']}: omni", default_omni_account(v["wallet"]), v["omni_account"])
    kek = kek_from_signature(bytes.fromhex(v["signature"]))
    _expect(f"{v['name']}: KEK", kek.hex(), v["kek"])
    _expect(f"{v['name']}: KEK id", signer_kek_id(kek), v["kek_id"])


def check_envelope_kms(v: Vector) -> None:
    """Suite 0x0002 with the stand-in custodian: exactly ``wrapped`` and ``blob``; it opens."""
    draws = (bytes.fromhex(v[k]) for k in ("dek", "wrap_nonce", "payload_nonce"))
    rng = fixed_rng(*draws)
    standin = StandInKms(v["kek_id"], bytes.fromhex(v["standin_key"]), rng=rng)
    blob = envelope.seal(bytes.fromhex(v["plaintext"]), kek=standin, context=_context(v), rng=rng)
    _expect(
        f"{v['name']}: wrapped key", envelope.parse_header(blob).wrapped_dek.hex(), v["wrapped"]
    )
    _expect(f"{v['name']}: sealed blob", blob.hex(), v["blob"])
    opened = envelope.open_blob(
        bytes.fromhex(v["blob"]),
        context=_context(v),
        resolve_kek=kms_resolver({}, {v["kek_id"]: v["standin_key"]}),
    )
    _expect(f"{v['name']}: opened plaintext", opened.hex(), v["plaintext"])


def check_negative_kms(v: Vector) -> None:
    """A suite 0x0002 blob that must fail with exactly the named error class."""
    expected = getattr(errors, v["error"])
    try:
        envelope.open_blob(
            bytes.fromhex(v["blob"]),
            context=_context(v),
            resolve_kek=kms_resolver(v.get("keks", {}), v["standin_keys"]),
            max_payload=v.get("max_payload", envelope.DEFAULT_MAX_PAYLOAD),
        )
    except errors.PortableCredsError as exc:
        _expect(f"{v['name']}: error class", type(exc).__name__, expected.__name__)
        return
    raise VectorMismatch(f"{v['name']}: opened, but must fail with {v['error']}")


def check_rewrap_kms(v: Vector) -> None:
    """A custody move (suite 0x0001 -> 0x0002, re-sealed) gives exactly ``blob``."""
    rng = fixed_rng(*(bytes.fromhex(v[k]) for k in ("dek", "wrap_nonce", "payload_nonce")))
    standin = StandInKms(v["new_kek_id"], bytes.fromhex(v["standin_key"]), rng=rng)
    blob = envelope.rewrap(
        bytes.fromhex(v["source_blob"]),
        context=_context(v),
        resolve_kek=resolver(v["keks"]),
        new_kek=standin,
        rng=rng,
    )
    _expect(f"{v['name']}: rewrapped blob", blob.hex(), v["blob"])


CHECKS: dict[str, Callable[[Vector], None]] = {
    "envelope": check_envelope,
    "envelope_negative": check_negative,
    "rewrap": check_rewrap,
    "envelope_kms": check_envelope_kms,
    "envelope_kms_negative": check_negative_kms,
    "rewrap_kms": check_rewrap_kms,
    "secret_key": check_secret_key,
    "signer": check_signer,
}


def check_all(doc: dict[str, Any] | None = None) -> dict[str, int]:
    """Run every check; raises VectorMismatch on the first failure. Returns counts per group."""
    doc = load_vectors() if doc is None else doc
    counts: dict[str, int] = {}
    for group, check in CHECKS.items():
        for v in doc[group]:
            check(v)
        counts[group] = len(doc[group])
    return counts


# -- generation (tools/gen_vectors.py) ------------------------------------------------------


def _det(label: str, n: int) -> bytes:
    """Reproducible, random-looking bytes for vector inputs (no CSPRNG in vectors)."""
    out = b""
    counter = 0
    while len(out) < n:
        out += sha256(f"portable-creds vectors|{label}|{counter}".encode()).digest()
        counter += 1
    return out[:n]


WALLET = "0x8ba1f109551bd432803012645ac136ddd64dba72"
OTHER_WALLET = "0x" + "ab" * 20


def _storage_key(wallet: str, service: str, prefix: str = "bots") -> str:
    return f"{prefix}/{wallet}/credentials/{service}.enc"


_POSITIVE: list[tuple[str, str, bytes, str, str]] = [
    # name, kek_id, plaintext, service, prefix
    ("empty", "test-kek-1", b"", "openai", "bots"),
    ("one-byte", "test-kek-1", b"\x00", "openai", "bots"),
    ("api-key", "test-kek-1", b"sk-test-0123456789abcdefghijklmnop", "openai", "bots"),
    ("block-16", "test-kek-1", _det("block-16", 16), "github.com", "bots"),
    ("utf8", "test-kek-1", "pässwörd ✓ 密码".encode(), "Mail_Server-2", "bots"),
    ("kek-id-min", "k", _det("kek-id-min", 33), "s", "bots"),
    ("kek-id-max", "K" * 32 + "~" * 31 + "!", _det("kek-id-max", 100), "a.b-c_d", "bots"),
    ("secret-key-id", "", _det("secret-key-id", 64), "aws", "tenants/prod"),
    ("4k", "test-kek-1", _det("4k", 4097), "big-cert", "bots"),
]


def _positive(name: str, kek_id: str, plaintext: bytes, service: str, prefix: str) -> Vector:
    kek = _det(f"{name}|kek", 32)
    if not kek_id:  # a real SecretKeySource id and KEK
        source = SecretKeySource(_det("root-1", 32), 3)
        sk = source.current_kek(WALLET, service)
        kek_id, kek = sk.kek_id, sk.key
    dek, wrap_nonce, payload_nonce = (
        _det(f"{name}|dek", 32),
        _det(f"{name}|wrap_nonce", 12),
        _det(f"{name}|payload_nonce", 12),
    )
    ctx = Context(WALLET, service, _storage_key(WALLET, service, prefix))
    blob = envelope.seal(
        plaintext,
        kek=Kek(kek_id, kek),
        context=ctx,
        rng=fixed_rng(dek, wrap_nonce, payload_nonce),
    )
    return {
        "name": name,
        "kek_id": kek_id,
        "kek": kek.hex(),
        "dek": dek.hex(),
        "wrap_nonce": wrap_nonce.hex(),
        "payload_nonce": payload_nonce.hex(),
        "wallet": ctx.wallet,
        "service": ctx.service,
        "storage_key": ctx.storage_key,
        "plaintext": plaintext.hex(),
        "blob": blob.hex(),
    }


def _flip(blob: bytes, offset: int, mask: int = 0x01) -> bytes:
    out = bytearray(blob)
    out[offset] ^= mask
    return bytes(out)


def _negatives(base: Vector) -> list[Vector]:
    blob = bytes.fromhex(base["blob"])
    n = len(base["kek_id"])
    o = 7 + n
    keks = {base["kek_id"]: base["kek"]}
    flipped_id = base["kek_id"][:-1] + chr(ord(base["kek_id"][-1]) ^ 0x01)
    cases: list[tuple[str, str, bytes, dict[str, Any]]] = [
        ("magic", "first magic byte changed", _flip(blob, 0), {}),
        ("magic-last", "last magic byte changed", _flip(blob, 2), {}),
        ("version-0", "version 0x00", blob[:3] + b"\x00" + blob[4:], {}),
        ("version-2", "unknown version 0x02", blob[:3] + b"\x02" + blob[4:], {}),
        ("suite-0002", "unknown suite 0x0002", blob[:4] + b"\x00\x02" + blob[6:], {}),
        ("suite-0100", "unknown suite 0x0100", blob[:4] + b"\x01\x01" + blob[6:], {}),
        ("kek-id-len-0", "kek_id_len 0", blob[:6] + b"\x00" + blob[7:], {}),
        ("kek-id-len-65", "kek_id_len 65 (> 64)", blob[:6] + b"\x41" + blob[7:], {}),
        ("kek-id-len-plus-1", "kek_id_len one too large", _flip_len(blob, +1), {}),
        ("kek-id-len-minus-1", "kek_id_len one too small", _flip_len(blob, -1), {}),
        ("kek-id-space", "kek_id byte 0x20 (not printable)", _set(blob, 7, 0x20), {}),
        ("kek-id-del", "kek_id byte 0x7f", _set(blob, 7, 0x7F), {}),
        (
            "kek-id-changed",
            "kek_id changed; the reader holds the same KEK under the new id too",
            _flip(blob, o - 1),
            {"keks": {**keks, flipped_id: base["kek"]}},
        ),
        ("wrap-nonce", "wrap_nonce bit flip", _flip(blob, o), {}),
        ("wrapped-dek", "wrapped DEK ciphertext bit flip", _flip(blob, o + 12), {}),
        ("wrapped-dek-tag", "wrapped DEK tag bit flip", _flip(blob, o + 59, 0x80), {}),
        ("commitment", "commitment bit flip", _flip(blob, o + 60), {}),
        ("commitment-last", "last commitment byte flip", _flip(blob, o + 91, 0x80), {}),
        ("payload-nonce", "payload_nonce bit flip", _flip(blob, o + 92), {}),
        ("payload-len-plus-1", "payload_len + 1", _len(blob, o, +1), {}),
        ("payload-len-minus-1", "payload_len - 1", _len(blob, o, -1), {}),
        (
            "payload-len-oversize",
            "payload_len 0xffffffff (declared length far beyond the blob and any limit)",
            blob[: o + 104] + b"\xff\xff\xff\xff" + blob[o + 108 :],
            {},
        ),
        ("payload-ct", "payload ciphertext bit flip", _flip(blob, o + 108), {}),
        ("payload-tag", "payload tag bit flip", _flip(blob, len(blob) - 1, 0x80), {}),
        ("truncated-1", "last byte removed", blob[:-1], {}),
        ("truncated-tag", "payload tag removed", blob[:-16], {}),
        ("truncated-header", "only the header", blob[: o + 108], {}),
        ("truncated-7", "only magic, version, suite and kek_id_len", blob[:7], {}),
        ("empty", "zero bytes", b"", {}),
        ("extended-1", "one zero byte appended", blob + b"\x00", {}),
        ("extended-blob", "the blob appended to itself", blob + blob, {}),
        (
            "wrong-storage-key",
            "opened at another storage key",
            blob,
            {"storage_key": base["storage_key"].replace("credentials/", "credentials/x")},
        ),
        (
            "wrong-wallet",
            "opened for another wallet (storage key unchanged)",
            blob,
            {"wallet": OTHER_WALLET},
        ),
        (
            "wrong-wallet-and-path",
            "moved to another wallet's path",
            blob,
            {
                "wallet": OTHER_WALLET,
                "storage_key": _storage_key(OTHER_WALLET, base["service"]),
            },
        ),
        (
            "wrong-service",
            "opened as another service (storage key unchanged)",
            blob,
            {"service": base["service"] + "2"},
        ),
        (
            "wrong-service-and-path",
            "moved to another service's path",
            blob,
            {
                "service": base["service"] + "2",
                "storage_key": _storage_key(base["wallet"], base["service"] + "2"),
            },
        ),
        (
            "wrong-kek",
            "the reader's KEK under this id is a different key",
            blob,
            {"keks": {base["kek_id"]: _det("wrong-kek", 32).hex()}},
        ),
        ("unknown-kek-id", "the reader has no KEK with this id", blob, {"keks": {}}),
    ]
    plaintext_len = len(base["plaintext"]) // 2
    if plaintext_len == 0:
        cases = [c for c in cases if c[0] != "payload-len-minus-1"]
    out: list[Vector] = []
    for suffix, description, mutated, overrides in cases:
        v: Vector = {
            "name": f"{base['name']}/{suffix}",
            "description": description,
            "wallet": base["wallet"],
            "service": base["service"],
            "storage_key": base["storage_key"],
            "keks": keks,
            "blob": mutated.hex(),
            "error": "IntegrityError",
        }
        v.update(overrides)
        out.append(v)
    if plaintext_len == 0:
        return out
    out.append(
        {
            "name": f"{base['name']}/above-reader-limit",
            "description": "intact blob whose payload exceeds the reader's max_payload",
            "wallet": base["wallet"],
            "service": base["service"],
            "storage_key": base["storage_key"],
            "keks": keks,
            "blob": base["blob"],
            "max_payload": plaintext_len - 1,
            "error": "PayloadTooLarge",
        }
    )
    return out


def _set(blob: bytes, offset: int, value: int) -> bytes:
    out = bytearray(blob)
    out[offset] = value
    return bytes(out)


def _flip_len(blob: bytes, delta: int) -> bytes:
    return _set(blob, 6, blob[6] + delta)


def _len(blob: bytes, o: int, delta: int) -> bytes:
    declared = (int.from_bytes(blob[o + 104 : o + 108], "big") + delta) % (1 << 32)
    return blob[: o + 104] + declared.to_bytes(4, "big") + blob[o + 108 :]


def _rewraps(positives: list[Vector]) -> list[Vector]:
    out = []
    for base in positives[:3]:
        new_kek_id, new_kek = "test-kek-2", _det(f"{base['name']}|new-kek", 32)
        wrap_nonce = _det(f"{base['name']}|rewrap-nonce", 12)
        ctx = _context(base)
        blob = envelope.rewrap(
            bytes.fromhex(base["blob"]),
            context=ctx,
            resolve_kek=resolver({base["kek_id"]: base["kek"]}),
            new_kek=Kek(new_kek_id, new_kek),
            rng=fixed_rng(wrap_nonce),
        )
        out.append(
            {
                "name": f"{base['name']}/rewrap",
                "wallet": base["wallet"],
                "service": base["service"],
                "storage_key": base["storage_key"],
                "keks": {base["kek_id"]: base["kek"]},
                "source_blob": base["blob"],
                "new_kek_id": new_kek_id,
                "new_kek": new_kek.hex(),
                "wrap_nonce": wrap_nonce.hex(),
                "blob": blob.hex(),
            }
        )
    return out


_KMS_POSITIVE: list[tuple[str, str, bytes, str, str]] = [
    # name, kek_id, plaintext, service, prefix
    ("kms-empty", "kms.test-1", b"", "openai", "bots"),
    ("kms-api-key", "kms.test-1", b"sk-test-0123456789abcdefghijklmnop", "openai", "bots"),
    ("kms-utf8", "kms.test-1", "pässwörd ✓ 密码".encode(), "Mail_Server-2", "tenants/prod"),
    ("kms-kek-id-min", "k", _det("kms-kek-id-min", 33), "s", "bots"),
    ("kms-kek-id-max", "K" * 32 + "~" * 31 + "!", _det("kms-kek-id-max", 100), "a.b-c_d", "bots"),
    ("kms-4k", "kms.test-1", _det("kms-4k", 4097), "big-cert", "bots"),
]


def _kms_positive(name: str, kek_id: str, plaintext: bytes, service: str, prefix: str) -> Vector:
    master = _det(f"{name}|standin-key", 32)
    dek, wrap_nonce, payload_nonce = (
        _det(f"{name}|dek", 32),
        _det(f"{name}|wrap_nonce", 12),
        _det(f"{name}|payload_nonce", 12),
    )
    rng = fixed_rng(dek, wrap_nonce, payload_nonce)
    ctx = Context(WALLET, service, _storage_key(WALLET, service, prefix))
    blob = envelope.seal(plaintext, kek=StandInKms(kek_id, master, rng=rng), context=ctx, rng=rng)
    return {
        "name": name,
        "kek_id": kek_id,
        "standin_key": master.hex(),
        "dek": dek.hex(),
        "wrap_nonce": wrap_nonce.hex(),
        "payload_nonce": payload_nonce.hex(),
        "wallet": ctx.wallet,
        "service": ctx.service,
        "storage_key": ctx.storage_key,
        "plaintext": plaintext.hex(),
        "wrapped": envelope.parse_header(blob).wrapped_dek.hex(),
        "blob": blob.hex(),
    }


def _set_u16(blob: bytes, offset: int, value: int) -> bytes:
    return blob[:offset] + (value % 65536).to_bytes(2, "big") + blob[offset + 2 :]


def _kms_negatives(base: Vector) -> list[Vector]:
    blob = bytes.fromhex(base["blob"])
    n = len(base["kek_id"])
    m = len(base["wrapped"]) // 2
    t = 9 + n + m
    standins = {base["kek_id"]: base["standin_key"]}
    flipped_id = base["kek_id"][:-1] + chr(ord(base["kek_id"][-1]) ^ 0x01)
    declared = int.from_bytes(blob[t + 44 : t + 48], "big")
    cases: list[tuple[str, str, bytes, dict[str, Any]]] = [
        ("magic", "first magic byte changed", _flip(blob, 0), {}),
        ("version-2", "unknown version 0x02", _set(blob, 3, 2), {}),
        ("suite-0001", "suite changed to 0x0001", _set(blob, 5, 1), {}),
        ("suite-0003", "unknown suite 0x0003", _set(blob, 5, 3), {}),
        ("kek-id-len-0", "kek_id_len 0", _set(blob, 6, 0), {}),
        ("kek-id-len-65", "kek_id_len 65 (> 64)", _set(blob, 6, 65), {}),
        ("kek-id-space", "kek_id byte 0x20 (not printable)", _set(blob, 7, 0x20), {}),
        (
            "kek-id-changed",
            "kek_id changed; the reader holds the same custodian key under the new id too",
            _flip(blob, 6 + n),
            {"standin_keys": {**standins, flipped_id: base["standin_key"]}},
        ),
        ("wrapped-len-0", "wrapped_len 0 (below the minimum 1)", _set_u16(blob, 7 + n, 0), {}),
        (
            "wrapped-len-6145",
            "wrapped_len 6145 (above the maximum 6144)",
            _set_u16(blob, 7 + n, 6145),
            {},
        ),
        ("wrapped-len-plus-1", "wrapped_len one too large", _set_u16(blob, 7 + n, m + 1), {}),
        ("wrapped-len-minus-1", "wrapped_len one too small", _set_u16(blob, 7 + n, m - 1), {}),
        ("wrapped-first", "first wrapped-key byte flip", _flip(blob, 9 + n), {}),
        ("wrapped-last", "last wrapped-key byte flip", _flip(blob, t - 1, 0x80), {}),
        ("commitment", "commitment bit flip", _flip(blob, t), {}),
        ("payload-nonce", "payload_nonce bit flip", _flip(blob, t + 32), {}),
        (
            "payload-len-plus-1",
            "payload_len + 1",
            blob[: t + 44] + ((declared + 1) % (1 << 32)).to_bytes(4, "big") + blob[t + 48 :],
            {},
        ),
        (
            "payload-len-oversize",
            "payload_len 0xffffffff",
            blob[: t + 44] + b"\xff\xff\xff\xff" + blob[t + 48 :],
            {},
        ),
        ("payload-tag", "payload tag bit flip", _flip(blob, len(blob) - 1, 0x80), {}),
        ("truncated-1", "last byte removed", blob[:-1], {}),
        ("truncated-header", "only the header", blob[: t + 48], {}),
        ("truncated-9", "up to and including wrapped_len", blob[: 9 + n], {}),
        ("extended-1", "one zero byte appended", blob + b"\x00", {}),
        (
            "wrong-storage-key",
            "opened at another storage key (the custodian refuses the context)",
            blob,
            {"storage_key": base["storage_key"].replace("credentials/", "credentials/x")},
        ),
        ("wrong-wallet", "opened for another wallet", blob, {"wallet": OTHER_WALLET}),
        (
            "wrong-wallet-and-path",
            "moved to another wallet's path",
            blob,
            {
                "wallet": OTHER_WALLET,
                "storage_key": _storage_key(OTHER_WALLET, base["service"]),
            },
        ),
        ("wrong-service", "opened as another service", blob, {"service": base["service"] + "2"}),
        (
            "wrong-custodian-key",
            "the reader's custodian key under this id is a different key",
            blob,
            {"standin_keys": {base["kek_id"]: _det("wrong-standin", 32).hex()}},
        ),
        ("unknown-kek-id", "the reader has no key with this id", blob, {"standin_keys": {}}),
        (
            "local-kek-under-id",
            "the reader holds a local (suite 0x0001) KEK under this id, not a custodian",
            blob,
            {"standin_keys": {}, "keks": {base["kek_id"]: base["standin_key"]}},
        ),
    ]
    out: list[Vector] = []
    for suffix, description, mutated, overrides in cases:
        v: Vector = {
            "name": f"{base['name']}/{suffix}",
            "description": description,
            "wallet": base["wallet"],
            "service": base["service"],
            "storage_key": base["storage_key"],
            "standin_keys": standins,
            "blob": mutated.hex(),
            "error": "IntegrityError",
        }
        v.update(overrides)
        out.append(v)
    if declared:
        out.append(
            {
                "name": f"{base['name']}/above-reader-limit",
                "description": "intact blob whose payload exceeds the reader's max_payload",
                "wallet": base["wallet"],
                "service": base["service"],
                "storage_key": base["storage_key"],
                "standin_keys": standins,
                "blob": base["blob"],
                "max_payload": declared - 1,
                "error": "PayloadTooLarge",
            }
        )
    return out


def _kms_rewraps(positives: list[Vector]) -> list[Vector]:
    out = []
    for base in positives[:2]:
        new_kek_id, master = "kms.test-2", _det(f"{base['name']}|move-standin", 32)
        draws = [_det(f"{base['name']}|move-{k}", size) for k, size in _DRAWS]
        blob = envelope.rewrap(
            bytes.fromhex(base["blob"]),
            context=_context(base),
            resolve_kek=resolver({base["kek_id"]: base["kek"]}),
            new_kek=StandInKms(new_kek_id, master, rng=fixed_rng(*draws[:2])),
            rng=fixed_rng(draws[2]),
        )
        out.append(
            {
                "name": f"{base['name']}/custody-move-to-kms",
                "wallet": base["wallet"],
                "service": base["service"],
                "storage_key": base["storage_key"],
                "keks": {base["kek_id"]: base["kek"]},
                "source_blob": base["blob"],
                "new_kek_id": new_kek_id,
                "standin_key": master.hex(),
                **{k: d.hex() for (k, _), d in zip(_DRAWS, draws, strict=True)},
                "blob": blob.hex(),
            }
        )
    return out


_DRAWS = (("dek", 32), ("wrap_nonce", 12), ("payload_nonce", 12))


def _secret_keys() -> list[Vector]:
    cases = [
        ("root-1/v1", "root-1", WALLET, "openai", 1),
        ("root-1/v2", "root-1", WALLET, "openai", 2),
        ("root-1/v1/other-service", "root-1", WALLET, "github.com", 1),
        ("root-1/v1/other-wallet", "root-1", OTHER_WALLET, "openai", 1),
        ("root-1/v1/uppercase-wallet", "root-1", WALLET.upper().replace("0X", "0x"), "openai", 1),
        ("root-2/v1", "root-2", WALLET, "openai", 1),
        ("root-2/v4294967295", "root-2", WALLET, "Mail_Server-2", 2**32 - 1),
    ]
    out = []
    for name, root_label, wallet, service, version in cases:
        root = _det(root_label, 32)
        kek = SecretKeySource(root, version).current_kek(wallet, service)
        out.append(
            {
                "name": name,
                "root": root.hex(),
                "wallet": wallet,
                "service": service,
                "version": version,
                "kek_id": kek.kek_id,
                "kek": kek.key.hex(),
            }
        )
    return out


def _signers() -> list[Vector]:
    # Signatures come from the test signer (libsecp256k1, RFC 6979); generation needs the
    # dev extra. The master secret is included so the signatures themselves can be re-made.
    from .testing.signer_server import sign_deterministic, wallet_private_key

    master = _det("signer-master", 32)
    out = []
    for name, wallet, service in [
        ("openai", WALLET, "openai"),
        ("uppercase-wallet", WALLET.upper().replace("0X", "0x"), "openai"),
        ("other", OTHER_WALLET, "Mail_Server-2"),
    ]:
        omni = default_omni_account(wallet)
        message = kek_message(wallet, service)
        signature = sign_deterministic(wallet_private_key(master, bytes.fromhex(omni)), message)
        kek = kek_from_signature(signature)
        out.append(
            {
                "name": name,
                "master_secret": master.hex(),
                "wallet": wallet,
                "service": service,
                "omni_account": omni,
                "message_hex": message.hex(),
                "signature": signature.hex(),
                "kek": kek.hex(),
                "kek_id": signer_kek_id(kek),
            }
        )
    return out


def generate_vectors() -> dict[str, Any]:
    """The full vectors document, deterministically (same bytes on every run)."""
    positives = [_positive(*case) for case in _POSITIVE]
    negatives = [v for base in (positives[2], positives[0]) for v in _negatives(base)]
    kms_positives = [_kms_positive(*case) for case in _KMS_POSITIVE]
    return {
        "schema": SCHEMA,
        "description": (
            "Known-answer vectors for the portable-creds envelope v1 and key sources; "
            "see docs/format.md. All byte strings are lowercase hex."
        ),
        "envelope": positives,
        "envelope_negative": negatives,
        "rewrap": _rewraps(positives),
        "envelope_kms": kms_positives,
        "envelope_kms_negative": [
            v for base in (kms_positives[1], kms_positives[0]) for v in _kms_negatives(base)
        ],
        "rewrap_kms": _kms_rewraps(positives),
        "secret_key": _secret_keys(),
        "signer": _signers(),
    }


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, ensure_ascii=True) + "\n"
