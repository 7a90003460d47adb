"""``portable-creds admin s3 ...`` run as a subprocess: render, apply, verify, onboard, offboard.

The apply/verify/onboard tests run against RGW's real IAM and then prove the effect with a
tenant session (access granted after onboard, refused after offboard, drift detected).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from portable_creds_aws.admin import policies as P
from portable_creds_aws.admin import tenant_roles as TR

from portable_creds.errors import AccessDenied, ConfigurationError, InvalidToken

from .conftest import RgwDeployment, make_provisioner, random_wallet

CLI = [sys.executable, "-m", "portable_creds.cli", "admin", "s3"]
AWS_ARGS = [
    "--bucket",
    "acme-creds",
    "--issuer",
    "https://broker.example.com",
    "--account-id",
    "123456789012",
    "--region",
    "eu-west-1",
]


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=120)


def statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(doc["Statement"])


# --------------------------------------------------------------------------- render (pure)
def test_render_aws_tag_variable() -> None:
    out = run([*AWS_ARGS, "render"])
    assert out.returncode == 0, out.stderr
    docs = json.loads(out.stdout)
    trust = docs["role"]["trust_policy"]["Statement"][0]
    assert trust["Principal"]["Federated"] == (
        "arn:aws:iam::123456789012:oidc-provider/broker.example.com"
    )
    assert set(trust["Action"]) == {"sts:AssumeRoleWithWebIdentity", "sts:TagSession"}
    assert trust["Condition"]["StringEquals"] == {"broker.example.com:aud": "sts.amazonaws.com"}
    assert trust["Condition"]["Null"] == {"aws:RequestTag/agentkeys_user_wallet": "false"}
    policy = docs["role"]["inline_policies"][P.ISOLATION_POLICY]
    resources = [r for s in statements(policy) for r in s["Resource"]]
    assert "arn:aws:s3:::acme-creds/bots/${aws:PrincipalTag/agentkeys_user_wallet}/*" in resources
    assert all("acme-creds" in r for r in resources)
    # No broad grant: every object resource is inside a tenant's own prefix.
    for s in statements(policy):
        for r in s["Resource"]:
            assert r == "arn:aws:s3:::acme-creds" or "/bots/${aws:PrincipalTag/" in r
    assert docs["bucket"]["public_access_block"] == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    assert docs["bucket"]["ownership_controls"] == {
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]
    }
    assert docs["store_url"].startswith("s3://acme-creds?role_arn=arn:aws:iam::123456789012:role/")


def test_render_rgw_per_tenant_has_no_policy_variables() -> None:
    out = run(
        [
            "--bucket",
            "creds",
            "--issuer",
            "http://127.0.0.1:8080",
            "--flavor",
            "rgw",
            "--strategy",
            "per-tenant",
            "--lifecycle-days",
            "30",
            "--versioning",
            "render",
        ]
    )
    assert out.returncode == 0, out.stderr
    assert "${" not in out.stdout  # RGW rejects or, worse, fails open on them
    docs = json.loads(out.stdout)
    cond = docs["role"]["trust_policy"]["Statement"][0]["Condition"]
    assert cond["StringEquals"] == {"127.0.0.1:8080:app_id": "sts.amazonaws.com"}
    assert "Null" not in cond
    template = docs["tenant_policy_template"]
    for s in statements(template):
        assert s["Condition"]["StringEquals"] == {
            "aws:PrincipalTag/agentkeys_user_wallet": "0x" + "0" * 40
        }
    assert docs["bucket"]["lifecycle"]["Rules"][0]["Expiration"] == {"Days": 30}
    assert docs["bucket"]["versioning"] == "Enabled"


def test_tag_variable_is_refused_on_rgw() -> None:
    out = run(
        [
            "--bucket",
            "creds",
            "--issuer",
            "http://127.0.0.1:8080",
            "--flavor",
            "rgw",
            "--strategy",
            "tag-variable",
            "render",
        ]
    )
    assert out.returncode == ConfigurationError.exit_code
    assert "per-tenant" in out.stderr


def test_missing_settings_are_reported() -> None:
    out = run(["render"])
    assert out.returncode == ConfigurationError.exit_code
    assert "--bucket" in out.stderr


def test_tenant_policy_only_names_its_wallet() -> None:
    d = P.Deployment(
        bucket="creds", issuer="http://127.0.0.1:1", flavor="rgw", strategy="per-tenant"
    )
    w = random_wallet()
    text = json.dumps(P.tenant_policy(d, w.upper().replace("0X", "0x")))
    assert w in text and text.count("0x") == text.count(w)


# --------------------------------------------------------------------------- against RGW
@pytest.mark.rgw
def test_apply_is_idempotent_and_verify_passes(rgw_deployment: RgwDeployment) -> None:
    env = rgw_deployment.admin_env()
    again = run([*rgw_deployment.admin_args(), "apply"], env)
    assert again.returncode == 0, again.stderr
    assert "created" not in again.stdout  # everything already existed
    ok = run([*rgw_deployment.admin_args(), "verify"], env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "matches" in ok.stdout


@pytest.mark.rgw
def test_cli_onboard_grants_and_offboard_revokes(rgw_deployment: RgwDeployment) -> None:
    env = rgw_deployment.admin_env()
    w = random_wallet()
    # role-per-tenant: no role yet, so STS refuses the token (per-tenant: S3 denies).
    with pytest.raises((AccessDenied, InvalidToken)):
        rgw_deployment.store(w).put("github", b"before onboarding")
    on = run([*rgw_deployment.admin_args(), "onboard", w], env)
    assert on.returncode == 0, on.stderr
    listed = run([*rgw_deployment.admin_args(), "tenants"], env)
    assert w in listed.stdout.split()
    store = rgw_deployment.store(w)
    store.put("github", b"after onboarding")
    assert store.get("github").reveal() == b"after onboarding"
    assert run([*rgw_deployment.admin_args(), "verify"], env).returncode == 0
    off = run([*rgw_deployment.admin_args(), "offboard", w], env)
    assert off.returncode == 0, off.stderr
    with pytest.raises((AccessDenied, InvalidToken)):
        rgw_deployment.store(w).get("github")
    again = run([*rgw_deployment.admin_args(), "offboard", w], env)
    assert again.returncode == 3  # NotFound: was not onboarded


@pytest.mark.rgw
def test_verify_reports_drift(rgw_deployment: RgwDeployment) -> None:
    """A broad grant slipped onto a tenant's role is drift, and verify says so."""
    env = rgw_deployment.admin_env()
    iam = rgw_deployment.provisioner.iam
    w = random_wallet()
    rgw_deployment.provisioner.onboard(w)
    role = TR.role_name(rgw_deployment.deployment, w)
    broad = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::*"]}],
    }
    iam.put_role_policy(RoleName=role, PolicyName="oops-broad", PolicyDocument=P.compact(broad))
    try:
        out = run([*rgw_deployment.admin_args(), "verify"], env)
        assert out.returncode == 1
        assert "oops-broad" in out.stdout
        assert "differs" in out.stderr
    finally:
        iam.delete_role_policy(RoleName=role, PolicyName="oops-broad")
    assert run([*rgw_deployment.admin_args(), "verify"], env).returncode == 0


