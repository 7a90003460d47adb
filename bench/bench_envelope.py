"""Envelope cost: our seal+open against the floor (bare AES-GCM) and a hand-written envelope.

Run with ``make bench`` (all benches) or ``.venv/bin/python bench/bench_envelope.py``.

For each payload size, one round trip (encrypt then decrypt) of:

- **bare AES-GCM**: one AES-256-GCM encrypt + decrypt under a pre-built key: the floor;
- **minimal envelope**: written here with the same primitives and nothing else: fresh DEK and
  two nonces from the OS, one HKDF derivation, one AES-GCM DEK wrap, one AES-GCM payload
  encryption, concatenation; and the reverse (unwrap, HKDF, decrypt);
- **portable-creds**: ``envelope.seal`` + ``envelope.open_blob`` (header, context binding,
  key commitment and strict parsing included).

The variants are interleaved batch by batch (timeit-style: calibrated batch size, many
repeats, median per-operation time), so drift on a shared machine hits all of them alike.
Times are the benchmarking thread's CPU time (``time.thread_time``: user + system, so page
faults count) rather than wall time, because other jobs on a shared machine inflate wall time
at random; ``--wall`` measures wall-clock time instead.
Targets from issue 2: ours ≤ 1.5x the minimal envelope at 1 KiB, ≤ 1.3x bare AES-GCM at
1 MiB; from issue 7: at 1 KiB ours ≥ 10x faster than the ESDK's non-signing committing suite
and ≥ 50x faster than its default (signing) suite. The AWS Encryption SDK runs with a raw AES
master key, its committing suite with ECDSA signatures (the SDK default) and without
(``--no-esdk`` skips it; the 64 KiB size is measured only with it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from portable_creds import envelope
from portable_creds.envelope import Context
from portable_creds.keys import Kek

Row = dict[str, Any]
KiB, MiB = 1024, 1024 * 1024
WALLET = "0x" + "3c" * 20
CONTEXT = Context(WALLET, "openai", f"bots/{WALLET}/credentials/openai.enc")


# -- the variants -----------------------------------------------------------------------------


def bare_aes_gcm(payload: bytes) -> Callable[[], object]:
    aes = AESGCM(os.urandom(32))
    nonce = os.urandom(12)

    def run() -> object:
        return aes.decrypt(nonce, aes.encrypt(nonce, payload, None), None)

    return run


def minimal_envelope(payload: bytes) -> Callable[[], object]:
    kek = os.urandom(32)
    aad = b"wallet|service|key"
    info = b"minimal envelope"

    def seal() -> bytes:
        dek, n1, n2 = os.urandom(32), os.urandom(12), os.urandom(12)
        wrapped = AESGCM(kek).encrypt(n1, dek, aad)
        key = HKDF(hashes.SHA256(), 32, salt=None, info=info).derive(dek)
        return n1 + wrapped + n2 + AESGCM(key).encrypt(n2, payload, aad)

    def open_(blob: bytes) -> bytes:
        dek = AESGCM(kek).decrypt(blob[:12], blob[12:60], aad)
        key = HKDF(hashes.SHA256(), 32, salt=None, info=info).derive(dek)
        return AESGCM(key).decrypt(blob[60:72], blob[72:], aad)

    def run() -> object:
        return open_(seal())

    return run


def ours(payload: bytes) -> Callable[[], object]:
    kek = Kek("bench-kek-1", os.urandom(32))
    max_payload = max(envelope.DEFAULT_MAX_PAYLOAD, len(payload))

    def resolve(_kek_id: str) -> Kek:
        return kek

    def run() -> object:
        blob = envelope.seal(payload, kek=kek, context=CONTEXT, max_payload=max_payload)
        return envelope.open_blob(
            blob, context=CONTEXT, resolve_kek=resolve, max_payload=max_payload
        )

    return run


def esdk(payload: bytes, signing: bool) -> Callable[[], object] | None:
    try:
        import aws_encryption_sdk
        from aws_encryption_sdk.identifiers import (
            Algorithm,
            CommitmentPolicy,
            EncryptionKeyType,
            WrappingAlgorithm,
        )
        from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
        from aws_encryption_sdk.key_providers.raw import RawMasterKey, RawMasterKeyConfig
    except ImportError:
        return None
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    master_key = RawMasterKey(
        config=RawMasterKeyConfig(
            key_id=b"bench-kek-1",
            provider_id="portable-creds-bench",
            wrapping_key=WrappingKey(
                wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
                wrapping_key=os.urandom(32),
                wrapping_key_type=EncryptionKeyType.SYMMETRIC,
            ),
        )
    )
    suite = (
        Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384
        if signing
        else Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY
    )
    context = {"wallet": WALLET, "service": "openai", "key": CONTEXT.storage_key}

    def run() -> object:
        ct, _ = client.encrypt(
            source=payload, key_provider=master_key, algorithm=suite, encryption_context=context
        )
        pt, _ = client.decrypt(source=ct, key_provider=master_key)
        return pt

    return run


# -- measurement ------------------------------------------------------------------------------


Clock = Callable[[], float]


def calibrate(fn: Callable[[], object], batch_seconds: float, clock: Clock) -> int:
    number = 1
    while True:
        start = clock()
        for _ in range(number):
            fn()
        if clock() - start >= batch_seconds or number >= 1 << 20:
            return number
        number *= 2


def measure(
    variants: dict[str, Callable[[], object]],
    repeats: int,
    batch_seconds: float,
    clock: Clock = time.thread_time,
) -> dict[str, list[float]]:
    """Per-operation times in µs, ``repeats`` batches per variant, interleaved."""
    for fn in variants.values():
        fn()  # warm up (imports, first allocations)
    numbers = {name: calibrate(fn, batch_seconds, clock) for name, fn in variants.items()}
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            number = numbers[name]
            start = clock()
            for _ in range(number):
                fn()
            samples[name].append((clock() - start) / number * 1e6)
    return samples


def _size(n: int) -> str:
    return f"{n // MiB} MiB" if n >= MiB else f"{n // KiB} KiB"


def _row(case: str, size: int, times: list[float], note: str, **extra: Any) -> Row:
    ordered = sorted(times)
    row: Row = {
        "bench": "envelope",
        "case": f"{case}, {_size(size)}",
        "metric": "us",
        "value": statistics.median(times),
        "p50": statistics.median(times),
        "p99": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))],
        "n": len(times),
        "note": note,
    }
    row.update(extra)
    return row


def run(
    sizes: list[int], repeats: int, batch_seconds: float, with_esdk: bool, wall: bool = False
) -> list[Row]:
    clock: Clock = time.perf_counter if wall else time.thread_time
    note = "median per encrypt+decrypt round trip, " + ("wall time" if wall else "CPU time")
    rows: list[Row] = []
    for size in sizes:
        payload = os.urandom(size)
        variants: dict[str, Callable[[], object]] = {
            "bare AES-GCM": bare_aes_gcm(payload),
            "minimal envelope": minimal_envelope(payload),
            "portable-creds seal+open": ours(payload),
        }
        if with_esdk:
            for signing, label in (
                (False, "ESDK commit, no signature"),
                (True, "ESDK commit+ECDSA (default)"),
            ):
                fn = esdk(payload, signing)
                if fn is not None:
                    variants[label] = fn
        samples = measure(variants, repeats, batch_seconds, clock)
        med = {name: statistics.median(ts) for name, ts in samples.items()}
        ours_name = "portable-creds seal+open"
        for name, times in samples.items():
            extra: Row = {}
            if name == ours_name:
                if size == KiB:
                    extra = {
                        "baseline": f"minimal envelope, {_size(size)}",
                        "ratio": med[name] / med["minimal envelope"],
                        "target": "<= 1.5x minimal envelope",
                        "ok": med[name] / med["minimal envelope"] <= 1.5,
                    }
                elif size == MiB:
                    extra = {
                        "baseline": f"bare AES-GCM, {_size(size)}",
                        "ratio": med[name] / med["bare AES-GCM"],
                        "target": "<= 1.3x bare AES-GCM",
                        "ok": med[name] / med["bare AES-GCM"] <= 1.3,
                    }
                else:
                    extra = {
                        "baseline": f"bare AES-GCM, {_size(size)}",
                        "ratio": med[name] / med["bare AES-GCM"],
                    }
            elif name.startswith("ESDK"):
                ratio = med[name] / med[ours_name]
                extra = {"baseline": f"{ours_name}, {_size(size)}", "ratio": ratio}
                if size == KiB:  # issue 7: ours >= 10x / >= 50x faster than these suites
                    need = 50 if "ECDSA" in name else 10
                    extra.update(target=f">= {need}x slower than ours", ok=ratio >= need)
            elif name == "minimal envelope":
                extra = {
                    "baseline": f"bare AES-GCM, {_size(size)}",
                    "ratio": med[name] / med["bare AES-GCM"],
                }
            rows.append(_row(name, size, times, note, **extra))
    return rows


def print_table(rows: list[Row]) -> None:
    print(f"{'case':<44} {'median us':>11} {'p99 us':>11} {'ratio':>8}  vs / target")
    for r in rows:
        ratio = f"{r['ratio']:.2f}x" if "ratio" in r else ""
        target = ""
        if "baseline" in r:
            target = r["baseline"].split(",")[0]
        if "target" in r:
            target = f"{r['target']}: {'OK' if r['ok'] else 'MISSED'}"
        print(f"{r['case']:<44} {r['value']:>11.1f} {r['p99']:>11.1f} {ratio:>8}  {target}")


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description="envelope benchmark")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    parser.add_argument("--no-esdk", action="store_true", help="skip the AWS Encryption SDK")
    parser.add_argument("--wall", action="store_true", help="wall-clock instead of CPU time")
    args, _unknown = parser.parse_known_args(argv)  # run_all passes its argv to every bench
    repeats, batch = (5, 0.005) if args.quick else (41, 0.02)
    sizes = [KiB, MiB] if args.no_esdk else [KiB, 64 * KiB, MiB]
    rows = run(sizes, repeats, batch, with_esdk=not args.no_esdk, wall=args.wall)
    print_table(rows)
    return rows


if __name__ == "__main__":
    out = main()
    sys.exit(0 if all(r.get("ok", True) for r in out) else 1)
