"""Bulk read: 1,000 credentials of one tenant, sequentially vs ``get_many`` vs bare boto3.

Same endpoint, same bucket, same objects, same thread count: the difference between
``CredentialStore.get_many`` and a bare boto3 thread pool doing ``get_object`` is our
per-operation cost (envelope open, key derivation, validation, error mapping). On a 2-core
machine the client's CPU is the bound, so that cost is what the ratio shows.

Endpoints: Ceph RGW (real STS + IAM: the tenant store is federated through OIDC and confined by
RGW's policies) and moto (run as a separate server process, so it does not share our GIL).
The tenant store's STS endpoint goes through a ``FaultProxy`` with no faults programmed, used
only as a counter: it proves how many STS calls the store made for all the reads.

Target (issue 7): get_many >= 0.85x bare boto3 throughput at the same thread count on RGW.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
from _common import moto_server

BENCH = "bulk"
REGION = "us-east-1"
COUNT = int(os.environ.get("BENCH_BULK_COUNT", "1000"))
THREADS = int(os.environ.get("BENCH_BULK_THREADS", "16"))
ROUNDS = int(os.environ.get("BENCH_BULK_ROUNDS", "3"))
QUICK = {"COUNT": 200, "ROUNDS": 1}
TARGET_RATIO = 0.85
SECRET_LEN = 120


@attrs.frozen
class Target:
    """One endpoint prepared for the bench: a tenant store factory and bare-boto3 credentials."""

    name: str
    endpoint: str
    bucket: str
    store_url: str
    token: Callable[[], str] | None
    bare_credentials: Callable[[], dict[str, str]]


def _secret(service: str) -> bytes:
    return service.encode().ljust(24, b".") + b"k" * (SECRET_LEN - 24)


@contextlib.contextmanager
def moto_target(sts_proxy_factory: Callable[[str], Any]) -> Iterator[Target]:
    import boto3

    with moto_server() as endpoint:
        bucket = f"bench-{secrets.token_hex(4)}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket=bucket)
        proxy = sts_proxy_factory(endpoint)
        role = "arn:aws:iam::123456789012:role/bench"
        url = (
            f"s3://{bucket}?region={REGION}&endpoint={endpoint}&sts_endpoint={proxy.url}"
            f"&role_arn={role}"
        )

        def bare() -> dict[str, str]:
            return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

        yield Target("moto", endpoint, bucket, url, lambda: "header.payload.sig", bare)


@contextlib.contextmanager
def rgw_target(sts_proxy_factory: Callable[[str], Any], wallet: str) -> Iterator[Target]:
    import boto3
    from botocore.config import Config
    from portable_creds_aws.testing.deployment import (
        admin_provisioner,
        rgw_per_tenant_deployment,
    )
    from portable_creds_aws.testing.oidc import OidcIssuer
    from portable_creds_aws.testing.rgw import RgwCluster

    with RgwCluster() as rgw, OidcIssuer() as issuer:
        deployment = rgw_per_tenant_deployment("pc-bench", rgw, issuer)
        provisioner = admin_provisioner(rgw, deployment, REGION)
        provisioner.apply()
        provisioner.onboard(wallet)
        proxy = sts_proxy_factory(rgw.url)
        url = (
            f"s3://{deployment.bucket}?region={REGION}&endpoint={rgw.url}"
            f"&sts_endpoint={proxy.url}&role_arn={deployment.role_arn}"
        )

        def bare() -> dict[str, str]:
            """Bare boto3 gets the same kind of credentials: its own web-identity session."""
            sts = boto3.client(
                "sts",
                endpoint_url=rgw.url,
                region_name=REGION,
                config=Config(signature_version=__import__("botocore").UNSIGNED),
            )
            got = sts.assume_role_with_web_identity(
                RoleArn=deployment.role_arn,
                RoleSessionName="bench-bare",
                WebIdentityToken=issuer.token(wallet, ttl=3600),
                DurationSeconds=3600,
            )["Credentials"]
            return {
                "aws_access_key_id": got["AccessKeyId"],
                "aws_secret_access_key": got["SecretAccessKey"],
                "aws_session_token": got["SessionToken"],
            }

        yield Target(
            "RGW",
            rgw.url,
            deployment.bucket,
            url,
            lambda: issuer.token(wallet, ttl=3600),
            bare,
        )


def _measure(target: Target, wallet: str, home: Path) -> tuple[list[dict[str, Any]], int, int]:
    """Returns rows, the number of store operations, and STS calls are counted by the caller."""
    import boto3
    from botocore.config import Config

    from portable_creds import open_store
    from portable_creds.secret_key import SecretKeySource

    keys = SecretKeySource(secrets.token_bytes(32))
    store = open_store(
        target.store_url,
        wallet=wallet,
        token=target.token,
        keys=keys,
        home=home,
        outbox=False,
    )
    services = [f"bulk-{i:04d}" for i in range(COUNT)]
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda s: store.put(s, _secret(s)), services))
    ops = COUNT
    bare_client = boto3.client(
        "s3",
        endpoint_url=target.endpoint,
        region_name=REGION,
        config=Config(max_pool_connections=THREADS, s3={"addressing_style": "path"}),
        **target.bare_credentials(),
    )
    keys_ = [store.key_for(s) for s in services]

    def bare_get(key: str) -> bytes:
        body: bytes = bare_client.get_object(Bucket=target.bucket, Key=key)["Body"].read()
        return body

    def ours_seq() -> None:
        for s in services:
            if store.get(s).reveal() != _secret(s):
                raise RuntimeError("wrong secret")

    def ours_many() -> None:
        got = store.get_many(services, max_workers=THREADS)
        if any(got[s].reveal() != _secret(s) for s in services):
            raise RuntimeError("wrong secret")

    def bare_seq() -> None:
        for k in keys_:
            bare_get(k)

    def bare_pool() -> None:
        with ThreadPoolExecutor(THREADS) as pool:
            blobs = list(pool.map(bare_get, keys_))
        if len(blobs) != COUNT or any(len(b) < SECRET_LEN for b in blobs):
            raise RuntimeError("bare boto3 read short objects")

    phases: dict[str, Callable[[], None]] = {
        "sequential get": ours_seq,
        f"get_many, {THREADS} threads": ours_many,
        "bare boto3, sequential": bare_seq,
        f"bare boto3, {THREADS} threads": bare_pool,
    }
    ours_many()  # warm-up: connections, credential cache
    bare_pool()
    ops += 2 * COUNT
    samples: dict[str, list[float]] = {name: [] for name in phases}
    cpu: dict[str, list[float]] = {name: [] for name in phases}
    order = list(phases)
    for r in range(ROUNDS):
        for name in order[r % len(order) :] + order[: r % len(order)]:
            start, start_cpu = time.perf_counter(), time.process_time()
            phases[name]()
            samples[name].append(COUNT / (time.perf_counter() - start))
            cpu[name].append((time.process_time() - start_cpu) * 1e3 / COUNT)
            if not name.startswith("bare"):
                ops += COUNT
    store.close()
    bare_client.close()
    rows = []
    med = {name: statistics.median(v) for name, v in samples.items()}
    for name, value in med.items():
        row: dict[str, Any] = {
            "bench": BENCH,
            "case": f"{name} ({target.name})",
            "metric": "ops/s",
            "value": value,
            "n": COUNT * ROUNDS,
            "note": f"{COUNT:,} x {SECRET_LEN} B, median of {ROUNDS} rounds "
            f"(min {min(samples[name]):.0f}, max {max(samples[name]):.0f})",
        }
        if name.startswith("get_many"):
            row["baseline"] = f"bare boto3, {THREADS} threads ({target.name})"
            ratio = value / med[f"bare boto3, {THREADS} threads"]
            row["ratio"] = ratio
            if target.name == "RGW":
                row["target"] = f">= {TARGET_RATIO}x bare boto3 at {THREADS} threads (RGW)"
                row["ok"] = ratio >= TARGET_RATIO
        elif name == "sequential get":
            row["baseline"] = f"bare boto3, sequential ({target.name})"
            row["ratio"] = value / med["bare boto3, sequential"]
        rows.append(row)
    # Client CPU per read: what bounds throughput on a small machine, and much less sensitive
    # than wall time to other load on a shared host.
    many, bare = f"get_many, {THREADS} threads", f"bare boto3, {THREADS} threads"
    cpu_many, cpu_bare = statistics.median(cpu[many]), statistics.median(cpu[bare])
    rows.append(
        {
            "bench": BENCH,
            "case": f"client CPU per read, get_many vs bare boto3 ({target.name})",
            "metric": "x",
            "value": cpu_many / cpu_bare,
            "n": COUNT * ROUNDS,
            "plot": False,
            "note": f"median CPU {cpu_many:.2f} ms vs {cpu_bare:.2f} ms per read "
            f"(process CPU time, all threads)",
        }
    )
    return rows, ops, 0


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """``--quick``: 200 credentials, one round (a smoke run, not a measurement)."""
    global COUNT, ROUNDS
    if "--quick" in (argv or []):
        COUNT, ROUNDS = QUICK["COUNT"], QUICK["ROUNDS"]
    from portable_creds.testing.faultproxy import FaultProxy

    rows: list[dict[str, Any]] = []
    wallet = "0x" + secrets.token_hex(20)
    proxies: list[FaultProxy] = []

    def sts_proxy(endpoint: str) -> FaultProxy:
        host, port = endpoint.removeprefix("http://").split(":")
        proxy = FaultProxy((host, int(port)), lifetime=3600).start()
        proxies.append(proxy)
        return proxy

    makers: list[tuple[str, Callable[[], contextlib.AbstractContextManager[Target]]]] = [
        ("RGW", lambda: rgw_target(sts_proxy, wallet)),
        ("moto", lambda: moto_target(sts_proxy)),
    ]
    for name, make in makers:
        try:
            with tempfile.TemporaryDirectory() as home, make() as target:
                got, ops, _ = _measure(target, wallet, Path(home))
                calls = proxies[-1].count()
                rows.extend(got)
                rows.append(
                    {
                        "bench": BENCH,
                        "case": f"STS calls per 1,000 operations ({name})",
                        "metric": "calls/1000 ops",
                        "value": calls * 1000 / ops,
                        "n": ops,
                        "note": f"{calls} AssumeRoleWithWebIdentity for {ops:,} store operations "
                        "(1-hour sessions, cached and shared by all threads)",
                        "plot": False,
                    }
                )
        except Exception as exc:
            rows.append(
                {
                    "bench": BENCH,
                    "case": f"{name}: not measured",
                    "metric": "-",
                    "value": float("nan"),
                    "note": f"{type(exc).__name__}: {exc}"[:300],
                    "plot": False,
                }
            )
        finally:
            for proxy in proxies:
                proxy.stop()
    for row in rows:
        print(
            f"{row['case']:<50} {row['value']:10.2f} {row['metric']}"
            + (f"  ratio {row['ratio']:.3f}" if row.get("ratio") else ""),
            file=sys.stderr,
        )
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
