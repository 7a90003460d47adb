"""KMS custody: seal+open through ``AwsKmsKeySource`` vs the AWS Encryption SDK, same moto KMS.

Run with ``.venv/bin/python bench/run_all.py --only kms --no-report``.

One moto server (its own process) serves KMS to both. Per 1 KiB secret, one round trip of:

- **ESDK + KMS**: ``aws_encryption_sdk`` encrypt + decrypt with a strict AWS KMS master-key
  provider (GenerateDataKey + Decrypt per round trip), committing non-signing suite
  ``AES_256_GCM_HKDF_SHA512_COMMIT_KEY`` (the signing default would only make ours look better);
- **ESDK + KMS, caching CMM**: the same with the ESDK's caching materials manager
  (max age 60 s, 1000 messages);
- **portable-creds, uncached**: ``envelope.seal`` + ``open_blob`` via ``AwsKmsKeySource`` with
  no data-key cache (GenerateDataKey + Decrypt per round trip);
- **portable-creds, cached**: read and write caches on (60 s / 1000 uses / 64 MiB).

Targets (issue 16): uncached ≥ 1.0x the ESDK's speed, cached ≥ 10x; and KMS calls per 1,000
gets of one credential with caching on (target ≤ 1 per cache lifetime per wallet/service).
Times are wall-clock medians (the work is mostly KMS round trips), phases interleaved.
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections.abc import Callable
from typing import Any

import boto3
from _common import interleaved, moto_server
from portable_creds_aws.kms import AwsKmsKeySource

from portable_creds import envelope
from portable_creds.datakey_cache import CacheLimits
from portable_creds.envelope import Context

BENCH = "kms"
REGION = "us-east-1"
PAYLOAD = os.urandom(1024)
WALLET = "0x" + "3c" * 20
CONTEXT = Context(WALLET, "openai", f"bots/{WALLET}/credentials/openai.enc")
Row = dict[str, Any]


def _kms(endpoint: str) -> Any:
    return boto3.client(
        "kms",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def ours(source: AwsKmsKeySource) -> Callable[[], object]:
    def run() -> object:
        blob = envelope.seal(PAYLOAD, kek=source, context=CONTEXT)
        out = envelope.open_blob(blob, context=CONTEXT, resolve_kek=lambda _id: source)
        assert out == PAYLOAD
        return out

    return run


def esdk(endpoint: str, key_arn: str, caching: bool) -> Callable[[], object]:
    import aws_encryption_sdk
    import botocore.session
    from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy

    # The SDK builds its own KMS clients; botocore's service-specific endpoint variable
    # points them at moto.
    os.environ["AWS_ENDPOINT_URL_KMS"] = endpoint
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
        key_ids=[key_arn], botocore_session=botocore.session.Session()
    )
    materials: dict[str, Any] = {"key_provider": provider}
    if caching:
        cache = aws_encryption_sdk.LocalCryptoMaterialsCache(capacity=100)
        materials = {
            "materials_manager": aws_encryption_sdk.CachingCryptoMaterialsManager(
                master_key_provider=provider,
                cache=cache,
                max_age=60.0,
                max_messages_encrypted=1000,
            )
        }
    ec = envelope.kms_context(CONTEXT)
    suite = Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY

    def run() -> object:
        ct, _ = client.encrypt(
            source=PAYLOAD, encryption_context=ec, algorithm=suite, **materials
        )
        pt, _ = client.decrypt(source=ct, **materials)
        assert pt == PAYLOAD
        return pt

    return run


def calls_per_1000_gets(kms: Any, key_arn: str) -> int:
    writer = AwsKmsKeySource(key_arn, kms, read_cache=None)
    blob = envelope.seal(PAYLOAD, kek=writer, context=CONTEXT)
    reader = AwsKmsKeySource(key_arn, kms)  # default read cache (60 s, 1000 uses, 64 MiB)
    for _ in range(1000):
        envelope.open_blob(blob, context=CONTEXT, resolve_kek=lambda _id: reader)
    return reader.kms_calls


def run(iterations: int) -> list[Row]:
    with moto_server() as endpoint:
        kms = _kms(endpoint)
        key_arn = str(kms.create_key()["KeyMetadata"]["Arn"])
        cached_limits = CacheLimits()
        phases = {
            "ESDK + KMS": esdk(endpoint, key_arn, caching=False),
            "ESDK + KMS, caching CMM": esdk(endpoint, key_arn, caching=True),
            "portable-creds KMS, uncached": ours(AwsKmsKeySource(key_arn, kms, read_cache=None)),
            "portable-creds KMS, cached": ours(
                AwsKmsKeySource(key_arn, kms, read_cache=cached_limits, write_cache=cached_limits)
            ),
        }
        wall, _cpu = interleaved(phases, iterations)
        calls = calls_per_1000_gets(kms, key_arn)
    med = {name: statistics.median(ts) for name, ts in wall.items()}
    base = "ESDK + KMS"
    rows: list[Row] = []
    for name, times in wall.items():
        row: Row = {
            "bench": BENCH,
            "case": f"{name}, 1 KiB",
            "metric": "ms",
            "value": med[name],
            "p50": med[name],
            "p99": statistics.quantiles(times, n=100)[98],
            "n": len(times),
            "note": "median wall time per encrypt+decrypt round trip, KMS on moto",
        }
        if name.startswith("portable-creds"):
            speed = med[base] / med[name]
            need = 10.0 if "cached" in name and "uncached" not in name else 1.0
            row.update(
                baseline=f"{base}, 1 KiB",
                ratio=med[name] / med[base],
                target=f">= {need:g}x ESDK speed (got {speed:.2f}x)",
                ok=speed >= need,
            )
        rows.append(row)
    rows.append(
        {
            "bench": BENCH,
            "case": "KMS calls per 1,000 gets (cache on)",
            "metric": "calls",
            "value": calls,
            "target": "<= 1 per cache lifetime per wallet/service",
            "ok": calls <= 1,
            "note": "one credential read 1,000 times by a fresh reader, default read cache",
        }
    )
    return rows


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description="KMS custody benchmark")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args, _unknown = parser.parse_known_args(argv)
    rows = run(20 if args.quick else 150)
    for r in rows:
        verdict = f"  {r['target']}: {'OK' if r['ok'] else 'MISSED'}" if "target" in r else ""
        print(f"{r['case']:<44} {r['value']:>10.3f} {r['metric']}{verdict}")
    return rows


if __name__ == "__main__":
    main()
