"""The v1 envelope: known answers, tamper resistance, context binding, rewrap, limits.

Expected bytes are justified independently of ``portable_creds.envelope``: ``Ref`` below is a
second implementation of docs/format.md written with raw ``cryptography`` primitives (it does
not import the library's format code). The shipped vectors must agree with both.
"""

from __future__ import annotations

import hmac
import os
import struct
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portable_creds import envelope, vectors
from portable_creds.envelope import Context
from portable_creds.errors import ConfigurationError, IntegrityError, PayloadTooLarge
from portable_creds.keys import Kek

# ---------------------------------------------------------------------------------------------
# Independent reference implementation, from docs/format.md only.
# ---------------------------------------------------------------------------------------------


class RefFailure(Exception):
    """The reference implementation refuses the blob (it has no error hierarchy of its own)."""


class Ref:
    MAGIC = b"PCE"
    PREFIX = b"PCE" + b"\x01" + b"\x00\x01"
    DEK_INFO = bytes.fromhex("706f727461626c652d63726564732f76312064656b0001")

    @staticmethod
    def lp(x: bytes) -> bytes:
        return struct.pack(">H", len(x)) + x

    @classmethod
    def context(cls, wallet: str, service: str, storage_key: str) -> bytes:
        return cls.lp(wallet.encode()) + cls.lp(service.encode()) + cls.lp(storage_key.encode())

    @classmethod
    def okm(cls, dek: bytes) -> tuple[bytes, bytes]:
        okm = HKDF(hashes.SHA256(), 64, salt=b"\x00" * 32, info=cls.DEK_INFO).derive(dek)
        return okm[:32], okm[32:]

    @classmethod
    def seal(
        cls,
        plaintext: bytes,
        kek_id: str,
        kek: bytes,
        dek: bytes,
        wrap_nonce: bytes,
        payload_nonce: bytes,
        ctx: bytes,
    ) -> bytes:
        head = cls.PREFIX + bytes([len(kek_id)]) + kek_id.encode()
        wrapped = AESGCM(kek).encrypt(wrap_nonce, dek, head + ctx)
        content_key, commitment = cls.okm(dek)
        tail = commitment + payload_nonce + struct.pack(">I", len(plaintext))
        payload = AESGCM(content_key).encrypt(payload_nonce, plaintext, cls.PREFIX + tail + ctx)
        return head + wrap_nonce + wrapped + tail + payload

    @classmethod
    def parse(cls, blob: bytes, max_payload: int) -> dict[str, Any]:
        if len(blob) < 132 or blob[:6] != cls.PREFIX:
            raise RefFailure("IntegrityError")
        n = blob[6]
        if not 1 <= n <= 64 or len(blob) < 131 + n:
            raise RefFailure("IntegrityError")
        kek_id = blob[7 : 7 + n]
        if not all(0x21 <= b <= 0x7E for b in kek_id):
            raise RefFailure("IntegrityError")
        (length,) = struct.unpack(">I", blob[111 + n : 115 + n])
        if len(blob) != 131 + n + length:
            raise RefFailure("IntegrityError")
        if length > max_payload:
            raise RefFailure("PayloadTooLarge")
        return {"n": n, "kek_id": kek_id.decode(), "length": length}

    @classmethod
    def unwrap(cls, blob: bytes, h: dict[str, Any], keks: dict[str, bytes], ctx: bytes) -> bytes:
        n = h["n"]
        if h["kek_id"] not in keks:
            raise RefFailure("IntegrityError")
        try:
            dek = AESGCM(keks[h["kek_id"]]).decrypt(
                blob[7 + n : 19 + n], blob[19 + n : 67 + n], blob[: 7 + n] + ctx
            )
        except InvalidTag:
            raise RefFailure("IntegrityError") from None
        if not hmac.compare_digest(cls.okm(dek)[1], blob[67 + n : 99 + n]):
            raise RefFailure("IntegrityError")
        return dek

    @classmethod
    def open(
        cls, blob: bytes, keks: dict[str, bytes], ctx: bytes, max_payload: int = 1 << 20
    ) -> bytes:
        h = cls.parse(blob, max_payload)
        n = h["n"]
        content_key, _ = cls.okm(cls.unwrap(blob, h, keks, ctx))
        aad = blob[:6] + blob[67 + n : 115 + n] + ctx
        try:
            return AESGCM(content_key).decrypt(blob[99 + n : 111 + n], blob[115 + n :], aad)
        except InvalidTag:
            raise RefFailure("IntegrityError") from None

    @classmethod
    def rewrap(
        cls,
        blob: bytes,
        keks: dict[str, bytes],
        ctx: bytes,
        new_kek_id: str,
        new_kek: bytes,
        wrap_nonce: bytes,
    ) -> bytes:
        h = cls.parse(blob, 64 << 20)
        dek = cls.unwrap(blob, h, keks, ctx)
        head = cls.PREFIX + bytes([len(new_kek_id)]) + new_kek_id.encode()
        wrapped = AESGCM(new_kek).encrypt(wrap_nonce, dek, head + ctx)
        return head + wrap_nonce + wrapped + blob[67 + h["n"] :]