@pytest.mark.rgw
def test_verify_detects_changed_trust_policy(rgw_deployment: RgwDeployment) -> None:
    d = rgw_deployment.deployment
    rgw_deployment.provisioner.onboard(random_wallet())
    other = P.Deployment(
        bucket=d.bucket,
        issuer=d.issuer,
        flavor="rgw",
        strategy=d.strategy,
        audience="another-audience",
        admin_principal=d.admin_principal,
        thumbprints=d.thumbprints,
    )
    prov = make_provisioner(rgw_deployment.endpoint, other)
    diff = prov.verify()
    assert any("another-audience" in line for line in diff)


@pytest.mark.rgw
def test_lifecycle_and_versioning_apply_and_verify(rgw_deployment: RgwDeployment) -> None:
    d = rgw_deployment.deployment
    other = P.Deployment(
        bucket="pc-lifecycle",
        issuer=d.issuer,
        flavor="rgw",
        strategy="per-tenant",
        role_name="pc-lifecycle-role",
        admin_principal=d.admin_principal,
        thumbprints=d.thumbprints,
        lifecycle_days=7,
        versioning=True,
    )
    prov = make_provisioner(rgw_deployment.endpoint, other)
    assert prov.verify() != []  # nothing deployed yet: the diff says so
    changes = prov.apply()
    assert "created bucket pc-lifecycle" in changes
    assert prov.verify() == []
    live = prov.deployed()["bucket"]
    assert live["versioning"] == "Enabled"
    assert live["lifecycle"]["Rules"][0]["Expiration"] == {"Days": 7}
    assert live["public_access_block"]["IgnorePublicAcls"] is True


@pytest.mark.rgw
def test_admin_can_multi_delete_object_versions(rgw_deployment: RgwDeployment) -> None:
    """Teardown and purges empty a bucket version by version through DeleteObjects. On RGW
    that needs ``s3:DeleteObjectVersion`` in the bucket policy, for the objects a tenant
    session wrote and for those the administrator wrote itself (docs/ceph.md)."""
    s3 = rgw_deployment.provisioner.s3
    bucket = rgw_deployment.bucket
    w = random_wallet()
    rgw_deployment.provisioner.onboard(w)
    try:
        rgw_deployment.store(w).put("github", b"tenant-written")
        admin_key = f"admin-scratch/{w}"
        s3.put_object(Bucket=bucket, Key=admin_key, Body=b"admin-written")
        tenant_prefix = f"{rgw_deployment.deployment.prefix}/{w}/"
        items = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for p in (tenant_prefix, admin_key)
            for v in s3.list_object_versions(Bucket=bucket, Prefix=p).get("Versions", [])
        ]
        assert len(items) == 2
        resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": items})
        assert resp.get("Errors", []) == []
        for p in (tenant_prefix, admin_key):
            assert "Versions" not in s3.list_object_versions(Bucket=bucket, Prefix=p)
    finally:
        rgw_deployment.provisioner.offboard(w)
