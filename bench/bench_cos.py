"""Per-credential overhead on Tencent COS: put+get of a 1 KiB secret through ``CredentialStore``
vs the bare ``CosS3Client`` (``put_object`` + ``get_object``), same double, same run.

The Tencent double runs in its own process (``portable_creds_tencent.testing.serve``) and is
provisioned with the driver's provisioner. Both sides use temporary credentials of the same
tenant from the same STS (role-per-tenant: ``AssumeRoleWithWebIdentity``; token-vendor: a
vendor-scoped ``AssumeRole``), so the ratio is our per-credential overhead: sealing, key
derivation, name validation, error mapping, the retry wrapper and the credential cache.
Target (issue 5): <= 1.15x bare CosS3Client. The outbox-on row (the default for remote
backends) is shown for comparison; issue 13's outbox target names RGW and moto (bench_s3).
Rounds are interleaved so machine noise hits every phase alike.

``python bench/bench_cos.py [--quick]`` prints the table; ``main()`` returns rows for
bench/report.py.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from _common import interleaved, latency_row

BENCH = "cos"
ITERATIONS = int(os.environ.get("BENCH_COS_ITERATIONS", "150"))
ROUNDS = int(os.environ.get("BENCH_COS_ROUNDS", "3"))
TARGET_RATIO = 1.15
PAYLOAD = 1024
AUDIENCE = "portable-creds-bench"


@contextlib.contextmanager
def double_process() -> Iterator[dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "portable_creds_tencent.testing.serve", "bench"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the Tencent double did not start")
        yield json.loads(line)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _setup(info: dict[str, Any], wallet: str) -> dict[str, Any]:
    """Provision the double like a deployment: IdP, vendor role, the tenant's role."""
    from portable_creds_tencent.admin import Deployment, Provisioner
    from portable_creds_tencent.settings import StaticKeys, parse_settings
    from portable_creds_tencent.testing import TestIdentityProvider

    from portable_creds.driver import StoreTarget

    idp = TestIdentityProvider()
    bucket = info["buckets"][0]
    url = (
        f"cos://{bucket}?region={info['region']}&owner_uin={info['owner_uin']}"
        f"&scheme=http&ip=127.0.0.1&port={info['port']}"
    )
    root = StaticKeys(info["secret_id"], info["secret_key"])
    # The double runs in another process, so its Python-only add_user helper is out of reach:
    # the root key plays the vendor here (the vendor role's trust names the root principal).
    deployment = Deployment(
        settings=parse_settings(StoreTarget(url=url, wallet=wallet)),
        issuer=idp.issuer,
        audiences=(AUDIENCE,),
        jwks=idp.jwks(),
        vendor_principals=(f"qcs::cam::uin/{info['owner_uin']}:root",),
        require_tls=False,
    )
    prov = Provisioner(deployment, root)
    prov.apply()
    prov.onboard(wallet)
    return {"idp": idp, "url": url, "bucket": bucket, "root": root}


def _bare_client(info: dict[str, Any], creds: Any) -> Any:
    from qcloud_cos import CosConfig, CosS3Client

    conf = CosConfig(
        Region=info["region"],
        SecretId=creds.access_key_id,
        SecretKey=creds.secret_access_key,
        Token=creds.session_token,
        Scheme="http",
        IP="127.0.0.1",
        Port=info["port"],
    )
    return CosS3Client(conf)


