"""Fleet copy throughput: ``portable_creds.copy`` (verbatim, verified) vs a bare-SDK copy loop.

10,000 sealed credentials over 100 wallets in a Ceph RGW bucket are copied to the Tencent double
(its own process, ``portable_creds_tencent.testing.serve``), both sides with administrative
keys, at the same worker count:

- **bare SDK loop**: one paginated boto3 listing, then a thread pool doing boto3
  ``get_object`` + ``CosS3Client.put_object`` per object - no verification at all;
- **copy (verbatim, verified)**: what ``portable-creds copy`` does by default:
  ``--all-wallets`` enumeration (delimited listing), one listing per wallet on each side, per
  credential a source GET, header parse and create-only PUT, then one destination listing per
  wallet verifying every write (size and an ETag equal to the MD5 of the bytes written);
- **copy (verbatim, --verify read)**: the same, but every object is read back with a GET and
  compared byte for byte (informational; no target);
- **copy (verbatim, blobs opened)**: the same with the readers' keys on the copying machine,
  so every blob is also opened (informational; no target).

Each phase copies into an emptied destination; phases are interleaved over the rounds so load
from other processes hits them alike. Target (issue 14): copy >= 0.85x the bare loop's
objects/s at the same worker count, *with* verification.

``python bench/bench_copy.py [--quick]``; ``--quick``: 1,000 credentials over 10 wallets, one
round (a smoke run, not a measurement).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

BENCH = "copy"
REGION = "us-east-1"
CREDENTIALS = int(os.environ.get("BENCH_COPY_CREDENTIALS", "10000"))
WALLETS = int(os.environ.get("BENCH_COPY_WALLETS", "100"))
WORKERS = int(os.environ.get("BENCH_COPY_WORKERS", "8"))
ROUNDS = int(os.environ.get("BENCH_COPY_ROUNDS", "2"))
QUICK = {"CREDENTIALS": 1000, "WALLETS": 10, "ROUNDS": 1}
TARGET_RATIO = 0.85
SECRET_LEN = 120


@contextlib.contextmanager
def rgw_bucket() -> Iterator[tuple[Any, str, Any]]:
    """(RGW endpoint, bucket, administrative S3ObjectStore) on a private Ceph cluster."""
    import boto3
    from portable_creds_aws.driver import S3Driver
    from portable_creds_aws.testing.rgw import RgwCluster

    from portable_creds.driver import StoreTarget

    with RgwCluster() as rgw:
        bucket = f"pc-bench-copy-{secrets.token_hex(3)}"
        boto3.client(
            "s3",
            endpoint_url=rgw.url,
            region_name=REGION,
            aws_access_key_id=rgw.admin_access_key,
            aws_secret_access_key=rgw.admin_secret_key,
        ).create_bucket(Bucket=bucket)
        store = S3Driver().open_object_store(
            StoreTarget(
                url=f"s3://{bucket}?region={REGION}&endpoint={rgw.url}",
                wallet=None,
                options={"access_key": rgw.admin_access_key, "secret_key": rgw.admin_secret_key},
            )
        )
        try:
            yield rgw, bucket, store
        finally:
            store.close()


def seed(store: Any, keys: Any) -> list[str]:
    """``CREDENTIALS`` sealed blobs over ``WALLETS`` wallets; returns the wallets."""
    from portable_creds.store import CredentialStore

    wallets = [f"0x{secrets.token_hex(20)}" for _ in range(WALLETS)]
    per_wallet = CREDENTIALS // WALLETS

    def put(args: tuple[str, int]) -> None:
        wallet, n = args
        creds = CredentialStore(store, keys, wallet)
        service = f"svc-{n:05d}"
        store.put(creds.key_for(service), creds.seal(service, secrets.token_bytes(SECRET_LEN)))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, [(w, n) for w in wallets for n in range(per_wallet)]))
    return wallets


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    global CREDENTIALS, WALLETS, ROUNDS
    if "--quick" in (argv or []):
        CREDENTIALS, WALLETS, ROUNDS = QUICK["CREDENTIALS"], QUICK["WALLETS"], QUICK["ROUNDS"]
    logging.getLogger("qcloud_cos").setLevel(logging.CRITICAL)
    rows: list[dict[str, Any]] = []
    try:
        rows = _run()
    except Exception as exc:
        rows.append(
            {
                "bench": BENCH,
                "case": "copy RGW -> Tencent double: not measured",
                "metric": "-",
                "value": float("nan"),
                "note": f"{type(exc).__name__}: {exc}"[:300],
                "plot": False,
            }
        )
    for row in rows:
        ratio = f"  ratio {row['ratio']:.3f}" if row.get("ratio") is not None else ""
        ok = {True: "  ok", False: "  MISSED", None: ""}[row.get("ok")]
        print(f"{row['case']:<60} {row['value']:10.1f} {row['metric']}{ratio}{ok}", file=sys.stderr)
    return rows


def _run() -> list[dict[str, Any]]:
    import boto3
    from bench_cos import double_process
    from botocore.config import Config
    from portable_creds_tencent.driver import CosDriver
    from qcloud_cos import CosConfig, CosS3Client

    from portable_creds import copy, fleet
    from portable_creds.driver import StoreTarget
    from portable_creds.secret_key import SecretKeySource

    keys = SecretKeySource(secrets.token_bytes(32))
    with rgw_bucket() as (rgw, bucket, source), double_process() as info:
        dest_bucket = info["buckets"][0]
        cos_url = (
            f"cos://{dest_bucket}?region={info['region']}&scheme=http&ip=127.0.0.1"
            f"&port={info['port']}"
        )
        dest = CosDriver().open_object_store(
            StoreTarget(
                url=cos_url,
                wallet=None,
                options={"secret_id": info["secret_id"], "secret_key": info["secret_key"]},
            )
        )
        started = time.perf_counter()
        seed(source, keys)
        seeded = time.perf_counter() - started
        s3 = boto3.client(
            "s3",
            endpoint_url=rgw.url,
            region_name=REGION,
            aws_access_key_id=rgw.admin_access_key,
            aws_secret_access_key=rgw.admin_secret_key,
            config=Config(max_pool_connections=max(10, WORKERS)),
        )
        cos = CosS3Client(
            CosConfig(
                Region=info["region"],
                SecretId=info["secret_id"],
                SecretKey=info["secret_key"],
                Scheme="http",
                IP="127.0.0.1",
                Port=info["port"],
            ),
            retry=0,
        )

        def bare(limit: int | None = None) -> int:
            keys_: list[str] = []
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="bots/"):
                keys_.extend(o["Key"] for o in page.get("Contents", ()))
            keys_ = keys_[:limit]

            def one(key: str) -> None:
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                cos.put_object(Bucket=dest_bucket, Body=body, Key=key)

            with ThreadPoolExecutor(WORKERS) as pool:
                list(pool.map(one, keys_))
            return len(keys_)

        def ours(
            with_keys: bool, verify: str = copy.VERIFY_LISTING, wallets: int | None = None
        ) -> Callable[[], int]:
            def run() -> int:
                report = copy.copy(
                    copy.Endpoint(source, keys=keys if with_keys else None),
                    copy.Endpoint(dest),
                    fleet.list_wallets(source)[:wallets],
                    workers=WORKERS,
                    verify=verify,
                )
                expected = CREDENTIALS * (wallets or WALLETS) // WALLETS
                if not report.ok or report.counts()[copy.COPIED] != expected:
                    raise RuntimeError(f"copy did not complete: {report.counts()}")
                return expected

            return run

        def clear() -> None:
            remaining = [i.key for i in dest.list("bots/")]
            if dest.delete_many(remaining):
                raise RuntimeError("could not empty the destination between phases")

        phases: dict[str, Callable[[], int]] = {
            "bare SDK loop": bare,
            "copy (verbatim, verified)": ours(False),
            "copy (verbatim, --verify read)": ours(False, copy.VERIFY_READ),
            "copy (verbatim, verified, blobs opened)": ours(True),
        }
        samples: dict[str, list[float]] = {name: [] for name in phases}
        cpu: dict[str, list[float]] = {name: [] for name in phases}
        order = list(phases)
        # Warm-up, untimed: connection pools, RGW's and the double's first requests.
        warmups: list[Callable[[], int]] = [
            lambda: bare(CREDENTIALS // 10),
            ours(True, wallets=max(1, WALLETS // 10)),
        ]
        for warm in warmups:
            clear()
            warm()
        for r in range(ROUNDS):
            for name in order[r % len(order) :] + order[: r % len(order)]:
                clear()
                t0, c0 = time.perf_counter(), time.process_time()
                count = phases[name]()
                samples[name].append(count / (time.perf_counter() - t0))
                cpu[name].append((time.process_time() - c0) * 1e3 / count)
        clear()
        dest.close()

    med = {name: statistics.median(v) for name, v in samples.items()}
    base = f"bare SDK loop, {WORKERS} workers (RGW -> double)"
    rows: list[dict[str, Any]] = []
    for name, value in med.items():
        row: dict[str, Any] = {
            "bench": BENCH,
            "case": f"{name}, {WORKERS} workers (RGW -> double)",
            "metric": "objects/s",
            "value": value,
            "n": CREDENTIALS * ROUNDS,
            "note": f"{CREDENTIALS:,} credentials over {WALLETS} wallets, median of {ROUNDS} "
            f"round(s); client CPU {statistics.median(cpu[name]):.2f} ms/object",
        }
        if name != "bare SDK loop":
            row["baseline"] = base
            row["ratio"] = value / med["bare SDK loop"]
            if name == "copy (verbatim, verified)":
                row["target"] = f">= {TARGET_RATIO}x bare SDK loop at {WORKERS} workers"
                row["ok"] = row["ratio"] >= TARGET_RATIO
        rows.append(row)
    rows.append(
        {
            "bench": BENCH,
            "case": "seeding (sealed puts, 16 threads, RGW)",
            "metric": "objects/s",
            "value": CREDENTIALS / seeded,
            "n": CREDENTIALS,
            "plot": False,
            "note": "setup, not compared",
        }
    )
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
