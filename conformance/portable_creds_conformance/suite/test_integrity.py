"""integrity: every corruption of a stored blob is detected, with one error type.

The admin view replaces tenant A's stored blob with a corrupted copy, then A reads it. Every
read must raise ``IntegrityError`` (never another type, never data). The ``intact`` control
plants the untouched bytes the same way and must read fine, so a failure elsewhere means the
corruption was detected, not that planting itself is broken.
"""

from __future__ import annotations

import os

import pytest

from ..groups import case
from ..run import ConformanceRun
from ._support import expect_integrity_error, header_fields, key_of, secret

FIELDS = [
    "magic", "version", "suite", "kek-id-length", "kek-id", "wrap-nonce", "wrapped-dek",
    "commitment", "payload-nonce", "payload-length", "ciphertext", "tag",
]


def _stored(pc: ConformanceRun) -> tuple[bytes, bytes]:
    value = secret(40)
    pc.a.put("svc", value)
    return value, pc.admin.get(key_of(pc.a, "svc")).data


def _plant(pc: ConformanceRun, data: bytes) -> None:
    pc.admin.put(key_of(pc.a, "svc"), data)


@case("integrity", "intact")
def test_intact(pc: ConformanceRun) -> None:
    value, blob = _stored(pc)
    _plant(pc, bytes(blob))
    assert pc.a.get("svc").reveal() == value


@case("integrity", "bit-flip")
@pytest.mark.parametrize("field", FIELDS)
def test_bit_flip(pc: ConformanceRun, field: str) -> None:
    """Flip the low bit of every byte of the field, and the high bit of its first byte."""
    value, blob = _stored(pc)
    offset, length = header_fields(blob)[field]
    flips = [(i, 0x01) for i in range(offset, offset + length)] + [(offset, 0x80)]
    for position, mask in flips:
        mutated = bytearray(blob)
        mutated[position] ^= mask
        _plant(pc, bytes(mutated))
        expect_integrity_error(pc.a, "svc", value, f"{field}: bit 0x{mask:02x} of byte {position}")


@case("integrity", "truncation")
def test_truncation(pc: ConformanceRun) -> None:
    value, blob = _stored(pc)
    header_len = header_fields(blob)["ciphertext"][0]
    for length in sorted({0, 1, 3, 6, header_len - 1, header_len, len(blob) - 17,
                          len(blob) - 16, len(blob) - 1}):
        _plant(pc, blob[:length])
        expect_integrity_error(pc.a, "svc", value, f"blob truncated to {length} bytes")


@case("integrity", "extension")
def test_extension(pc: ConformanceRun) -> None:
    value, blob = _stored(pc)
    for suffix in (b"\x00", os.urandom(16), blob):
        _plant(pc, blob + suffix)
        expect_integrity_error(pc.a, "svc", value, f"blob extended by {len(suffix)} bytes")
    _plant(pc, b"\x00" + blob)
    expect_integrity_error(pc.a, "svc", value, "blob with a prepended byte")


@case("integrity", "unknown-version")
def test_unknown_version(pc: ConformanceRun) -> None:
    value, blob = _stored(pc)
    for version in (0, 2, 0x7F, 0xFF):
        _plant(pc, blob[:3] + bytes([version]) + blob[4:])
        expect_integrity_error(pc.a, "svc", value, f"version byte {version}")
    own = int.from_bytes(blob[4:6], "big")
    for suite in (s for s in (0, 1, 2, 3, 0xFFFF) if s != own):
        _plant(pc, blob[:4] + suite.to_bytes(2, "big") + blob[6:])
        expect_integrity_error(pc.a, "svc", value, f"suite {suite:#06x}")


@case("integrity", "wrong-kek-id")
def test_wrong_kek_id(pc: ConformanceRun) -> None:
    value, blob = _stored(pc)
    offset, length = header_fields(blob)["kek-id"]
    kek_id = blob[offset : offset + length]
    same_length = bytes(reversed(kek_id)) if kek_id != kek_id[::-1] else b"Z" * length
    candidates = [same_length, b"other-kek", b"x" * 64, b"sk.v2." + kek_id[6:]]
    for candidate in candidates:
        if candidate == kek_id:
            continue
        mutated = blob[:6] + bytes([len(candidate)]) + candidate + blob[offset + length :]
        _plant(pc, mutated)
        expect_integrity_error(pc.a, "svc", value, f"KEK id replaced by {candidate!r}")


@case("integrity", "empty-object")
def test_empty_object(pc: ConformanceRun) -> None:
    value, _ = _stored(pc)
    _plant(pc, b"")
    expect_integrity_error(pc.a, "svc", value, "an empty object")