def _measure(
    info: dict[str, Any], env: dict[str, Any], wallet: str, mode: str, iterations: int
) -> list[dict[str, Any]]:
    from portable_creds import open_store
    from portable_creds.secret_key import SecretKeySource

    idp = env["idp"]

    def token() -> str:
        return str(idp.mint(wallet, AUDIENCE, lifetime=3600))

    options: dict[str, Any] = {}
    url = f"{env['url']}&mode={mode}"
    if mode == "token-vendor":
        url += f"&issuer={idp.issuer}&audience={AUDIENCE}"
        options = {
            "jwks": idp.jwks(),
            "secret_id": env["root"].secret_id,
            "secret_key": env["root"].secret_key,
        }
    keys = SecretKeySource(secrets.token_bytes(32))
    store = open_store(url, wallet=wallet, token=token, keys=keys, outbox=False, **options)
    # The default for remote backends: the outbox journals each put (no fsync unless it fails).
    home = tempfile.mkdtemp(prefix="bench-cos-outbox-")
    boxed = open_store(url, wallet=wallet, token=token, keys=keys, outbox=True, home=home,
                       **options)
    # Bare CosS3Client gets the same kind of credentials: its own session of the same tenant.
    provider = store.objects.credentials_provider  # type: ignore[attr-defined]
    provider.invalidate()
    bare = _bare_client(info, provider.credentials())
    secret = secrets.token_bytes(PAYLOAD)
    bucket = env["bucket"]
    bare_key = f"bots/{wallet}/credentials/bare.enc"

    def bare_once() -> None:
        bare.put_object(Bucket=bucket, Body=secret, Key=bare_key)
        got = bare.get_object(Bucket=bucket, Key=bare_key)["Body"].get_raw_stream().read()
        if got != secret:
            raise RuntimeError("bare CosS3Client read back different bytes")

    def store_once(s: Any, service: str) -> Callable[[], None]:
        def once() -> None:
            s.put(service, secret)
            if s.get(service).reveal() != secret:
                raise RuntimeError("CredentialStore read back a different secret")

        return once

    phases: dict[str, Callable[[], None]] = {
        "bare CosS3Client": bare_once,
        "CredentialStore": store_once(store, "bench"),
        "CredentialStore + outbox": store_once(boxed, "bench-outbox"),
    }
    samples, cpu = interleaved(phases, iterations)
    store.close()
    boxed.close()
    shutil.rmtree(home, ignore_errors=True)
    med = {name: statistics.median(v) for name, v in samples.items()}
    rows: list[dict[str, Any]] = []
    for name, values in samples.items():
        row = latency_row(BENCH, f"put+get 1 KiB, {name} (double, {mode})", values, cpu[name])
        if name != "bare CosS3Client":
            row["baseline"] = f"put+get 1 KiB, bare CosS3Client (double, {mode})"
            row["ratio"] = med[name] / med["bare CosS3Client"]
        if name == "CredentialStore":
            row["target"] = f"<= {TARGET_RATIO}x bare CosS3Client"
            row["ok"] = row["ratio"] <= TARGET_RATIO
        rows.append(row)
    base_cpu = statistics.mean(cpu["bare CosS3Client"])
    rows.append(
        {
            "bench": BENCH,
            "case": f"client CPU per put+get, CredentialStore vs bare CosS3Client (double, {mode})",
            "metric": "x",
            "value": statistics.mean(cpu["CredentialStore"]) / base_cpu,
            "n": len(cpu["CredentialStore"]),
            "note": f"mean CPU {statistics.mean(cpu['CredentialStore']):.2f} ms vs "
            f"{base_cpu:.2f} ms",
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
        value = "-" if row["metric"] in ("x", "-") else f"{row['value']:.2f}"
        print(f"{row['case']:<72} {value:>10} {p99:>8} {ratio:>7}  {ok}", file=file)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    logging.getLogger("qcloud_cos").setLevel(logging.CRITICAL)
    quick = "--quick" in (argv or [])
    iterations = 30 if quick else ITERATIONS * ROUNDS
    wallet = "0x" + secrets.token_hex(20)
    rows: list[dict[str, Any]] = []
    try:
        with double_process() as info:
            env = _setup(info, wallet)
            for mode in ("role-per-tenant", "token-vendor"):
                rows.extend(_measure(info, env, wallet, mode, iterations))
    except Exception as exc:
        rows.append(
            {
                "bench": BENCH,
                "case": "put+get 1 KiB (Tencent double): not measured",
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
