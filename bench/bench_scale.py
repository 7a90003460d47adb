"""Fleet scale on Ceph RGW: tenant GET/PUT and STS latency vs the number of onboarded tenants.

Two deployments on one local RGW, grown side by side to N = 10, 100, 1,000, 10,000 tenants:

* ``per-tenant`` (the old RGW strategy, baseline): every tenant's inline policy on one shared
  role, which RGW loads on every request. Capped at 1,000 tenants in the full run (at 10,000 a
  request takes ~0.4 s and onboarding ~50 ms a tenant: the issue's measurement) and noted so.
* ``role-per-tenant`` (the RGW default now): one small role per wallet.

At every N, a probe tenant (onboarded first) does GET/PUT of a 1 KiB object with bare boto3
and its own session, interleaved across the strategies (same run, same noise), plus STS
``AssumeRoleWithWebIdentity``. Onboarding time per tenant is the median of sequential
``onboard`` calls at that N (the bulk of each step: 8 threads of ``onboard`` for
role-per-tenant, which is also the concurrent path; the old strategy's own sequential policy
write for the baseline, whose concurrent writes lose each other inside RGW).
Target (issue 13): at the largest N, role-per-tenant tenant GET <= 1.2x its own latency at
N=10.

Measuring that ratio across a run of tens of minutes compares samples taken far apart in time,
so machine noise (other jobs, CPU frequency, the memstore warming) lands in it. A second RGW
cluster therefore holds a *reference* role-per-tenant deployment that stays at N=10, and its
probe's GET is interleaved with the growing deployment's GET at every N. The target is judged
on the interleaved ratio, calibrated by the same ratio at N=10 (where both clusters hold 10
tenants, so it is the clusters' own difference):
``(GET(N)/GET_ref(N)) / (GET(10)/GET_ref(10))``. The plain ``GET(N)/GET(10)`` is reported too.

    .venv/bin/python bench/run_all.py --only scale --no-report [--quick]
"""

from __future__ import annotations

import contextlib
import secrets
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

BENCH = "scale"
REGION = "us-east-1"
FULL_N = (10, 100, 1000, 10000)
QUICK_N = (10, 100, 300)
OLD_CAP_FULL = 1000
"""The old strategy is slow at 10,000 (the shared role is ~10 MB); stop it here."""
STRATEGIES = ("per-tenant", "role-per-tenant")
ITERATIONS = 100
ONBOARD_SAMPLES = 10
TARGET = 1.2


def _wallet() -> str:
    return "0x" + secrets.token_hex(20)


@contextlib.contextmanager
def _cluster() -> Iterator[tuple[Any, Any, Any]]:
    """The measured cluster, the reference cluster (stays at N=10) and one OIDC issuer."""
    from portable_creds_aws.testing.oidc import OidcIssuer
    from portable_creds_aws.testing.rgw import RgwCluster

    with (
        RgwCluster(memstore_bytes=1024 * 1024 * 1024) as rgw,
        RgwCluster(memstore_bytes=256 * 1024 * 1024) as ref,
        OidcIssuer() as issuer,
    ):
        yield rgw, ref, issuer


class Side:
    """One strategy's deployment, its probe tenant and that tenant's bare boto3 client."""

    def __init__(self, rgw: Any, issuer: Any, strategy: str, tag: str = "") -> None:
        from portable_creds_aws.testing.deployment import admin_provisioner, rgw_deployment

        tag = tag or ("old" if strategy == "per-tenant" else "new")
        self.strategy = strategy
        self.rgw = rgw
        self.issuer = issuer
        self.d = rgw_deployment(
            f"pc-scale-{tag}",
            rgw,
            issuer,
            strategy=strategy,  # type: ignore[arg-type]
            role_name=f"pc-scale-{tag}",
        )
        self.prov = admin_provisioner(rgw, self.d, REGION)
        self.prov.apply()
        self.count = 0
        self.probe = _wallet()
        self.onboard(self.probe)
        self.key = f"{self.d.prefix}/{self.probe}/credentials/bench"
        self.client = self._session_client()
        self.client.put_object(Bucket=self.d.bucket, Key=self.key, Body=b"x" * 1024)

    def role_arn(self) -> str:
        return self.d.role_arn.replace("{wallet}", self.probe)

    def onboard(self, wallet: str) -> None:
        self.prov.onboard(wallet)
        self.count += 1

    def assume(self) -> dict[str, str]:
        import boto3
        import botocore
        from botocore.config import Config

        sts = boto3.client(
            "sts",
            endpoint_url=self.rgw.url,
            region_name=REGION,
            config=Config(signature_version=botocore.UNSIGNED),
        )
        got = sts.assume_role_with_web_identity(
            RoleArn=self.role_arn(),
            RoleSessionName="bench-scale",
            WebIdentityToken=self.issuer.token(self.probe, ttl=3600),
            DurationSeconds=3600,
        )["Credentials"]
        return {
            "aws_access_key_id": got["AccessKeyId"],
            "aws_secret_access_key": got["SecretAccessKey"],
            "aws_session_token": got["SessionToken"],
        }

    def _session_client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.rgw.url, region_name=REGION, **self.assume())

    def sts_phase(self) -> Callable[[], object]:
        import boto3
        import botocore
        from botocore.config import Config

        sts = boto3.client(
            "sts",
            endpoint_url=self.rgw.url,
            region_name=REGION,
            config=Config(signature_version=botocore.UNSIGNED),
        )
        tokens = [self.issuer.token(self.probe, ttl=3600) for _ in range(8)]
        arn = self.role_arn()
        i = [0]

        def call() -> object:
            i[0] += 1
            return sts.assume_role_with_web_identity(
                RoleArn=arn,
                RoleSessionName="bench-scale-sts",
                WebIdentityToken=tokens[i[0] % len(tokens)],
                DurationSeconds=3600,
            )

        return call


