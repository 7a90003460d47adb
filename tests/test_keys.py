"""Kek / KeySource basics and SecretKeySource: derivation, KEK ids, rotation, root-secret files.

The derivation is checked against the shipped vectors *and* an independent computation from
docs/format.md §10.1 with raw HKDF/HMAC, so the expected KEKs are not the code's own output.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from portable_creds import envelope, vectors
from portable_creds.envelope import Context
from portable_creds.errors import ConfigurationError, IntegrityError
from portable_creds.keys import Kek
from portable_creds.secret_key import SecretKeySource

WALLET = "0x" + "5c" * 20
ROOT = bytes(range(1, 33))  # fingerprint contains hex letters (the uppercase case)
DOC = vectors.load_vectors()


def ref_fingerprint(root: bytes) -> str:
    return hmac.new(root, b"portable-creds/v1 root fingerprint", hashlib.sha256).digest()[:8].hex()


def ref_kek(root: bytes, wallet: str, service: str, version: int) -> bytes:
    w, s = wallet.lower().encode(), service.encode()
    info = (
        b"portable-creds/v1 secret-key kek"
        + struct.pack(">I", version)
        + struct.pack(">H", len(w)) + w
        + struct.pack(">H", len(s)) + s
    )  # fmt: skip
    hkdf = HKDF(hashes.SHA256(), 32, salt=b"portable-creds/v1 secret-key source", info=info)
    return hkdf.derive(root)


# -- Kek ------------------------------------------------------------------------------------


def test_kek_validates_and_masks() -> None:
    k = Kek("id-1", b"\x42" * 32)
    assert "42" * 4 not in repr(k) and "id-1" in repr(k)
    for bad_id in ("", "a" * 65, "has space", "tab\t", "é-key", "kek-\u2713"):
        with pytest.raises(ValueError):
            Kek(bad_id, bytes(32))
    with pytest.raises(ValueError):
        Kek("id", bytes(31))


# -- derivation -----------------------------------------------------------------------------


@pytest.mark.parametrize("v", DOC["secret_key"], ids=[v["name"] for v in DOC["secret_key"]])
def test_secret_key_vectors(v: dict[str, Any]) -> None:
    root = bytes.fromhex(v["root"])
    assert v["kek"] == ref_kek(root, v["wallet"], v["service"], v["version"]).hex()
    assert v["kek_id"] == f"sk.v{v['version']}.{ref_fingerprint(root)}"
    vectors.check_secret_key(v)


def test_kek_depends_on_every_input() -> None:
    base = SecretKeySource(ROOT).current_kek(WALLET, "openai")
    assert base.key == ref_kek(ROOT, WALLET, "openai", 1)
    others = [
        SecretKeySource(ROOT).current_kek("0x" + "5d" * 20, "openai"),
        SecretKeySource(ROOT).current_kek(WALLET, "openai2"),
        SecretKeySource(ROOT).current_kek(WALLET, "OpenAI"),
        SecretKeySource(ROOT, 2).current_kek(WALLET, "openai"),
        SecretKeySource(bytes(32)).current_kek(WALLET, "openai"),
    ]
    assert len({base.key, *(k.key for k in others)}) == 6
    upper = SecretKeySource(ROOT).current_kek(WALLET.upper().replace("0X", "0x"), "openai")
    assert upper == base  # the wallet is canonicalised (lowercased) in the derivation


def test_kek_id_syntax_and_fingerprint() -> None:
    src = SecretKeySource(ROOT, 7)
    kek = src.current_kek(WALLET, "openai")
    assert kek.kek_id == f"sk.v7.{ref_fingerprint(ROOT)}"
    assert src.kek_for_id(WALLET, "openai", kek.kek_id) == kek
    assert SecretKeySource(bytes(32), 7).current_kek(WALLET, "openai").kek_id != kek.kek_id


@pytest.mark.parametrize(
    "kek_id",
    [
        "sk.v1.0000000000000000",  # another root's fingerprint
        "sk.v2.{fp}",  # a future version
        "sk.v0.{fp}",
        "sk.v01.{fp}",  # leading zero: not the canonical id
        "sk.v1.{FP}",  # uppercase hex
        "sk.v1.{fp}0",
        "sk.v99999999999.{fp}",
        "signer.v1.{fp}",
        "other",
    ],
)
def test_kek_for_unknown_ids_is_integrity_error(kek_id: str) -> None:
    fp = ref_fingerprint(ROOT)
    assert fp != fp.upper()
    with pytest.raises(IntegrityError):
        SecretKeySource(ROOT).kek_for_id(WALLET, "s", kek_id.format(fp=fp, FP=fp.upper()))


def test_blob_sealed_under_another_root_does_not_open() -> None:
    ctx = Context(WALLET, "openai", f"bots/{WALLET}/credentials/openai.enc")
    a, b = SecretKeySource(ROOT), SecretKeySource(os.urandom(32))
    blob = envelope.seal(b"x", kek=a.current_kek(WALLET, "openai"), context=ctx)
    with pytest.raises(IntegrityError):
        envelope.open_blob(
            blob, context=ctx, resolve_kek=lambda i: b.kek_for_id(WALLET, "openai", i)
        )


# -- rotation -------------------------------------------------------------------------------


def test_rotation_with_rewrap() -> None:
    ctx = Context(WALLET, "openai", f"bots/{WALLET}/credentials/openai.enc")
    v1 = SecretKeySource(ROOT, 1)
    blob = envelope.seal(b"token", kek=v1.current_kek(WALLET, "openai"), context=ctx)

    def opener(src: SecretKeySource, data: bytes) -> bytes:
        return envelope.open_blob(
            data, context=ctx, resolve_kek=lambda i: src.kek_for_id(WALLET, "openai", i)
        )

    v2 = SecretKeySource(ROOT, 2)  # default: accepts 1..2
    assert v2.accepts(1) and v2.accepts(2) and not v2.accepts(3)
    assert opener(v2, blob) == b"token"
    new = envelope.rewrap(
        blob,
        context=ctx,
        resolve_kek=lambda i: v2.kek_for_id(WALLET, "openai", i),
        new_kek=v2.current_kek(WALLET, "openai"),
    )
    assert envelope.parse_header(new).kek_id.startswith("sk.v2.")
    strict = SecretKeySource(ROOT, 2, accept_versions=())
    assert opener(strict, new) == b"token"
    with pytest.raises(IntegrityError):
        opener(strict, blob)  # retired version refused
    with pytest.raises(IntegrityError):
        opener(v1, new)  # an old client does not know version 2
    only3 = SecretKeySource(ROOT, 5, accept_versions=[3])
    assert only3.accepts(3) and only3.accepts(5) and not only3.accepts(4)


@pytest.mark.parametrize("version", [0, -1, 2**32, True, 1.0])
def test_bad_versions_rejected(version: Any) -> None:
    with pytest.raises(ConfigurationError):
        SecretKeySource(ROOT, version)
    with pytest.raises(ConfigurationError):
        SecretKeySource(ROOT, 1, accept_versions=[version])


@pytest.mark.parametrize("root", [b"", bytes(31), bytes(33), "0" * 64])
def test_root_must_be_32_bytes(root: Any) -> None:
    with pytest.raises(ConfigurationError):
        SecretKeySource(root)


def test_repr_hides_the_root() -> None:
    text = repr(SecretKeySource(ROOT, 3))
    assert ROOT.hex() not in text and ROOT.hex()[:16] not in text
    assert ref_fingerprint(ROOT) in text and "version=3" in text


# -- root secret files and environment --------------------------------------------------------


def _write(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


def test_from_file_raw_and_hex(tmp_path: Path) -> None:
    fp = ref_fingerprint(ROOT)
    assert SecretKeySource.from_file(_write(tmp_path / "raw", ROOT)).fingerprint == fp
    hexed = _write(tmp_path / "hex", b"  " + ROOT.hex().upper().encode() + b"\n")
    src = SecretKeySource.from_file(hexed, 2, accept_versions=())
    assert src.fingerprint == fp and src.version == 2 and not src.accepts(1)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o644])
def test_from_file_refuses_group_or_other_access(tmp_path: Path, mode: int) -> None:
    path = _write(tmp_path / "root", ROOT.hex().encode(), mode)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        SecretKeySource.from_file(path)


@pytest.mark.parametrize(
    "content", [b"", b"short", bytes(31), bytes(33), b"zz" * 32, b"00" * 31, b"00" * 33]
)
def test_from_file_rejects_bad_content(tmp_path: Path, content: bytes) -> None:
    path = _write(tmp_path / "root", content)
    with pytest.raises(ConfigurationError, match="64 hex") as exc:
        SecretKeySource.from_file(path)
    assert content.hex() not in str(exc.value) or not content


def test_from_file_missing_or_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        SecretKeySource.from_file(tmp_path / "nope")
    d = tmp_path / "dir"
    d.mkdir(mode=0o700)
    with pytest.raises(ConfigurationError):
        SecretKeySource.from_file(d)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_create_file_writes_0600_create_only(tmp_path: Path) -> None:
    path = tmp_path / "new" / "deeper" / "root.key"
    created = SecretKeySource.create_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    content = path.read_bytes()
    assert len(content) == 65 and content.endswith(b"\n")
    assert SecretKeySource.from_file(path).fingerprint == created.fingerprint
    assert ref_fingerprint(bytes.fromhex(content.decode())) == created.fingerprint
    with pytest.raises(ConfigurationError, match="already exists"):
        SecretKeySource.create_file(path)
    assert path.read_bytes() == content  # never overwritten
    assert [p.name for p in path.parent.iterdir()] == ["root.key"]  # no temp file left
    assert SecretKeySource.create_file(tmp_path / "other").fingerprint != created.fingerprint


def test_load_or_create(tmp_path: Path) -> None:
    path = tmp_path / "root.key"
    first, created = SecretKeySource.load_or_create(path)
    again, created_again = SecretKeySource.load_or_create(path, 2)
    assert (created, created_again) == (True, False)
    assert first.fingerprint == again.fingerprint and again.version == 2


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PC_TEST_ROOT", ROOT.hex())
    assert SecretKeySource.from_env("PC_TEST_ROOT").fingerprint == ref_fingerprint(ROOT)
    monkeypatch.setenv("PC_TEST_ROOT", "not hex")
    with pytest.raises(ConfigurationError, match="PC_TEST_ROOT"):
        SecretKeySource.from_env("PC_TEST_ROOT")
    monkeypatch.delenv("PC_TEST_ROOT")
    with pytest.raises(ConfigurationError, match="not set"):
        SecretKeySource.from_env("PC_TEST_ROOT")