def _ctx_of(v: dict[str, Any]) -> bytes:
    return Ref.context(v["wallet"], v["service"], v["storage_key"])


def _keks(v: dict[str, Any]) -> dict[str, bytes]:
    return {k: bytes.fromhex(x) for k, x in v["keks"].items()}


# ---------------------------------------------------------------------------------------------
# Known-answer vectors
# ---------------------------------------------------------------------------------------------

DOC = vectors.load_vectors()


def _ids(group: str) -> list[str]:
    return [v["name"] for v in DOC[group]]


def test_vectors_cover_the_required_cases() -> None:
    sizes = {len(v["plaintext"]) // 2 for v in DOC["envelope"]}
    assert {0, 1, 16}.issubset(sizes) and max(sizes) > 4096
    id_lengths = {len(v["kek_id"]) for v in DOC["envelope"]}
    assert {1, 64}.issubset(id_lengths)
    names = {v["name"].split("/")[-1] for v in DOC["envelope_negative"]}
    for required in (
        "magic", "version-2", "suite-0002", "kek-id-len-0", "kek-id-len-65", "wrap-nonce",
        "wrapped-dek", "commitment", "payload-nonce", "payload-len-oversize", "payload-ct",
        "truncated-1", "extended-1", "wrong-storage-key", "wrong-wallet", "wrong-service",
        "wrong-kek", "above-reader-limit",
    ):  # fmt: skip
        assert required in names
    assert DOC["secret_key"] and DOC["signer"] and DOC["rewrap"]


@pytest.mark.parametrize("v", DOC["envelope"], ids=_ids("envelope"))
def test_reference_implementation_reproduces_positive_vector(v: dict[str, Any]) -> None:
    blob = Ref.seal(
        bytes.fromhex(v["plaintext"]),
        v["kek_id"],
        bytes.fromhex(v["kek"]),
        bytes.fromhex(v["dek"]),
        bytes.fromhex(v["wrap_nonce"]),
        bytes.fromhex(v["payload_nonce"]),
        _ctx_of(v),
    )
    assert blob.hex() == v["blob"]
    assert len(blob) == 131 + len(v["kek_id"]) + len(v["plaintext"]) // 2
    keks = {v["kek_id"]: bytes.fromhex(v["kek"])}
    assert Ref.open(blob, keks, _ctx_of(v)).hex() == v["plaintext"]


@pytest.mark.parametrize("v", DOC["envelope"], ids=_ids("envelope"))
def test_library_reproduces_positive_vector(v: dict[str, Any]) -> None:
    draws: list[int] = []
    chunks = [bytes.fromhex(v[k]) for k in ("dek", "wrap_nonce", "payload_nonce")]

    def rng(n: int) -> bytes:
        draws.append(n)
        return chunks[len(draws) - 1]

    ctx = Context(v["wallet"], v["service"], v["storage_key"])
    kek = Kek(v["kek_id"], bytes.fromhex(v["kek"]))
    assert (
        envelope.seal(bytes.fromhex(v["plaintext"]), kek=kek, context=ctx, rng=rng).hex()
        == (v["blob"])
    )
    assert draws == [32, 12, 12]  # draw order DEK, wrap nonce, payload nonce
    opened = envelope.open_blob(bytes.fromhex(v["blob"]), context=ctx, resolve_kek=lambda _id: kek)
    assert opened.hex() == v["plaintext"]
    vectors.check_envelope(v)  # the helper the conformance suite uses agrees too


@pytest.mark.parametrize("v", DOC["envelope_negative"], ids=_ids("envelope_negative"))
def test_negative_vector_fails_in_reference_and_library(v: dict[str, Any]) -> None:
    max_payload = v.get("max_payload", 1 << 20)
    with pytest.raises(RefFailure) as ref_exc:
        Ref.open(bytes.fromhex(v["blob"]), _keks(v), _ctx_of(v), max_payload)
    assert str(ref_exc.value) == v["error"]
    expected = {"IntegrityError": IntegrityError, "PayloadTooLarge": PayloadTooLarge}[v["error"]]
    with pytest.raises(expected) as exc:
        envelope.open_blob(
            bytes.fromhex(v["blob"]),
            context=Context(v["wallet"], v["service"], v["storage_key"]),
            resolve_kek=vectors.resolver(v["keks"]),
            max_payload=max_payload,
        )
    assert type(exc.value) is expected
    vectors.check_negative(v)


@pytest.mark.parametrize("v", DOC["rewrap"], ids=_ids("rewrap"))
def test_rewrap_vector(v: dict[str, Any]) -> None:
    expected = Ref.rewrap(
        bytes.fromhex(v["source_blob"]),
        _keks(v),
        _ctx_of(v),
        v["new_kek_id"],
        bytes.fromhex(v["new_kek"]),
        bytes.fromhex(v["wrap_nonce"]),
    )
    assert expected.hex() == v["blob"]
    vectors.check_rewrap(v)


def test_vectors_file_is_what_the_generator_writes() -> None:
    # Guards against a stale file; the independent checks above are what justify the bytes.
    assert vectors.generate_vectors() == DOC


def test_vector_check_helpers_detect_a_wrong_answer() -> None:
    v = dict(DOC["envelope"][2])
    v["blob"] = v["blob"][:-2] + ("00" if v["blob"][-2:] != "00" else "01")
    with pytest.raises(vectors.VectorMismatch):
        vectors.check_envelope(v)
    intact = dict(DOC["envelope_negative"][0], blob=DOC["envelope"][2]["blob"])
    intact["keks"] = {DOC["envelope"][2]["kek_id"]: DOC["envelope"][2]["kek"]}
    with pytest.raises(vectors.VectorMismatch):
        vectors.check_negative(intact)


# ---------------------------------------------------------------------------------------------
# Tamper resistance and context binding
# ---------------------------------------------------------------------------------------------

WALLET = "0x" + "1f" * 20
OTHER_WALLET = "0x" + "2e" * 20
KEK = Kek("kek-a", bytes(range(32)))
KEK_B = Kek("kek-b", bytes(range(32, 64)))


def ctx_for(wallet: str = WALLET, service: str = "openai") -> Context:
    return Context(wallet, service, f"bots/{wallet}/credentials/{service}.enc")


def resolve_only(*keks: Kek) -> Callable[[str], Kek]:
    table = {k.kek_id: k for k in keks}

    def resolve(kek_id: str) -> Kek:
        if kek_id not in table:
            raise IntegrityError()
        return table[kek_id]

    return resolve


def open_(blob: bytes, ctx: Context | None = None, *keks: Kek, **kw: Any) -> bytes:
    return envelope.open_blob(
        blob, context=ctx or ctx_for(), resolve_kek=resolve_only(*(keks or (KEK,))), **kw
    )


@pytest.fixture(scope="module")
def small_blob() -> bytes:
    return envelope.seal(b"s3cr3t", kek=KEK, context=ctx_for())


def test_round_trip_and_fresh_randomness(small_blob: bytes) -> None:
    assert open_(small_blob) == b"s3cr3t"
    again = envelope.seal(b"s3cr3t", kek=KEK, context=ctx_for())
    assert again != small_blob and open_(again) == b"s3cr3t"
    assert b"s3cr3t" not in small_blob


def test_every_bit_flip_fails(small_blob: bytes) -> None:
    messages = set()
    for i in range(len(small_blob)):
        for bit in range(8):
            mutated = bytearray(small_blob)
            mutated[i] ^= 1 << bit
            with pytest.raises(IntegrityError) as exc:
                open_(bytes(mutated))
            messages.add(str(exc.value))
    assert messages == {IntegrityError.DEFAULT_MESSAGE}  # no oracle: one message for all


def test_every_truncation_and_extension_fails(small_blob: bytes) -> None:
    for cut in range(len(small_blob)):
        with pytest.raises(IntegrityError):
            open_(small_blob[:cut])
    for extra in (b"\x00", b"\xff", os.urandom(16), small_blob):
        with pytest.raises(IntegrityError):
            open_(small_blob + extra)
        with pytest.raises(IntegrityError):
            open_(extra + small_blob)


@pytest.mark.parametrize(
    "ctx",
    [
        ctx_for(wallet=OTHER_WALLET),
        ctx_for(service="openai2"),
        ctx_for(service="OpenAI"),
        Context(WALLET, "openai", f"bots/{WALLET}/credentials/other.enc"),
        Context(WALLET, "openai", f"tenants/{WALLET}/credentials/openai.enc"),
        Context(OTHER_WALLET, "openai", f"bots/{WALLET}/credentials/openai.enc"),
        Context(WALLET, "github", f"bots/{WALLET}/credentials/openai.enc"),
    ],
    ids=["wallet+path", "service+path", "service-case", "path", "prefix", "wallet", "service"],
)
def test_moved_blob_fails(small_blob: bytes, ctx: Context) -> None:
    with pytest.raises(IntegrityError):
        open_(small_blob, ctx)


def test_context_encoding_is_unambiguous() -> None:
    a = Context("0xab", "cd", "k")
    b = Context("0xa", "bcd", "k")
    assert a.encode() != b.encode()
    blob = envelope.seal(b"x", kek=KEK, context=a)
    with pytest.raises(IntegrityError):
        open_(blob, b)


def test_wrong_or_unknown_kek_fails(small_blob: bytes) -> None:
    with pytest.raises(IntegrityError):
        open_(small_blob, None, Kek("kek-a", bytes(32)))  # same id, other key
    with pytest.raises(IntegrityError):
        open_(small_blob, None, KEK_B)  # id not resolvable
    with pytest.raises(IntegrityError):  # resolver returns a KEK with another id
        envelope.open_blob(small_blob, context=ctx_for(), resolve_kek=lambda _i: KEK_B)


def test_parse_header_reports_the_layout(small_blob: bytes) -> None:
    h = envelope.parse_header(small_blob)
    n = len("kek-a")
    assert (h.version, h.suite, h.kek_id, h.payload_len) == (1, 1, "kek-a", 6)
    assert h.wrap_nonce == small_blob[7 + n : 19 + n]
    assert h.commitment == small_blob[67 + n : 99 + n]
    assert h.header_len == 115 + n == len(small_blob) - 6 - 16


# ---------------------------------------------------------------------------------------------
# Rewrap
# ---------------------------------------------------------------------------------------------


def test_rewrap_keeps_payload_and_opens_under_new_kek_only(small_blob: bytes) -> None:
    new = envelope.rewrap(
        small_blob, context=ctx_for(), resolve_kek=resolve_only(KEK), new_kek=KEK_B
    )
    n_old, n_new = len(KEK.kek_id), len(KEK_B.kek_id)
    assert new[67 + n_new :] == small_blob[67 + n_old :]  # commitment..payload byte-identical
    assert new[7 : 7 + n_new] == b"kek-b"
    assert new[7 + n_new : 19 + n_new] != small_blob[7 + n_old : 19 + n_old]  # fresh nonce
    assert open_(new, None, KEK_B) == b"s3cr3t"
    with pytest.raises(IntegrityError):
        open_(new, None, KEK)
    with pytest.raises(IntegrityError):  # KEK_B's key under KEK's id does not help either
        open_(new, None, Kek("kek-a", KEK_B.key))
    with pytest.raises(IntegrityError):
        open_(new, ctx_for(service="github"), KEK_B)


def test_rewrap_refuses_what_would_not_open(small_blob: bytes) -> None:
    with pytest.raises(IntegrityError):
        envelope.rewrap(
            small_blob, context=ctx_for(), resolve_kek=resolve_only(KEK_B), new_kek=KEK_B
        )
    with pytest.raises(IntegrityError):
        envelope.rewrap(
            small_blob, context=ctx_for(OTHER_WALLET), resolve_kek=resolve_only(KEK), new_kek=KEK_B
        )
    n = len(KEK.kek_id)
    for offset in (67 + n, 99 + n, 115 + n, len(small_blob) - 1):  # commitment, nonce, ct, tag
        mutated = bytearray(small_blob)
        mutated[offset] ^= 1
        with pytest.raises(IntegrityError):
            envelope.rewrap(
                bytes(mutated), context=ctx_for(), resolve_kek=resolve_only(KEK), new_kek=KEK_B
            )


# ---------------------------------------------------------------------------------------------
# Payload limits
# ---------------------------------------------------------------------------------------------

MiB = 1 << 20


def test_default_limit_is_one_mib() -> None:
    blob = envelope.seal(b"\x5a" * MiB, kek=KEK, context=ctx_for())
    assert open_(blob) == b"\x5a" * MiB
    with pytest.raises(PayloadTooLarge, match="max_payload"):
        envelope.seal(b"\x5a" * (MiB + 1), kek=KEK, context=ctx_for())


def test_limit_is_configurable_up_to_64_mib() -> None:
    big = os.urandom(MiB + 1)
    blob = envelope.seal(big, kek=KEK, context=ctx_for(), max_payload=2 * MiB)
    assert open_(blob, None, KEK, max_payload=2 * MiB) == big
    with pytest.raises(PayloadTooLarge):  # intact, but above this reader's limit: said so
        open_(blob)
    assert envelope.check_max_payload(64 * MiB) == 64 * MiB
    for bad in (64 * MiB + 1, -1):
        with pytest.raises(PayloadTooLarge):
            envelope.seal(b"x", kek=KEK, context=ctx_for(), max_payload=bad)
        with pytest.raises(PayloadTooLarge):
            open_(blob, None, KEK, max_payload=bad)


def test_zero_limit_allows_only_empty() -> None:
    blob = envelope.seal(b"", kek=KEK, context=ctx_for(), max_payload=0)
    assert open_(blob, None, KEK, max_payload=0) == b""
    with pytest.raises(PayloadTooLarge):
        envelope.seal(b"x", kek=KEK, context=ctx_for(), max_payload=0)


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

services = st.from_regex(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,20}", fullmatch=True).filter(
    lambda s: ".." not in s
)
wallets = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plaintext=st.binary(max_size=2048), wallet=wallets, service=services)
def test_seal_open_round_trip(plaintext: bytes, wallet: str, service: str) -> None:
    ctx = ctx_for(wallet, service)
    blob = envelope.seal(plaintext, kek=KEK, context=ctx)
    assert len(blob) == 131 + len(KEK.kek_id) + len(plaintext)
    assert open_(blob, ctx) == plaintext


mutation = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 10_000), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 40)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plaintext=st.binary(max_size=300), edits=st.lists(mutation, min_size=1, max_size=3))
def test_open_returns_original_or_integrity_error(
    plaintext: bytes, edits: list[tuple[str, int, Any]]
) -> None:
    blob = envelope.seal(plaintext, kek=KEK, context=ctx_for())
    data = bytearray(blob)
    for kind, pos, arg in edits:
        pos %= len(data) + 1
        if kind == "set" and pos < len(data):
            data[pos] = arg
        elif kind == "insert":
            data[pos:pos] = arg
        elif kind == "delete":
            del data[pos : pos + arg]
        elif kind == "truncate":
            del data[pos:]
    try:
        result = open_(bytes(data))
    except IntegrityError:
        assert bytes(data) != blob
        return
    assert result == plaintext and bytes(data) == blob


def test_load_vectors_from_path_and_schema_check(tmp_path: Any) -> None:
    path = tmp_path / "v.json"
    path.write_text(vectors.dumps(DOC))
    assert vectors.load_vectors(path) == DOC
    path.write_text('{"schema": "something else"}')
    with pytest.raises(ConfigurationError, match="schema"):
        vectors.load_vectors(path)