def _grow(side: Side, n: int) -> float:
    """Onboard up to ``n`` tenants; the median ms of ``ONBOARD_SAMPLES`` sequential onboards."""
    samples: list[float] = []
    for _ in range(min(ONBOARD_SAMPLES, max(0, n - side.count))):
        t0 = time.perf_counter()
        side.onboard(_wallet())
        samples.append((time.perf_counter() - t0) * 1000)
    rest = n - side.count
    if rest > 0:
        wallets = [_wallet() for _ in range(rest)]
        if side.strategy == "per-tenant":
            # Bulk path for the baseline: the old strategy's own write (one inline policy on
            # the shared role), sequential because concurrent writers lose each other's
            # policies inside RGW (issue 13). What is measured is request cost vs N.
            for w in wallets:
                side.prov.put_tenant_policy(w)
        else:
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(side.prov.onboard, wallets))
        side.count += rest
    return statistics.median(samples) if samples else float("nan")


def _get(side: Side) -> Callable[[], object]:
    client, bucket, key = side.client, side.d.bucket, side.key
    return lambda: client.get_object(Bucket=bucket, Key=key)["Body"].read()


def _measure(sides: list[Side], ref: Side, n: int) -> dict[str, dict[str, list[float]]]:
    """One interleaved block per strategy (GET/PUT/STS rotate within it), so the old
    strategy's ~N x 37 µs requests do not queue in front of the new one's. The role-per-tenant
    block also rotates the reference cluster's GET (``GET_ref``, always N=10) in."""
    from _common import interleaved

    out: dict[str, dict[str, list[float]]] = {}
    for s in sides:
        client, bucket, key = s.client, s.d.bucket, s.key
        phases: dict[str, Callable[[], object]] = {
            "GET": _get(s),
            "PUT": lambda c=client, b=bucket, k=key: c.put_object(
                Bucket=b, Key=k, Body=b"y" * 1024
            ),
            "STS": s.sts_phase(),
        }
        if s.strategy == "role-per-tenant":
            phases["GET_ref"] = _get(ref)
        iterations = ITERATIONS if s.strategy == "role-per-tenant" or n <= 100 else 30
        wall, _ = interleaved(phases, iterations, warmup=5)
        out[s.strategy] = wall
    return out


def _row(op: str, strategy: str, n: int, samples: list[float]) -> dict[str, Any]:
    median = statistics.median(samples)
    case = f"tenant {op}, {strategy}, N={n:,}" if op != "STS" else f"STS, {strategy}, N={n:,}"
    base = f"tenant {op}, {strategy}, N=10" if op != "STS" else f"STS, {strategy}, N=10"
    row: dict[str, Any] = {
        "bench": BENCH,
        "case": case,
        "metric": "ms",
        "value": median,
        "p50": median,
        "p99": statistics.quantiles(samples, n=100)[98] if len(samples) > 2 else median,
        "n": len(samples),
        "plot": op == "GET",
        "note": "bare boto3, tenant's own session, 1 KiB, interleaved across strategies",
    }
    if n != 10:
        row["baseline"] = base
    return row


