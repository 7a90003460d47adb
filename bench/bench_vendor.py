"""Load on the token vendor service: concurrent vend requests from 2 tenants, over HTTP.

The Tencent double and the vendor service (``python -m portable_creds_tencent.vendor_service``,
waitress) each run in their own process on loopback; this process is the load: CLIENTS threads
send TOTAL vend requests in all, alternating between two tenants' OIDC tokens, and stop early
at MAX_SECONDS. Reported: requests/s, latency p50/p99, and - checked after the timed window,
with every credential the vendor handed out - that each one reaches its own tenant's prefix
and is refused on the other tenant's (the isolation target: zero cross-tenant credentials).
Baseline in the same run: the same load against an in-process ``TokenVendor`` (no HTTP), so
the ratio is the serving stack's cost.

``python bench/bench_vendor.py [--quick]`` prints the table; ``main()`` returns rows for
bench/report.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from _common import free_port, wait_http
from bench_cos import double_process

BENCH = "vendor"
CLIENTS = int(os.environ.get("BENCH_VENDOR_CLIENTS", "8"))
TOTAL = int(os.environ.get("BENCH_VENDOR_REQUESTS", "400"))
MAX_SECONDS = float(os.environ.get("BENCH_VENDOR_MAX_SECONDS", "120"))
AUDIENCE = "portable-creds-bench"
WALLETS = ("0x" + "a1" * 20, "0x" + "b2" * 20)


def _setup(info: dict[str, Any]) -> dict[str, Any]:
    """Provision the double like a deployment: the IdP, the vendor role, both tenants."""
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
    deployment = Deployment(
        settings=parse_settings(StoreTarget(url=url, wallet=WALLETS[0])),
        issuer=idp.issuer,
        audiences=(AUDIENCE,),
        jwks=idp.jwks(),
        vendor_principals=(f"qcs::cam::uin/{info['owner_uin']}:root",),
        require_tls=False,
    )
    prov = Provisioner(deployment, root)
    prov.apply()
    for wallet in WALLETS:
        prov.onboard(wallet)
    vendor_url = (
        f"{url}&mode=token-vendor&issuer={idp.issuer}&audience={AUDIENCE}"
        f"&jwks_url=http://127.0.0.1:{info['port']}/.oidc/portable-creds/jwks.json"
    )
    return {"idp": idp, "url": url, "vendor_url": vendor_url, "bucket": bucket, "root": root}


@contextlib.contextmanager
def vendor_process(env: dict[str, Any]) -> Iterator[str]:
    """The vendor service as operators run it; the vendor key only in its environment."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "portable_creds_tencent.vendor_service",
            "--url",
            env["vendor_url"],
            "--listen",
            f"127.0.0.1:{port}",
        ],
        env={
            **os.environ,
            "TENCENTCLOUD_SECRET_ID": env["root"].secret_id,
            "TENCENTCLOUD_SECRET_KEY": env["root"].secret_key,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/v1/credentials")
        yield url
    finally:
        proc.terminate()  # SIGTERM: the graceful path
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


Vend = Callable[[str, str], Any]


def _load(vend: Vend, tokens: dict[str, str]) -> dict[str, Any]:
    """CLIENTS threads share TOTAL requests (alternating tenants), bounded by MAX_SECONDS."""
    lock = threading.Lock()
    issued = 0
    deadline = time.monotonic() + MAX_SECONDS
    latencies: list[float] = []
    vended: list[tuple[str, Any]] = []
    errors: list[str] = []

    def worker() -> None:
        nonlocal issued
        while True:
            with lock:
                if issued >= TOTAL or time.monotonic() > deadline:
                    return
                wallet = WALLETS[issued % 2]
                issued += 1
            t0 = time.perf_counter()
            try:
                creds = vend(tokens[wallet], wallet)
            except Exception as exc:  # counted, not fatal: the row says how many
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            elapsed = (time.perf_counter() - t0) * 1000
            with lock:
                latencies.append(elapsed)
                vended.append((wallet, creds))

    threads = [threading.Thread(target=worker) for _ in range(CLIENTS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return {"latencies": latencies, "vended": vended, "errors": errors, "wall": wall}


def _cross_tenant(info: dict[str, Any], env: dict[str, Any], vended: list[tuple[str, Any]]) -> int:
    """How many credentials reach the *other* tenant's prefix or fail on their own (want 0)."""
    from qcloud_cos import CosConfig, CosS3Client
    from qcloud_cos.cos_exception import CosServiceError

    def status(client: Any, key: str) -> int:
        try:
            client.head_object(Bucket=env["bucket"], Key=key)
        except CosServiceError as exc:
            return int(exc.get_status_code())
        return 200

    bad = 0
    for wallet, creds in vended:
        other = WALLETS[1] if wallet == WALLETS[0] else WALLETS[0]
        client = CosS3Client(
            CosConfig(
                Region=info["region"],
                SecretId=creds.access_key_id,
                SecretKey=creds.secret_access_key,
                Token=creds.session_token,
                Scheme="http",
                IP="127.0.0.1",
                Port=info["port"],
            ),
            retry=0,
        )
        own = status(client, f"bots/{wallet}/credentials/probe.enc")
        foreign = status(client, f"bots/{other}/credentials/probe.enc")
        if own != 404 or foreign != 403:
            bad += 1
    return bad


def _rows(mode: str, result: dict[str, Any], baseline: str | None) -> list[dict[str, Any]]:
    lat = result["latencies"]
    n = len(lat)
    rps = n / result["wall"] if result["wall"] else 0.0
    note = (
        f"{n} vends ({CLIENTS} client threads, 2 tenants), {result['wall']:.1f} s; "
        f"{len(result['errors'])} errors"
        + (f" (first: {result['errors'][0]})" if result["errors"] else "")
    )
    throughput: dict[str, Any] = {
        "bench": BENCH,
        "case": f"vend throughput, {mode}",
        "metric": "ops/s",
        "value": rps,
        "n": n,
        "note": note,
    }
    if baseline is not None:
        throughput["baseline"] = baseline
    rows = [throughput]
    if n >= 2:
        rows.append(
            {
                "bench": BENCH,
                "case": f"vend latency, {mode}",
                "metric": "ms",
                "value": statistics.median(lat),
                "p50": statistics.median(lat),
                "p99": statistics.quantiles(lat, n=100)[98],
                "n": n,
                "note": f"per request under {CLIENTS} concurrent clients",
            }
        )
    return rows


def _measure(info: dict[str, Any], env: dict[str, Any]) -> list[dict[str, Any]]:
    from portable_creds_tencent.driver import build_vendor
    from portable_creds_tencent.settings import parse_settings
    from portable_creds_tencent.vendor_service import HttpVendor

    from portable_creds.driver import StoreTarget

    idp = env["idp"]
    tokens = {w: str(idp.mint(w, AUDIENCE, lifetime=3600)) for w in WALLETS}
    settings = parse_settings(StoreTarget(url=env["vendor_url"], wallet=WALLETS[0]))
    direct = build_vendor(
        settings, {"secret_id": env["root"].secret_id, "secret_key": env["root"].secret_key}
    )
    base_case = "vend throughput, in-process TokenVendor (no HTTP)"
    rows = _rows("in-process TokenVendor (no HTTP)", _load(direct.vend, tokens), None)
    with vendor_process(env) as url:
        client = HttpVendor(url)
        served = _load(client.vend, tokens)
    rows.extend(_rows("HTTP vendor service (waitress)", served, base_case))
    bad = _cross_tenant(info, env, served["vended"])
    rows.append(
        {
            "bench": BENCH,
            "case": "credentials reaching the other tenant (every vend checked)",
            "metric": "count",
            "value": float(bad),
            "n": len(served["vended"]),
            "target": "0 of every credential vended under load",
            "ok": bad == 0 and not served["errors"] and len(served["vended"]) > 0,
            "note": "each credential: HEAD own prefix -> 404, other tenant's -> 403",
            "plot": False,
        }
    )
    return rows


def print_table(rows: list[dict[str, Any]], file: Any = sys.stdout) -> None:
    print(f"{'case':<64} {'value':>10} {'p99':>8} {'ratio':>7}  target", file=file)
    by_case = {r["case"]: r for r in rows}
    for row in rows:
        base = by_case.get(row.get("baseline", ""))
        ratio = f"{row['value'] / base['value']:.3f}" if base and base["value"] else "-"
        ok = {True: "ok", False: "MISSED", None: ""}[row.get("ok")]
        p99 = f"{row['p99']:.1f}" if "p99" in row else "-"
        print(
            f"{row['case']:<64} {row['value']:>10.1f} {p99:>8} {ratio:>7}  {ok} {row['metric']}",
            file=file,
        )


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    global TOTAL
    logging.getLogger("qcloud_cos").setLevel(logging.CRITICAL)
    if "--quick" in (argv or []):
        TOTAL = min(TOTAL, 100)
    rows: list[dict[str, Any]] = []
    try:
        with double_process() as info:
            rows.extend(_measure(info, _setup(info)))
    except Exception as exc:
        rows.append(
            {
                "bench": BENCH,
                "case": "vend under load: not measured",
                "metric": "-",
                "value": float("nan"),
                "note": f"{type(exc).__name__}: {exc}"[:300],
                "plot": False,
            }
        )
    print_table(rows)
    return rows


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main(sys.argv[1:])
