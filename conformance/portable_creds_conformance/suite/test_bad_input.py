"""bad-input: invalid wallets and names, traversal, oversize payloads.

Each must fail early with the documented error (``InvalidName``, ``PayloadTooLarge``) and write
nothing: the admin view's snapshot of the run prefix is compared before and after. The raw-key
cases go below the CredentialStore, straight to the driver, because a driver that resolves
``..`` or absolute paths (a filesystem, a database path) could escape its tenant or its root.
"""

from __future__ import annotations

import os

import pytest

from portable_creds import names
from portable_creds.errors import AccessDenied, InvalidName, NotFound, PayloadTooLarge

from ..groups import case
from ..run import ConformanceRun
from ._support import expect_error, key_of, secret, snapshot

BAD_WALLETS = [
    pytest.param("", id="empty"),
    pytest.param("0x", id="bare-0x"),
    pytest.param("0x" + "a" * 39, id="39-hex"),
    pytest.param("0x" + "a" * 41, id="41-hex"),
    pytest.param("0x" + "g" * 40, id="non-hex"),
    pytest.param("a" * 42, id="no-0x"),
    pytest.param("0X" + "a" * 40, id="upper-X"),
    pytest.param(" 0x" + "a" * 40, id="leading-space"),
    pytest.param("0x" + "a" * 40 + "\n", id="trailing-newline"),
    pytest.param("../0x" + "a" * 38, id="traversal"),
    pytest.param("0x" + "a" * 38 + "/b", id="slash"),
]

BAD_SERVICES = [
    pytest.param("", id="empty"),
    pytest.param(".", id="dot"),
    pytest.param("..", id="dotdot"),
    pytest.param(".hidden", id="leading-dot"),
    pytest.param("a..b", id="inner-dotdot"),
    pytest.param("a/b", id="slash"),
    pytest.param("../x", id="traversal"),
    pytest.param("../../0x" + "b" * 40 + "/credentials/x", id="traversal-to-tenant"),
    pytest.param("..\\x", id="backslash-traversal"),
    pytest.param("/etc/passwd", id="absolute"),
    pytest.param("x" * 65, id="65-chars"),
    pytest.param("a b", id="space"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a\n", id="newline"),
    pytest.param("ü", id="non-ascii"),
    pytest.param("a%2Fb", id="percent"),
    pytest.param("a:b", id="colon"),
    pytest.param("*", id="glob"),
]


@case("bad-input", "wallet")
@pytest.mark.parametrize("wallet", BAD_WALLETS)
def test_wallet(pc: ConformanceRun, wallet: str) -> None:
    before = snapshot(pc)
    expect_error(InvalidName, lambda: pc.harness.rebuild(pc.a, wallet=wallet), "invalid wallet")
    assert snapshot(pc) == before


@case("bad-input", "service")
@pytest.mark.parametrize("service", BAD_SERVICES)
def test_service(pc: ConformanceRun, service: str) -> None:
    pc.a.put("keep", b"v")
    before = snapshot(pc)
    exc = expect_error(InvalidName, lambda: pc.a.put(service, b"value"), "put, invalid name")
    assert str(exc), "InvalidName without a message"
    expect_error(InvalidName, lambda: pc.a.get(service), "get, invalid name")
    expect_error(InvalidName, lambda: pc.a.delete(service), "delete, invalid name")
    assert snapshot(pc) == before, "something was written or removed for an invalid name"


@case("bad-input", "oversize")
def test_oversize(pc: ConformanceRun) -> None:
    limit = pc.a.max_payload
    before = snapshot(pc)
    expect_error(PayloadTooLarge, lambda: pc.a.put("big", b"\x00" * (limit + 1)), "oversize put")
    assert snapshot(pc) == before
    small = pc.harness.rebuild(pc.a, max_payload=1024)
    expect_error(PayloadTooLarge, lambda: small.put("big", os.urandom(1025)), "1025 > 1024")
    assert snapshot(pc) == before
    value = os.urandom(1024)
    small.put("big", value)
    assert small.get("big").reveal() == value, "a payload of exactly the maximum must work"


@case("bad-input", "raw-key-traversal")
def test_raw_key_traversal(pc: ConformanceRun) -> None:
    """Traversal-shaped keys handed straight to A's ObjectStore: refused, or stored as the
    literal key - never resolved into B's objects or outside the store."""
    pc.b.put("victim", b"b's value")
    b_victim = key_of(pc.b, "victim")
    escape = pc.workdir / "escape"
    escape.mkdir()
    a_creds = pc.credentials_prefix(pc.a)
    b_rel = b_victim.split(f"{pc.prefix}/", 1)[1]  # "<B>/credentials/victim.enc"
    keys = [
        f"{a_creds}../../{b_rel}",
        f"{a_creds}./../../{b_rel}",
        f"{a_creds}" + "../" * 64 + str(escape / "deep.enc").lstrip("/"),
        str(escape / "absolute.enc"),
        f"{a_creds}..\\..\\{b_rel}",
    ]
    before = snapshot(pc)
    for key in keys:
        try:
            pc.a.objects.put(key, b"planted")
        except (InvalidName, AccessDenied):
            continue
        # Accepted: it must be an ordinary object at exactly that literal key.
        assert pc.a.objects.get(key).data == b"planted", f"{key!r} was stored elsewhere"
        pc.a.objects.delete(key)
        expect_error(NotFound, lambda k=key: pc.a.objects.head(k), f"{key!r} after delete")  # type: ignore[misc]
    assert not any(escape.iterdir()), "a raw key escaped the store onto the local filesystem"
    assert snapshot(pc) == before, "a traversal key changed another object"
    assert pc.b.get("victim").reveal() == b"b's value"


@case("bad-input", "raw-list-traversal")
def test_raw_list_traversal(pc: ConformanceRun) -> None:
    pc.b.put("victim", secret())
    a_creds = pc.credentials_prefix(pc.a)
    b_rel = names.credentials_prefix(pc.wallet_b, pc.prefix).split(f"{pc.prefix}/", 1)[1]
    for prefix in (f"{a_creds}../../{b_rel}", f"{a_creds}../../"):
        try:
            seen = [info.key for info in pc.a.objects.list(prefix)]
        except (InvalidName, AccessDenied):
            continue
        assert not seen, f"listing {prefix!r} returned {len(seen)} keys (expected none)"
