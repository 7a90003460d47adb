"""SignerKeySource against a real local HTTP signer with genuine secp256k1 signatures.

Expected KEKs are recomputed independently from the upstream description (reference §3-§4,
docs/format.md §10.2): the wallet key with raw HKDF, the EIP-191 digest with keccak256, the
RFC 6979 nonce and the ECDSA arithmetic in this file (point multiplication via the
``cryptography`` package, not the signer's libsecp256k1), then SHA256 of the signature.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from Crypto.Hash import keccak
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from portable_creds import envelope, vectors
from portable_creds.envelope import Context
from portable_creds.errors import (
    ConfigurationError,
    CredentialsError,
    IntegrityError,
    KeySourceError,
    RemoteUnavailable,
    UnstableKeyError,
)
from portable_creds.local import LocalObjectStore
from portable_creds.signer import (
    MalformedSignerResponse,
    SignerError,
    SignerInternalError,
    SignerKeySource,
    SignerRejectedRequest,
    SignerUnauthorized,
    SignerUnavailable,
)
from portable_creds.store import CredentialStore
from portable_creds.testing import SignerServer

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
MASTER = bytes.fromhex("11" * 32)
WALLET = "0x8Ba1f109551bD432803012645Ac136ddd64DBA72"
WL = WALLET.lower()

# ---------------------------------------------------------------------------------------------
# Independent reference of the upstream signer and KEK derivation
# ---------------------------------------------------------------------------------------------


def k256(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def ref_omni(wallet: str) -> str:
    return hashlib.sha256(b"agentkeysevm" + wallet.lower().encode()).hexdigest()


def ref_wallet_key(master: bytes, omni_hex: str) -> int:
    info = b"\x01agentkeys-evm-wallet" + bytes.fromhex(omni_hex)
    d = int.from_bytes(
        HKDF(hashes.SHA256(), 32, salt=b"agentkeys-signer-v0", info=info).derive(master), "big"
    )
    assert 0 < d < N  # the retry path has probability ~2^-128
    return d


def ref_point(k: int) -> tuple[int, int]:
    numbers = ec.derive_private_key(k, ec.SECP256K1()).public_key().public_numbers()
    return numbers.x, numbers.y


def rfc6979_k(d: int, digest: bytes) -> int:
    x = d.to_bytes(32, "big")
    h = (int.from_bytes(digest, "big") % N).to_bytes(32, "big")
    v, key = b"\x01" * 32, b"\x00" * 32
    key = hmac.new(key, v + b"\x00" + x + h, hashlib.sha256).digest()
    v = hmac.new(key, v, hashlib.sha256).digest()
    key = hmac.new(key, v + b"\x01" + x + h, hashlib.sha256).digest()
    v = hmac.new(key, v, hashlib.sha256).digest()
    while True:
        v = hmac.new(key, v, hashlib.sha256).digest()
        k = int.from_bytes(v, "big")
        if 1 <= k < N:
            return k
        key = hmac.new(key, v + b"\x00", hashlib.sha256).digest()
        v = hmac.new(key, v, hashlib.sha256).digest()


def eip191(message: bytes) -> bytes:
    return k256(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message)


def ref_sign(master: bytes, omni_hex: str, message: bytes) -> bytes:
    d = ref_wallet_key(master, omni_hex)
    digest = eip191(message)
    k = rfc6979_k(d, digest)
    rx, ry = ref_point(k)
    r = rx % N
    s = pow(k, -1, N) * (int.from_bytes(digest, "big") + r * d) % N
    v = ry & 1
    if s > N // 2:
        s, v = N - s, v ^ 1
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])


def ref_kek(master: bytes, wallet: str, service: str, omni_hex: str | None = None) -> bytes:
    message = f"agentkeys.kek.v1:{wallet.lower()}:{service}".encode()
    sig = ref_sign(master, omni_hex or ref_omni(wallet), message)
    return hashlib.sha256(b"agentkeys.kek-derive.v1" + sig).digest()


def ref_kek_id(kek: bytes) -> str:
    kcv = hmac.new(kek, b"portable-creds/v1 signer key check", hashlib.sha256).digest()[:8]
    return "signer.v1." + kcv.hex()


def verifies(master: bytes, omni_hex: str, message: bytes, sig: bytes) -> bool:
    public = ec.derive_private_key(ref_wallet_key(master, omni_hex), ec.SECP256K1()).public_key()
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"))
    try:
        public.verify(der, eip191(message), ec.ECDSA(Prehashed(hashes.SHA256())))
    except Exception:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def signer() -> Iterator[SignerServer]:
    with SignerServer(MASTER) as server:
        yield server


def ctx(service: str = "openai") -> Context:
    return Context(WL, service, f"bots/{WL}/credentials/{service}.enc")


def seal_with(ks: SignerKeySource, plaintext: bytes, service: str = "openai") -> bytes:
    return envelope.seal(plaintext, kek=ks.current_kek(WL, service), context=ctx(service))


def open_with(ks: SignerKeySource, blob: bytes, service: str = "openai") -> bytes:
    return envelope.open_blob(
        blob, context=ctx(service), resolve_kek=lambda i: ks.kek_for_id(WL, service, i)
    )


def post(url: str, doc: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(
        url, data=json.dumps(doc).encode(), headers=headers or {}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


# ---------------------------------------------------------------------------------------------
# Bit-compatibility with upstream
# ---------------------------------------------------------------------------------------------


def test_kek_is_upstreams(signer: SignerServer) -> None:
    ks = SignerKeySource(signer.url)
    kek = ks.current_kek(WALLET, "openai")
    expected = ref_kek(MASTER, WALLET, "openai")
    assert kek.key == expected and kek.kek_id == ref_kek_id(expected)
    assert ks.upstream_kek(WALLET, "openai") == expected
    assert ks.current_kek(WL, "openai") == kek  # wallet case does not matter
    assert ks.current_kek(WL, "OpenAI").key == ref_kek(MASTER, WALLET, "OpenAI") != expected


def test_signature_is_rfc6979_eip191_low_s(signer: SignerServer) -> None:
    ks = SignerKeySource(signer.url)
    omni = ref_omni(WALLET)
    for message in (b"", b"agentkeys.kek.v1:x:y", bytes(range(256)) * 3):
        sig = ks.sign(omni, message)
        assert sig == ref_sign(MASTER, omni, message)
        assert int.from_bytes(sig[32:64], "big") <= N // 2 and sig[64] in (0, 1)
        assert verifies(MASTER, omni, message, sig)


def test_derive_address_matches_the_signing_key(signer: SignerServer) -> None:
    omni = ref_omni(WALLET)
    status, doc = post(signer.url + "/dev/derive-address", {"omni_account": omni})
    x, y = ref_point(ref_wallet_key(MASTER, omni))
    expected = "0x" + k256(x.to_bytes(32, "big") + y.to_bytes(32, "big"))[-20:].hex()
    assert (status, doc) == (200, {"address": expected, "key_version": 1})
    status, doc = post(
        signer.url + "/dev/sign-message", {"omni_account": omni, "message_hex": "00ff"}
    )
    assert status == 200 and doc["address"] == expected and doc["signature"].startswith("0x")
    assert bytes.fromhex(doc["signature"][2:]) == ref_sign(MASTER, omni, b"\x00\xff")


@pytest.mark.parametrize("v", vectors.load_vectors()["signer"], ids=lambda v: v["name"])
def test_signer_vectors(v: dict[str, Any]) -> None:
    master = bytes.fromhex(v["master_secret"])
    assert ref_omni(v["wallet"]) == v["omni_account"]
    assert (
        f"agentkeys.kek.v1:{v['wallet'].lower()}:{v['service']}".encode().hex()
        == (v["message_hex"])
    )
    assert (
        ref_sign(master, v["omni_account"], bytes.fromhex(v["message_hex"])).hex()
        == (v["signature"])
    )
    assert ref_kek(master, v["wallet"], v["service"]).hex() == v["kek"]
    assert ref_kek_id(bytes.fromhex(v["kek"])) == v["kek_id"]
    with SignerServer(master) as server:
        kek = SignerKeySource(server.url).current_kek(v["wallet"], v["service"])
    assert (kek.key.hex(), kek.kek_id) == (v["kek"], v["kek_id"])
    vectors.check_signer(v)


def test_explicit_omni_account(signer: SignerServer) -> None:
    omni = "ab" * 32
    ks = SignerKeySource(signer.url, omni_account=omni.upper())
    assert ks.current_kek(WALLET, "openai").key == ref_kek(MASTER, WALLET, "openai", omni)
    assert ks.current_kek(WALLET, "openai").key != ref_kek(MASTER, WALLET, "openai")


# ---------------------------------------------------------------------------------------------
# Stability: derive twice to seal, key-check value to open
# ---------------------------------------------------------------------------------------------


def test_seal_derives_twice_then_caches(signer: SignerServer) -> None:
    ks = SignerKeySource(signer.url)
    ks.current_kek(WL, "openai")
    assert signer.sign_requests == 2
    ks.current_kek(WL, "openai")
    assert signer.sign_requests == 2
    uncached = SignerKeySource(signer.url, cache=False)
    uncached.current_kek(WL, "openai")
    uncached.current_kek(WL, "openai")
    assert signer.sign_requests == 6


def test_round_trip_through_a_fresh_source(signer: SignerServer) -> None:
    blob = seal_with(SignerKeySource(signer.url), b"api-key-123")
    before = signer.sign_requests
    assert open_with(SignerKeySource(signer.url), blob) == b"api-key-123"
    assert signer.sign_requests == before + 1  # one derivation, checked by the KEK id


def test_changed_signer_key_is_detected(signer: SignerServer) -> None:
    blob = seal_with(SignerKeySource(signer.url), b"api-key-123")
    signer.master_secret = bytes.fromhex("22" * 32)  # the signer's key changed
    with pytest.raises(IntegrityError):
        open_with(SignerKeySource(signer.url), blob)


def test_unstable_signer_produces_valid_but_different_signatures() -> None:
    with SignerServer(MASTER, unstable=True) as server:
        ks = SignerKeySource(server.url)
        omni = ref_omni(WALLET)
        sigs = {ks.sign(omni, b"same message") for _ in range(3)}
    assert len(sigs) == 3
    assert all(verifies(MASTER, omni, b"same message", s) for s in sigs)
    assert all(int.from_bytes(s[32:64], "big") <= N // 2 and s[64] in (0, 1) for s in sigs)


def test_unstable_signer_refuses_to_seal(tmp_path: Path) -> None:
    with SignerServer(MASTER, unstable=True) as server:
        ks = SignerKeySource(server.url)
        with pytest.raises(UnstableKeyError, match="different signatures"):
            ks.current_kek(WL, "openai")
        with pytest.raises(UnstableKeyError):
            ks.upstream_kek(WL, "openai")
        store = CredentialStore(LocalObjectStore(tmp_path / "data", wallet=WL), ks, WL)
        with pytest.raises(UnstableKeyError):
            store.put("openai", b"secret")
        assert store.list() == []  # nothing unreadable was written
        assert not any(p.is_file() and p.stat().st_size for p in tmp_path.rglob("*.enc"))


def test_signer_turning_unstable_fails_loudly_on_read(signer: SignerServer) -> None:
    blob = seal_with(SignerKeySource(signer.url), b"api-key-123")
    signer.unstable = True
    with pytest.raises(UnstableKeyError, match="different signature"):
        open_with(SignerKeySource(signer.url), blob)


# ---------------------------------------------------------------------------------------------
# Documented errors
# ---------------------------------------------------------------------------------------------


def test_bearer_token(signer: SignerServer) -> None:
    signer.token = "tok-s3cr3t-value"
    with pytest.raises(SignerUnauthorized) as exc:
        SignerKeySource(signer.url).current_kek(WL, "openai")
    assert isinstance(exc.value, CredentialsError) and exc.value.code == "unauthorized"
    with pytest.raises(SignerUnauthorized) as exc:
        SignerKeySource(signer.url, token="wrong-token").current_kek(WL, "openai")
    assert "wrong-token" not in str(exc.value)
    good = SignerKeySource(signer.url, token="tok-s3cr3t-value")
    assert "tok-s3cr3t-value" not in repr(good)
    assert good.current_kek(WL, "openai").key == ref_kek(MASTER, WL, "openai")
    calls: list[int] = []

    def provider() -> str:
        calls.append(1)
        return "tok-s3cr3t-value"

    with_provider = SignerKeySource(signer.url, token=provider)
    assert with_provider.current_kek(WL, "openai").key == ref_kek(MASTER, WL, "openai")
    assert len(calls) == 2  # asked per request: expiring session tokens can be refreshed


def test_disabled_signer(signer: SignerServer) -> None:
    signer.disabled = True
    with pytest.raises(SignerUnavailable) as exc:
        SignerKeySource(signer.url).current_kek(WL, "openai")
    assert isinstance(exc.value, RemoteUnavailable)
    assert (exc.value.status, exc.value.code) == (503, "signer_disabled")


def test_internal_error(signer: SignerServer) -> None:
    signer.fail_internal = True
    with pytest.raises(SignerInternalError) as exc:
        SignerKeySource(signer.url).current_kek(WL, "openai")
    assert isinstance(exc.value, KeySourceError)
    assert (exc.value.status, exc.value.code) == (500, "internal")


def test_invalid_omni_account(signer: SignerServer) -> None:
    ks = SignerKeySource(signer.url)
    for omni in ("zz" * 32, "ab" * 31, ""):
        with pytest.raises(SignerRejectedRequest, match="omni account") as exc:
            ks.sign(omni, b"msg")
        assert (exc.value.status, exc.value.code) == (400, "invalid_omni_account")


def test_invalid_message_hex(signer: SignerServer) -> None:
    # The double validates like upstream does...
    status, doc = post(
        signer.url + "/dev/sign-message", {"omni_account": "ab" * 32, "message_hex": "xyz"}
    )
    assert (status, doc["error"]) == (400, "invalid_message_hex")
    # ...and this client never sends bad hex, so the error is forced to check its mapping.
    signer.force_error = (400, "invalid_message_hex")
    with pytest.raises(SignerRejectedRequest) as exc:
        SignerKeySource(signer.url).current_kek(WL, "openai")
    assert (exc.value.status, exc.value.code) == (400, "invalid_message_hex")
    assert isinstance(exc.value, KeySourceError)


def test_unreachable_signer() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"  # nothing listens here any more
    with pytest.raises(SignerUnavailable, match="cannot reach") as exc:
        SignerKeySource(url, timeout=2).current_kek(WL, "openai")
    assert isinstance(exc.value, RemoteUnavailable) and url in str(exc.value)


@pytest.mark.parametrize("mode", ["not-json", "no-signature", "short-signature", "not-hex"])
def test_malformed_responses(signer: SignerServer, mode: str) -> None:
    signer.malformed = mode
    with pytest.raises(MalformedSignerResponse) as exc:
        SignerKeySource(signer.url).current_kek(WL, "openai")
    assert isinstance(exc.value, KeySourceError)


def test_wrong_url_path(signer: SignerServer) -> None:
    with pytest.raises(SignerError) as exc:
        SignerKeySource(signer.url + "/api").current_kek(WL, "openai")
    assert exc.value.status == 404 and "check the URL" in str(exc.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"url": "ftp://host/"},
        {"url": "file:///etc/passwd"},
        {"url": "localhost:8090"},
        {"url": "http://127.0.0.1:1", "omni_account": "xyz"},
        {"url": "http://127.0.0.1:1", "omni_account": "ab" * 33},
    ],
)
def test_configuration_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        SignerKeySource(**kwargs)


def test_kek_for_malformed_id_is_integrity_error_without_calling(signer: SignerServer) -> None:
    ks = SignerKeySource(signer.url)
    for kek_id in ("sk.v1.0011223344556677", "signer.v1.XYZ", "signer.v2.0011223344556677"):
        with pytest.raises(IntegrityError):
            ks.kek_for_id(WL, "openai", kek_id)
    assert signer.sign_requests == 0


def test_from_env(signer: SignerServer) -> None:
    ks = SignerKeySource.from_env({"AGENTKEYS_SIGNER_URL": signer.url})
    assert ks.current_kek(WL, "openai").key == ref_kek(MASTER, WL, "openai")
    omni = "cd" * 32
    ks = SignerKeySource.from_env(
        {"AGENTKEYS_SIGNER_URL": signer.url, "AGENTKEYS_OMNI_ACCOUNT": omni}
    )
    assert ks.current_kek(WL, "openai").key == ref_kek(MASTER, WL, "openai", omni)
    with pytest.raises(ConfigurationError, match="AGENTKEYS_SIGNER_URL"):
        SignerKeySource.from_env({})


def test_signer_server_command_line(tmp_path: Path) -> None:
    """Users can start the test signer by hand; it speaks the same protocol."""
    import subprocess
    import sys

    secret_file = tmp_path / "master.hex"
    secret_file.write_text(MASTER.hex() + "\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "portable_creds.testing.signer_server", "--port", "0",
         "--token", "cli-token", "--master-secret-file", str(secret_file)],
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        url = line.split(" on ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        ks = SignerKeySource(url, token="cli-token")
        assert ks.current_kek(WL, "openai").key == ref_kek(MASTER, WL, "openai")
        with pytest.raises(SignerUnauthorized):
            SignerKeySource(url).current_kek(WL, "github")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()
