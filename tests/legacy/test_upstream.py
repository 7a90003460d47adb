"""portable_creds.upstream against blobs built from the documented format with a real signer KEK."""

from __future__ import annotations

from pathlib import Path

import pytest

from portable_creds import upstream
from portable_creds.errors import IntegrityError
from portable_creds.local import LocalObjectStore
from portable_creds.testing.signer_server import SignerServer

from .conftest import WALLET_A, WALLET_B
from .helpers import omni, signer_kek, upstream_v1, upstream_v2


@pytest.fixture(scope="module")
def signer() -> SignerServer:
    with SignerServer() as srv:
        yield srv  # type: ignore[misc]


def test_key_layouts_match_the_reference() -> None:
    assert upstream.actor_omni_hex(WALLET_A.upper().replace("0X", "0x")) == omni(WALLET_A)
    assert upstream.v1_key(WALLET_A, "openai") == f"bots/{WALLET_A}/credentials/openai.enc"
    assert upstream.v2_key(WALLET_A, "openai") == f"bots/{omni(WALLET_A)}/credentials/openai.enc"


@pytest.mark.parametrize("build", [upstream_v1, upstream_v2])
def test_open_blob_round_trip_and_binding(signer: SignerServer, build: object) -> None:
    kek = signer_kek(signer.url, WALLET_A, "openai")
    _, blob = build(kek, WALLET_A, "openai", b"sk-upstream")  # type: ignore[operator]
    assert upstream.open_blob(blob, kek=kek, wallet=WALLET_A, service="openai") == b"sk-upstream"
    # bound to wallet and service, by the AAD
    with pytest.raises(IntegrityError):
        upstream.open_blob(blob, kek=kek, wallet=WALLET_B, service="openai")
    with pytest.raises(IntegrityError):
        upstream.open_blob(blob, kek=kek, wallet=WALLET_A, service="other")
    # the KEK is per (wallet, service): another service's KEK fails
    with pytest.raises(IntegrityError):
        upstream.open_blob(
            blob, kek=signer_kek(signer.url, WALLET_A, "x"), wallet=WALLET_A, service="openai"
        )


def test_every_byte_flip_and_truncation_fails(signer: SignerServer) -> None:
    kek = signer_kek(signer.url, WALLET_A, "s")
    _, blob = upstream_v1(kek, WALLET_A, "s", b"abc")
    for i in range(len(blob)):
        bad = bytearray(blob)
        bad[i] ^= 0x01
        with pytest.raises(IntegrityError):
            upstream.open_blob(bytes(bad), kek=kek, wallet=WALLET_A, service="s")
    for n in range(len(blob)):
        with pytest.raises(IntegrityError):
            upstream.open_blob(blob[:n], kek=kek, wallet=WALLET_A, service="s")


def test_empty_secret_is_29_bytes_and_opens(signer: SignerServer) -> None:
    kek = signer_kek(signer.url, WALLET_A, "e")
    _, blob = upstream_v2(kek, WALLET_A, "e", b"")
    assert len(blob) == upstream.MIN_LEN == 29
    assert upstream.open_blob(blob, kek=kek, wallet=WALLET_A, service="e") == b""


def test_version_pinned_by_location(signer: SignerServer) -> None:
    kek = signer_kek(signer.url, WALLET_A, "s")
    _, blob = upstream_v1(kek, WALLET_A, "s", b"abc")
    with pytest.raises(IntegrityError):
        upstream.open_blob(blob, kek=kek, wallet=WALLET_A, service="s", expect=upstream.V2)


def test_discover_prefers_v2_and_skips_non_upstream(tmp_path: Path, signer: SignerServer) -> None:
    store = LocalObjectStore(tmp_path / "bucket")
    k1 = signer_kek(signer.url, WALLET_A, "both")
    k2 = signer_kek(signer.url, WALLET_A, "only-v1")
    for key, blob in (
        upstream_v1(k1, WALLET_A, "both", b"old"),
        upstream_v2(k1, WALLET_A, "both", b"new"),
        upstream_v1(k2, WALLET_A, "only-v1", b"one"),
    ):
        store.put(key, blob)
    store.put(
        f"bots/{WALLET_A}/credentials/ours.enc", b"PCE\x01not-upstream-at-all-xxxxxxxxxxxxxxxx"
    )
    found = list(upstream.discover(store, WALLET_A))
    assert [(o.service, o.version) for o in found] == [("both", 2), ("only-v1", 1)]
    kek = lambda w, s: signer_kek(signer.url, w, s)  # noqa: E731
    assert [upstream.read(store, o, kek) for o in found] == [b"new", b"one"]
    assert list(upstream.discover(store, WALLET_B)) == []
