"""End to end, as the issue asks: tenants store on Ceph RGW through their own federated
identities -> ``portable-creds copy --all-wallets`` (a subprocess) to the Tencent double, verbatim
-> every secret reads back identically through the tenants' own federated COS stores -> copied
back to ``local://`` under a new root secret (re-seal) -> identical again. A run killed midway
resumes and completes; a second run does nothing; a tampered source blob is reported and blocks
``--delete-source`` for its wallet (only)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from portable_creds_aws.testing.oidc import OidcIssuer
from portable_creds_aws.testing.rgw import RgwEndpoint

from portable_creds.local import LocalObjectStore
from portable_creds.secret_key import SecretKeySource
from portable_creds.store import CredentialStore

from ..cloud_fixtures import REGION, RgwDeployment, random_wallet
from .conftest import CLI, Env, clean_env, own_rgw_deployment, run_cli, setup_requests, write_secret

SERVICES = ("openai", "github", "stripe", "aws")


@pytest.fixture(scope="module")
def rgw_fleet(rgw: RgwEndpoint, oidc: OidcIssuer) -> RgwDeployment:
    return own_rgw_deployment(rgw, oidc, "pc-copy-e2e")


def value(wallet: str, service: str) -> bytes:
    return f"{service} key of {wallet}: ".encode() + secrets.token_bytes(24)


def copy_json(args: list[str], environ: dict[str, str]) -> tuple[int, dict[str, Any]]:
    proc = run_cli(["copy", *args, "--json", "--quiet"], environ)
    assert proc.stdout, proc.stderr.decode()
    return proc.returncode, json.loads(proc.stdout)


def test_fleet_moves_rgw_to_tencent_and_back_to_local(
    rgw_fleet: RgwDeployment, cos: Env, tmp_path: Path
) -> None:
    root_a = os.urandom(32)
    keys_a = SecretKeySource(root_a)
    secret_a = write_secret(tmp_path / "root-a.key", root_a)
    secret_b = write_secret(tmp_path / "root-b.key", os.urandom(32))
    wallets = sorted(random_wallet() for _ in range(3))
    stored: dict[str, dict[str, bytes]] = {}
    for w in wallets:
        rgw_fleet.provisioner.onboard(w)
        cos.provisioner.onboard(w)
        with CredentialStore(rgw_fleet.object_store(w), keys_a, w) as tenant_store:
            stored[w] = {s: value(w, s) for s in SERVICES}
            for s, v in stored[w].items():
                tenant_store.put(s, v)
    total = len(wallets) * len(SERVICES)
    source = f"s3://{rgw_fleet.bucket}?region={REGION}&endpoint={rgw_fleet.endpoint.url}"
    environ = clean_env(
        tmp_path,
        AWS_ACCESS_KEY_ID=rgw_fleet.endpoint.admin_access_key,
        AWS_SECRET_ACCESS_KEY=rgw_fleet.endpoint.admin_secret_key,
        TENCENTCLOUD_SECRET_ID=cos.double.root.secret_id,
        TENCENTCLOUD_SECRET_KEY=cos.double.root.secret_key,
    )

    # 1. Killed midway: the double answers 2 items (create-only PUT and read-back each) and
    #    the third PUT, then hangs on the third read-back.
    faults = cos.double.faults
    answered = setup_requests(cos) + 2 * 2 + 1
    faults.delay_next(answered, seconds=0)
    faults.delay_next(1, seconds=30)
    proc = subprocess.Popen(
        [*CLI, "copy", "--from", source, "--to", cos.url, "--all-wallets",
         "--workers", "1", "--verify", "read"],  # one request sequence: the kill point is exact
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120  # a hang guard, not a performance bound
        while faults.injected <= answered and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert faults.injected == answered + 1, "the copy never reached the hanging request"
        proc.kill()
        assert proc.wait(30) == -9
    finally:
        if proc.poll() is None:
            proc.kill()
        faults.clear()

    # 2. Rerun: finishes; what the killed run verified is "already".
    rc, report = copy_json(["--from", source, "--to", cos.url, "--all-wallets"], environ)
    assert rc == 0, report
    assert report["mode"] == "verbatim" and report["payload_checked"] is False
    assert report["counts"]["already"] == 3  # 2 verified, 1 stored but not yet verified
    assert report["counts"]["copied"] + report["counts"]["already"] == total
    assert sorted({i["wallet"] for i in report["items"]}) == wallets

    # 3. A second run does nothing.
    rc, report = copy_json(["--from", source, "--to", cos.url, "--all-wallets"], environ)
    assert rc == 0 and report["counts"]["already"] == total and report["counts"]["copied"] == 0

    # 4. Each tenant reads its secrets through its own federated COS identity.
    for w in wallets:
        with CredentialStore(cos.open(w), keys_a, w) as on_cos:
            assert on_cos.list() == sorted(SERVICES)
            assert {s: on_cos.get(s).reveal() for s in SERVICES} == stored[w]

    # 5. A tampered source blob is reported (the readers' secret is given, so blobs are
    #    opened) and keeps that wallet's source; the others are deleted after verification.
    admin = rgw_fleet.admin_store()
    bad_key = f"bots/{wallets[0]}/credentials/stripe.enc"
    blob = bytearray(admin.get(bad_key).data)
    blob[-5] ^= 0x40
    admin.put(bad_key, bytes(blob))
    rc, report = copy_json(
        [
            "--from", source, "--to", cos.url, "--all-wallets",
            "--secret-file", str(secret_a), "--delete-source",
        ],
        environ,
    )  # fmt: skip
    assert rc == 1 and report["payload_checked"] is True
    failed = [(i["wallet"], i["service"]) for i in report["items"] if i["status"] == "failed"]
    assert failed == [(wallets[0], "stripe")]
    deleted = {r["wallet"]: r["source_deleted"] for r in report["wallets"]}
    assert deleted == {wallets[0]: False, wallets[1]: True, wallets[2]: True}
    assert len(list(admin.list(f"bots/{wallets[0]}/"))) == len(SERVICES)
    assert [list(admin.list(f"bots/{w}/")) for w in wallets[1:]] == [[], []]
    admin.close()

    # 6. Back to a local directory under a new root secret: re-seal, verified by opening.
    local = tmp_path / "local-store"
    back = ["--from", cos.url, "--to", f"local://{local}", "--all-wallets"]
    keys_args = ["--secret-file", str(secret_a), "--to-secret-file", str(secret_b)]
    rc, report = copy_json([*back, *keys_args], environ)
    assert rc == 0 and report["mode"] == "re-seal", report
    assert report["counts"]["copied"] == total
    keys_b = SecretKeySource.from_file(secret_b)
    for w in wallets:
        tenant_local = CredentialStore(LocalObjectStore(local, wallet=w), keys_b, w)
        assert {s: tenant_local.get(s).reveal() for s in SERVICES} == stored[w]
    # ... and the applications switch their backend URL: the CLI reads it as a tenant would.
    got = run_cli(
        ["--backend", f"local://{local}", "--secret-file", str(secret_b),
         "--wallet", wallets[1], "get", "github"],
        environ,
    )  # fmt: skip
    assert got.returncode == 0 and got.stdout == stored[wallets[1]]["github"]
    rc, report = copy_json([*back, *keys_args], environ)
    assert rc == 0 and report["counts"]["already"] == total
