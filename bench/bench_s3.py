"""Per-credential overhead: put+get of a 1 KiB secret through ``CredentialStore`` vs bare boto3.

Same endpoint, same bucket, same bytes, same run, interleaved rounds: bare boto3 does
``put_object`` + ``get_object`` of a 1 KiB payload; ``CredentialStore`` does ``put`` + ``get`` of
a 1 KiB secret (sealing, key derivation, name validation, error mapping, and for RGW the
federated credentials cache). The ratio of the medians is our overhead per credential.

Endpoints: moto (separate server process, static keys on both sides) and Ceph RGW (both sides
use a web-identity session of the same tenant, through the real STS). Target (issue 4):
<= 1.15x bare boto3. The outbox (a local journal entry before each remote write, on by default
for remote backends) has the same target since issue 13: its entry is made durable (fsync)
only when the remote write fails, so a successful put pays no fsync.

``python bench/bench_s3.py`` prints the table; ``main()`` also returns rows for bench/report.py.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
from _common import interleaved, latency_row, moto_server

BENCH = "s3"
REGION = "us-east-1"
ITERATIONS = int(os.environ.get("BENCH_S3_ITERATIONS", "150"))
ROUNDS = int(os.environ.get("BENCH_S3_ROUNDS", "3"))
TARGET_RATIO = 1.15
PAYLOAD = 1024


@attrs.frozen
class Endpoint:
    name: str
    url: str
    bucket: str
    store_url: str
    token: Callable[[], str] | None
    store_options: dict[str, Any]
    bare_credentials: Callable[[], dict[str, str]]


@contextlib.contextmanager
def moto_endpoint() -> Iterator[Endpoint]:
    import boto3

    with moto_server() as url:
        bucket = f"bench-s3-{secrets.token_hex(4)}"
        static = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        boto3.client("s3", endpoint_url=url, region_name=REGION, **static).create_bucket(
            Bucket=bucket
        )
        yield Endpoint(
            name="moto",
            url=url,
            bucket=bucket,
            store_url=f"s3://{bucket}?region={REGION}&endpoint={url}",
            token=None,
            store_options={
                "access_key": "testing",
                "secret_key": "testing",
                "allow_static_tenant": True,
            },
            bare_credentials=lambda: static,
        )


@contextlib.contextmanager
def rgw_endpoint(wallet: str) -> Iterator[Endpoint]:
    import boto3
    import botocore
    from botocore.config import Config
    from portable_creds_aws.testing.deployment import (
        admin_provisioner,
        rgw_per_tenant_deployment,
    )
    from portable_creds_aws.testing.oidc import OidcIssuer
    from portable_creds_aws.testing.rgw import RgwCluster

    with RgwCluster() as rgw, OidcIssuer() as issuer:
        d = rgw_per_tenant_deployment("pc-bench-s3", rgw, issuer)
        prov = admin_provisioner(rgw, d, REGION)
        prov.apply()
        prov.onboard(wallet)

        def bare() -> dict[str, str]:
            """Bare boto3 gets the same kind of credentials: its own session of the tenant."""
            sts = boto3.client(
                "sts",
                endpoint_url=rgw.url,
                region_name=REGION,
                config=Config(signature_version=botocore.UNSIGNED),
            )
            got = sts.assume_role_with_web_identity(
                RoleArn=d.role_arn,
                RoleSessionName="bench-bare",
                WebIdentityToken=issuer.token(wallet, ttl=3600),
                DurationSeconds=3600,
            )["Credentials"]
            return {
                "aws_access_key_id": got["AccessKeyId"],
                "aws_secret_access_key": got["SecretAccessKey"],
                "aws_session_token": got["SessionToken"],
            }

        yield Endpoint(
            name="RGW",
            url=rgw.url,
            bucket=d.bucket,
            store_url=f"s3://{d.bucket}?region={REGION}&endpoint={rgw.url}&role_arn={d.role_arn}",
            token=lambda: issuer.token(wallet, ttl=3600),
            store_options={},
            bare_credentials=bare,
        )


def _measure(ep: Endpoint, wallet: str, home: Path) -> list[dict[str, Any]]:
    import boto3
    from botocore.config import Config

    from portable_creds import open_store
    from portable_creds.secret_key import SecretKeySource

    keys = SecretKeySource(secrets.token_bytes(32))
    secret = secrets.token_bytes(PAYLOAD)
    stores = {
        "CredentialStore": open_store(
            ep.store_url,
            wallet=wallet,
            token=ep.token,
            keys=keys,
            home=home / "a",
            outbox=False,
            **ep.store_options,
        ),
        "CredentialStore + outbox": open_store(
            ep.store_url,
            wallet=wallet,
            token=ep.token,
            keys=keys,
            home=home / "b",
            outbox=True,
            **ep.store_options,
        ),
    }
    bare = boto3.client(
        "s3",
        endpoint_url=ep.url,
        region_name=REGION,
        # Same checksum setting as the driver, so the ratio is our overhead, not CRC32 work.
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
        **ep.bare_credentials(),
    )
    bare_key = f"bots/{wallet}/credentials/bare.enc"

    def bare_once() -> None:
        bare.put_object(Bucket=ep.bucket, Key=bare_key, Body=secret)
        got = bare.get_object(Bucket=ep.bucket, Key=bare_key)["Body"].read()
        if got != secret:
            raise RuntimeError("bare boto3 read back different bytes")

    def store_once(name: str) -> Callable[[], None]:
        store = stores[name]

        def once() -> None:
            store.put("bench", secret)
            if store.get("bench").reveal() != secret:
                raise RuntimeError("CredentialStore read back a different secret")

        return once

    phases: dict[str, Callable[[], None]] = {
        "bare boto3": bare_once,
        "CredentialStore": store_once("CredentialStore"),
        "CredentialStore + outbox": store_once("CredentialStore + outbox"),
    }
    samples, cpu = interleaved(phases, ITERATIONS * ROUNDS)
    for store in stores.values():
        store.close()
    bare.close()
    med = {name: statistics.median(v) for name, v in samples.items()}
    rows: list[dict[str, Any]] = []
    for name, values in samples.items():
        row = latency_row(BENCH, f"put+get 1 KiB, {name} ({ep.name})", values, cpu[name])
        if name != "bare boto3":
            row["baseline"] = f"put+get 1 KiB, bare boto3 ({ep.name})"
            row["ratio"] = med[name] / med["bare boto3"]
            row["target"] = f"<= {TARGET_RATIO}x bare boto3"
            row["ok"] = row["ratio"] <= TARGET_RATIO
        rows.append(row)
    base_cpu = statistics.mean(cpu["bare boto3"])
    for name in ("CredentialStore", "CredentialStore + outbox"):
        rows.append(
            {
                "bench": BENCH,
                "case": f"client CPU per put+get, {name} vs bare boto3 ({ep.name})",
                "metric": "x",
                "value": statistics.mean(cpu[name]) / base_cpu,
                "n": len(cpu[name]),
                "note": f"mean CPU {statistics.mean(cpu[name]):.2f} ms vs {base_cpu:.2f} ms; "
                "less sensitive to other load on the machine than wall time",
                "plot": False,
            }
        )
    return rows


def print_table(rows: list[dict[str, Any]], file: Any = sys.stdout) -> None:
    print(f"{'case':<72} {'median ms':>10} {'p99 ms':>8} {'ratio':>7}  target", file=file)
    for row in rows:
        ratio = f"{row['ratio']:.3f}" if row.get("ratio") is not None else "-"
        if row["metric"] == "x":
            ratio = f"{row['value']:.3f}"
        ok = {True: "ok", False: "MISSED", None: ""}[row.get("ok")]
        p99 = f"{row['p99']:.2f}" if "p99" in row else "-"
        value = "-" if row["metric"] == "x" else f"{row['value']:.2f}"
        print(f"{row['case']:<72} {value:>10} {p99:>8} {ratio:>7}  {ok}", file=file)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    wallet = "0x" + secrets.token_hex(20)
    rows: list[dict[str, Any]] = []
    makers: list[tuple[str, Callable[[], contextlib.AbstractContextManager[Endpoint]]]] = [
        ("moto", moto_endpoint),
        ("RGW", lambda: rgw_endpoint(wallet)),
    ]
    for name, make in makers:
        try:
            with tempfile.TemporaryDirectory() as home, make() as ep:
                rows.extend(_measure(ep, wallet, Path(home)))
        except Exception as exc:
            rows.append(
                {
                    "bench": BENCH,
                    "case": f"put+get 1 KiB ({name}): not measured",
                    "metric": "-",
                    "value": float("nan"),
                    "note": f"{type(exc).__name__}: {exc}"[:300],
                    "plot": False,
                }
            )
    print_table(rows)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
