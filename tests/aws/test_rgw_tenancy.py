"""Tenancy at fleet scale on RGW: concurrent onboard/offboard from threads and processes never
lose an onboard or resurrect an offboarded tenant; ``verify`` compares IAM with the operator's
intended tenant set (so a resurrected tenant is drift); ``migrate-strategy`` moves a live
deployment; and the role-per-tenant trust policy refuses multi-valued / upper-case tags.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from portable_creds_aws.admin import policies as P
from portable_creds_aws.admin import tenant_roles as TR
from portable_creds_aws.admin.migrate import migrate_strategy
from portable_creds_aws.admin.provisioner import Provisioner
from portable_creds_aws.driver import S3Driver
from portable_creds_aws.testing.deployment import rgw_deployment

from portable_creds.driver import StoreTarget
from portable_creds.errors import AccessDenied, InvalidToken
from portable_creds.store import CredentialStore

from .conftest import REGION, RgwDeployment, make_provisioner, random_wallet

pytestmark = pytest.mark.rgw

WRITERS = 8
PER_WRITER = 10
OFFBOARDS = 20
REPO = Path(__file__).resolve().parents[2]


def _fresh(rgw_dep: RgwDeployment, strategy: P.Strategy) -> tuple[P.Deployment, Provisioner]:
    """A deployment of its own (own bucket and role names), so counts are exact."""
    tag = secrets.token_hex(3)
    d = rgw_deployment(
        f"pc-t-{tag}",
        rgw_dep.endpoint,
        rgw_dep.issuer,
        strategy=strategy,
        role_name=f"pc-t-{tag}",
    )
    prov = make_provisioner(rgw_dep.endpoint, d)
    prov.apply()
    return d, prov


def _cfg(rgw_dep: RgwDeployment, d: P.Deployment) -> dict[str, object]:
    return {
        "bucket": d.bucket,
        "issuer": d.issuer,
        "flavor": "rgw",
        "strategy": d.strategy,
        "role_name": d.role_name,
        "admin_principal": d.admin_principal,
        "thumbprints": list(d.thumbprints),
        "endpoint": rgw_dep.endpoint.url,
        "region": REGION,
    }


def _check_exact(prov: Provisioner, expected: set[str]) -> None:
    """The intended set, IAM's live set and ``verify`` all agree with ``expected``."""
    assert set(prov.tenants()) == expected
    assert set(prov.tenancy.live()) == expected
    assert prov.verify() == []


@pytest.mark.parametrize("strategy", ["role-per-tenant", "per-tenant"])
def test_eight_threads_onboarding_with_interleaved_offboards(
    rgw_deployment: RgwDeployment, strategy: P.Strategy
) -> None:
    """The issue's reproduction: 8 threads x 10 onboards left ~60 of 80 and offboards came
    back; now every onboard sticks and no offboarded wallet returns (both strategies)."""
    _, prov = _fresh(rgw_deployment, strategy)
    doomed = [random_wallet() for _ in range(OFFBOARDS)]
    for w in doomed:
        prov.onboard(w)
    batches = [[random_wallet() for _ in range(PER_WRITER)] for _ in range(WRITERS)]
    errors: list[BaseException] = []

    def run(ops: Callable[[], None]) -> None:
        start.wait()
        try:
            ops()
        except BaseException as exc:  # reported below, with the thread's failure
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(lambda b=b: [prov.onboard(w) for w in b],))
        for b in batches
    ]
    threads.append(threading.Thread(target=run, args=(lambda: [prov.offboard(w) for w in doomed],)))
    start: threading.Barrier = threading.Barrier(len(threads))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    _check_exact(prov, {w for b in batches for w in b})


def test_eight_processes_onboarding_with_interleaved_offboards(
    rgw_deployment: RgwDeployment,
) -> None:
    """Separate processes (no shared memory, no in-process lock could help)."""
    d, prov = _fresh(rgw_deployment, "role-per-tenant")
    doomed = [random_wallet() for _ in range(OFFBOARDS)]
    for w in doomed:
        prov.onboard(w)
    batches = [[random_wallet() for _ in range(PER_WRITER)] for _ in range(WRITERS)]
    # Each writer also offboards a share of the doomed wallets, interleaved with its onboards.
    jobs = []
    for i, batch in enumerate(batches):
        mine = doomed[i::WRITERS]
        ops: list[list[str]] = []
        for j, w in enumerate(batch):
            ops.append(["onboard", w])
            if j < len(mine):
                ops.append(["offboard", mine[j]])
        jobs.append({"cfg": _cfg(rgw_deployment, d), "ops": ops})
    env = rgw_deployment.admin_env()
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.aws._tenancy_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        for _ in jobs
    ]
    for proc, job in zip(procs, jobs, strict=True):
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(job))
        proc.stdin.close()
    for proc in procs:
        assert proc.wait(timeout=600) == 0, proc.stderr.read() if proc.stderr else ""
    _check_exact(prov, {w for b in batches for w in b})


@pytest.mark.parametrize("strategy", ["role-per-tenant", "per-tenant"])
def test_a_resurrected_tenant_is_drift(rgw_deployment: RgwDeployment, strategy: P.Strategy) -> None:
    """IAM access for a wallet the operator offboarded (a stale writer put it back) is drift:
    ``verify`` compares with the recorded intent, not with IAM's own view of itself."""
    d, prov = _fresh(rgw_deployment, strategy)
    keep, gone = random_wallet(), random_wallet()
    prov.onboard(keep)
    prov.onboard(gone)
    prov.offboard(gone)
    assert prov.verify() == []
    # What a stale concurrent writer used to do: put the offboarded wallet's grant back.
    if strategy == "role-per-tenant":
        TR.TenantRoles(d, prov.iam).ensure(gone)
    else:
        prov.put_tenant_policy(gone)
    assert prov.tenants() == [keep]
    diff = "\n".join(prov.verify())
    assert gone in diff
    # Re-running the offboard settles it.
    prov.offboard(gone)
    assert prov.verify() == []