def _ref_row(n: int, get: list[float], get_ref: list[float]) -> dict[str, Any]:
    """GET at N over the reference cluster's GET (N=10), from the same interleaved block."""
    ratio = statistics.median(get) / statistics.median(get_ref)
    return {
        "bench": BENCH,
        "case": f"tenant GET, role-per-tenant, N={n:,} / reference cluster N=10",
        "metric": "x",
        "value": ratio,
        "ref_ms": statistics.median(get_ref),
        "n": len(get),
        "plot": False,
        "note": f"interleaved with a second RGW cluster that stays at 10 tenants "
        f"(its GET {statistics.median(get_ref):.2f} ms in this block)",
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = list(sys.argv[1:] if argv is None else argv)
    quick = "--quick" in args
    levels = QUICK_N if quick else FULL_N
    old_cap = levels[-1] if quick else OLD_CAP_FULL
    rows: list[dict[str, Any]] = []
    try:
        with _cluster() as (rgw, ref_rgw, issuer):
            sides = {s: Side(rgw, issuer, s) for s in STRATEGIES}
            ref_side = Side(ref_rgw, issuer, "role-per-tenant", tag="ref")
            _grow(ref_side, 10)
            for n in levels:
                active = [s for s in sides.values() if s.strategy != "per-tenant" or n <= old_cap]
                for side in active:
                    per_onboard = _grow(side, n)
                    rows.append(
                        {
                            "bench": BENCH,
                            "case": f"onboard one tenant, {side.strategy}, N={n:,}",
                            "metric": "ms",
                            "value": per_onboard,
                            "n": ONBOARD_SAMPLES,
                            "plot": False,
                            "note": "median of sequential `onboard` calls at this N "
                            "(intent record + IAM + re-read)",
                        }
                    )
                    print(f"   {side.strategy}: {side.count} tenants onboarded", flush=True)
                measured = _measure(active, ref_side, n)
                for strategy, ops in measured.items():
                    for op in ("GET", "PUT", "STS"):
                        rows.append(_row(op, strategy, n, ops[op]))
                    if "GET_ref" in ops:
                        rows.append(_ref_row(n, ops["GET"], ops["GET_ref"]))
                print(f"   measured at N={n:,}", flush=True)
    except Exception as exc:
        rows.append(
            {
                "bench": BENCH,
                "case": "scale on RGW: not measured",
                "metric": "-",
                "value": float("nan"),
                "note": f"{type(exc).__name__}: {exc}"[:300],
                "plot": False,
            }
        )
        _print(rows)
        return rows
    by_case = {r["case"]: r for r in rows}
    for row in rows:
        ref = by_case.get(row.get("baseline", ""))
        if ref is not None and ref["value"]:
            row["ratio"] = row["value"] / ref["value"]
    top = levels[-1]
    rows.extend(_targets(rows, top, old_cap, quick))
    _print(rows)
    return rows


def _targets(rows: list[dict[str, Any]], top: int, old_cap: int, quick: bool) -> list[Any]:
    by_case = {r["case"]: r for r in rows}
    out: list[dict[str, Any]] = []
    new_top = by_case.get(f"tenant GET, role-per-tenant, N={top:,}")
    new_10 = by_case.get("tenant GET, role-per-tenant, N=10")
    rel_top = by_case.get(f"tenant GET, role-per-tenant, N={top:,} / reference cluster N=10")
    rel_10 = by_case.get("tenant GET, role-per-tenant, N=10 / reference cluster N=10")
    run = "quick run (smaller N)" if quick else "full run"
    if rel_top and rel_10:
        ratio = rel_top["value"] / rel_10["value"]
        out.append(
            {
                "bench": BENCH,
                "case": f"target: role-per-tenant tenant GET at N={top:,} vs N=10",
                "metric": "x",
                "value": ratio,
                "ratio": ratio,
                "target": f"<= {TARGET}x",
                "ok": ratio <= TARGET,
                "plot": False,
                "note": f"{run}; interleaved against a reference cluster at N=10, calibrated "
                f"by the same ratio at N=10 ({rel_top['value']:.2f} / {rel_10['value']:.2f})",
            }
        )
    if new_top and new_10:
        ratio = new_top["value"] / new_10["value"]
        out.append(
            {
                "bench": BENCH,
                "case": f"role-per-tenant tenant GET at N={top:,} vs N=10, not interleaved",
                "metric": "x",
                "value": ratio,
                "ratio": ratio,
                "plot": False,
                "note": f"{run}; samples taken minutes apart, so machine drift is in it",
            }
        )
    old_top = by_case.get(f"tenant GET, per-tenant, N={old_cap:,}")
    old_10 = by_case.get("tenant GET, per-tenant, N=10")
    if old_top and old_10:
        ratio = old_top["value"] / old_10["value"]
        out.append(
            {
                "bench": BENCH,
                "case": f"baseline: per-tenant tenant GET at N={old_cap:,} vs N=10",
                "metric": "x",
                "value": ratio,
                "ratio": ratio,
                "plot": False,
                "note": f"old strategy, capped at N={old_cap:,}"
                + ("" if quick else " (10,000 is bounded out: ~0.4 s per request)"),
            }
        )
    return out


def _print(rows: list[dict[str, Any]], file: Any = None) -> None:
    print(f"{'case':<60} {'value':>10} {'p99':>8} {'ratio':>7}", file=file)
    for row in rows:
        ratio = f"{row['ratio']:.2f}" if row.get("ratio") is not None else "-"
        ok = {True: "ok", False: "MISSED", None: ""}[row.get("ok")]
        p99 = f"{row['p99']:.2f}" if "p99" in row else "-"
        print(f"{row['case']:<60} {row['value']:>10.2f} {p99:>8} {ratio:>7}  {ok}", file=file)


if __name__ == "__main__":
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
    main(sys.argv[1:])
