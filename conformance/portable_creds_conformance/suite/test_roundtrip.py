"""roundtrip: what goes in comes out, byte for byte, for every size and every allowed name."""

from __future__ import annotations

import os

import pytest

from portable_creds import envelope
from portable_creds.errors import NotFound

from ..groups import case
from ..run import ConformanceRun
from ._support import expect_error, key_of, leaks, secret

SIZES = [
    pytest.param(0, id="0"),
    pytest.param(1, id="1"),
    pytest.param(1024, id="1KiB"),
    pytest.param(64 * 1024, id="64KiB"),
    pytest.param(-1, id="max"),
]

#: Every shape the name rules allow: single characters of each class, the longest name,
#: dots/dashes/underscores inside and at the end, case variants (distinct services), names
#: that look like layout parts.
NAME_SHAPES = [
    "a", "Z", "7", "_", "-", "a" * 64, "A.b", "a-b_c.d", "trailing.", "-leading", "_lead",
    "a.b.c", "_.-", "MiXeD", "mixed", "x.enc", "credentials", "0x" + "ab" * 20, "9" * 64,
]


@case("roundtrip", "size")
@pytest.mark.parametrize("size", SIZES)
def test_size(pc: ConformanceRun, size: int) -> None:
    n = pc.max_payload(pc.a) if size < 0 else size
    value = os.urandom(n)
    pc.a.put("sized", value, allow_empty=True)  # size 0: the empty secret round-trips too
    assert pc.a.get("sized").reveal() == value, f"{n}-byte secret did not round-trip"
    stored = pc.admin.get(key_of(pc.a, "sized")).data
    assert envelope.parse_header(stored).payload_len == n
    if n >= 16:
        assert value not in stored, "the stored object contains the plaintext"


@case("roundtrip", "binary")
def test_binary(pc: ConformanceRun) -> None:
    value = bytes(range(256)) * 4 + b"\x00\x00\xff\xfe\xc3\x28" + os.urandom(500)
    pc.a.put("binary", value)
    assert pc.a.get("binary").reveal() == value


@case("roundtrip", "text")
def test_text(pc: ConformanceRun) -> None:
    pc.a.put("text", "pässwörd ✓ \r\n\t")
    assert pc.a.get("text").reveal() == "pässwörd ✓ \r\n\t".encode()


@case("roundtrip", "name-shapes")
def test_name_shapes(pc: ConformanceRun) -> None:
    values = {name: secret(24) for name in NAME_SHAPES}
    for name, value in values.items():
        pc.a.put(name, value)
    assert pc.a.list() == sorted(NAME_SHAPES)
    for name, value in values.items():
        assert pc.a.get(name).reveal() == value, f"service {name!r} did not round-trip"
    stored = {info.key for info in pc.admin.list(pc.credentials_prefix(pc.a))}
    assert stored == {key_of(pc.a, name) for name in NAME_SHAPES}, "objects not at the layout keys"


@case("roundtrip", "overwrite")
def test_overwrite(pc: ConformanceRun) -> None:
    first, second = secret(), secret(100)
    pc.a.put("svc", first)
    pc.a.put("svc", second)
    assert pc.a.get("svc").reveal() == second
    assert pc.a.list() == ["svc"]
    assert [i.key for i in pc.admin.list(pc.credentials_prefix(pc.a))] == [key_of(pc.a, "svc")]


@case("roundtrip", "read-after-write")
def test_read_after_write(pc: ConformanceRun) -> None:
    other = pc.open_store(pc.wallet_a)
    try:
        for i in range(5):
            value = secret(32 + i)
            pc.a.put("raw", value)
            assert pc.a.get("raw").reveal() == value, "own handle read a stale value"
            assert other.get("raw").reveal() == value, "second handle read a stale value"
        other.delete("raw")
        expect_error(NotFound, lambda: pc.a.get("raw"), "read after another handle's delete")
    finally:
        other.close()


@case("roundtrip", "list-after-put-delete")
def test_list_after_put_delete(pc: ConformanceRun) -> None:
    assert pc.a.list() == []
    pc.a.put("y", b"1")
    pc.a.put("x", b"2")
    assert pc.a.list() == ["x", "y"]
    pc.a.delete("x")
    assert pc.a.list() == ["y"]
    pc.a.put("x", b"3")
    assert pc.a.list() == ["x", "y"]
    pc.a.delete("x")
    pc.a.delete("y")
    assert pc.a.list() == []


@case("roundtrip", "missing")
def test_missing(pc: ConformanceRun) -> None:
    expect_error(NotFound, lambda: pc.a.get("absent"), "get of an absent credential")
    expect_error(NotFound, lambda: pc.a.delete("absent"), "delete of an absent credential")
    pc.a.put("present", b"v")
    pc.a.delete("present")
    expect_error(NotFound, lambda: pc.a.get("present"), "get after delete")
    expect_error(NotFound, lambda: pc.a.delete("present"), "second delete")


@case("roundtrip", "wallet-case")
def test_wallet_case(pc: ConformanceRun) -> None:
    value = secret()
    pc.a.put("svc", value)
    shouting = pc.harness.rebuild(pc.a, wallet="0x" + pc.wallet_a[2:].upper())
    assert shouting.wallet == pc.wallet_a, "the wallet was not canonicalised to lower case"
    assert shouting.get("svc").reveal() == value
    assert shouting.list() == ["svc"]


@case("roundtrip", "no-plaintext-at-rest")
def test_no_plaintext_at_rest(pc: ConformanceRun) -> None:
    marker = b"CONFORMANCE-PLAINTEXT-MARKER-" + os.urandom(8).hex().encode()
    pc.a.put("marked", marker)
    stored = pc.admin.get(key_of(pc.a, "marked")).data
    assert not leaks(stored.decode("latin-1"), marker), "the stored object shows the plaintext"