def test_a_lost_onboard_is_drift(rgw_deployment: RgwDeployment) -> None:
    d, prov = _fresh(rgw_deployment, "role-per-tenant")
    w = random_wallet()
    prov.onboard(w)
    TR.TenantRoles(d, prov.iam).remove(w)  # IAM lost it
    assert w in "\n".join(prov.verify())
    prov.onboard(w)
    assert prov.verify() == []


def test_migrate_from_per_tenant_to_role_per_tenant(rgw_deployment: RgwDeployment) -> None:
    """An existing per-tenant deployment (no intent records) keeps its tenants and data."""
    old_d, old = _fresh(rgw_deployment, "per-tenant")
    a, b, c = random_wallet(), random_wallet(), random_wallet()
    for w in (a, b, c):
        old.put_tenant_policy(w)  # as the old provisioner did: no intent records
    old.delete_tenant_policy(c)
    store_a = _store(rgw_deployment, old_d, a)
    store_a.put("github", b"written before the migration")

    new_d = P.Deployment(**{**_fields(old_d), "strategy": "role-per-tenant"})
    new = make_provisioner(rgw_deployment.endpoint, new_d)
    out = migrate_strategy(new, "per-tenant")
    assert any("recorded 2 live tenant(s)" in line for line in out)
    assert new.tenants() == sorted([a, b])
    assert new.verify() == []
    assert not old.shared_role_exists()
    # Tenants read their data through the new URL (their own roles); c stays out.
    assert _store(rgw_deployment, new_d, a).get("github").reveal() == (
        b"written before the migration"
    )
    _store(rgw_deployment, new_d, b).put("github", b"b after")
    with pytest.raises((AccessDenied, InvalidToken)):
        _store(rgw_deployment, new_d, c).put("github", b"c is offboarded")
    # Back again, through the CLI, keeping the intent records.
    back = subprocess.run(
        [
            sys.executable,
            "-m",
            "portable_creds.cli",
            "admin",
            "s3",
            *_cli_args(rgw_deployment, old_d),
            "migrate-strategy",
            "--from",
            "role-per-tenant",
        ],
        capture_output=True,
        text=True,
        env=rgw_deployment.admin_env(),
        timeout=300,
    )
    assert back.returncode == 0, back.stderr
    assert old.tenants() == sorted([a, b])
    assert old.verify() == []
    assert TR.TenantRoles(new_d, new.iam).wallets() == []
    assert _store(rgw_deployment, old_d, a).get("github").reveal() == (
        b"written before the migration"
    )


def _fields(d: P.Deployment) -> dict[str, object]:
    import attrs

    return attrs.asdict(d, recurse=False)


def _cli_args(rgw_dep: RgwDeployment, d: P.Deployment) -> list[str]:
    return [
        "--bucket",
        d.bucket,
        "--issuer",
        d.issuer,
        "--flavor",
        "rgw",
        "--strategy",
        d.strategy,
        "--role-name",
        d.role_name,
        "--admin-principal",
        d.admin_principal or "",
        "--thumbprint",
        d.thumbprints[0],
        "--endpoint",
        rgw_dep.endpoint.url,
        "--region",
        REGION,
    ]


def _store(
    rgw_dep: RgwDeployment, d: P.Deployment, wallet: str, token: str | None = None
) -> CredentialStore:
    url = f"s3://{d.bucket}?region={REGION}&endpoint={rgw_dep.endpoint.url}&role_arn={d.role_arn}"
    issuer = rgw_dep.issuer
    source = (lambda: token) if token is not None else (lambda: issuer.token(wallet))
    objects = S3Driver().open_object_store(StoreTarget(url=url, wallet=wallet, token=source))
    return CredentialStore(objects, rgw_dep.keys, wallet)


# --------------------------------------------------------------------------- trust policy
def _tags(*wallets: str) -> dict[str, object]:
    return {
        "https://aws.amazon.com/tags": {
            "principal_tags": {P.TAG_KEY: list(wallets)},
            "transitive_tag_keys": [P.TAG_KEY],
        }
    }


def test_role_trust_refuses_multi_valued_and_upper_case_tags(
    rgw_deployment: RgwDeployment, tenant: Callable[[], str]
) -> None:
    """Measured on RGW 16.2: with plain StringEquals a token tagged [victim, attacker] was
    accepted and the session read every wallet in the list. The tenant role's trust policy
    requires every tag value to be the wallet (ForAllValues) and sub to name it."""
    victim, other = tenant(), tenant()
    d = rgw_deployment.deployment
    _store(rgw_deployment, d, victim).put("github", b"victim secret")
    issuer = rgw_deployment.issuer
    cases = {
        "multi-valued tag, sub = victim": issuer.token(victim, extra=_tags(victim, other)),
        "multi-valued tag, sub = other": issuer.token(other, extra=_tags(other, victim)),
        "upper-case tag": issuer.token(victim, extra=_tags("0x" + victim[2:].upper())),
        "sub of another wallet": issuer.token(other, extra=_tags(victim)),
    }
    for name, token in cases.items():
        store = _store(rgw_deployment, d, victim, token=token)
        with pytest.raises(InvalidToken):
            store.get("github")
            pytest.fail(f"{name}: accepted")
    assert _store(rgw_deployment, d, victim).get("github").reveal() == b"victim secret"
