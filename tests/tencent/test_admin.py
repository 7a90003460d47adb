"""The provisioner: rendered documents, apply/verify/onboard/offboard against the double,
and the command line run as a subprocess."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest
from portable_creds_tencent import admin
from portable_creds_tencent.driver import CosDriver
from portable_creds_tencent.settings import StaticKeys
from portable_creds_tencent.testing import TencentDouble, TestIdentityProvider
from tencentcloud.cam.v20190116 import models as cam_models
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from portable_creds.errors import ConfigurationError

from . import sdk
from .conftest import AUDIENCE, ISSUER, WALLET_A, WALLET_B, Env, key, make_env


@pytest.fixture
def config(env: Env, tmp_path: Path) -> Path:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(env.idp.jwks()))
    cfg = tmp_path / "deploy.json"
    cfg.write_text(
        json.dumps(
            {
                "url": env.url,
                "issuer": ISSUER,
                "audience": [AUDIENCE],
                "jwks-file": str(jwks),
                "vendor-principal": list(env.deployment.vendor_principals),
                "log-bucket": env.deployment.log_bucket,
                "allowed-cidr": ["127.0.0.0/8"],
                "no-require-tls": True,
            }
        )
    )
    return cfg


def run(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    """In-process through ``admin.main`` (the function ``CosDriver.admin_main`` dispatches to)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        code = admin.main(
            list(args),
            stdout=out,
            keys=StaticKeys(env.double.root.secret_id, env.double.root.secret_key),
        )
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def run_subprocess(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    """Through the real CLI (``portable-creds admin cos ...``) when installed."""
    environ = dict(
        os.environ,
        TENCENTCLOUD_SECRET_ID=env.double.root.secret_id,
        TENCENTCLOUD_SECRET_KEY=env.double.root.secret_key,
    )
    cli = Path(sys.executable).parent / "portable-creds"
    cmd = (
        [str(cli), "admin", "cos"]
        if cli.exists()
        else [sys.executable, "-m", "portable_creds_tencent.admin"]
    )
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, env=environ, timeout=120, check=False
    )


def test_render_documents(env: Env, config: Path) -> None:
    proc = run(env, "render", WALLET_A, "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    role = doc["tenant_roles"][0]
    assert role["RoleName"] == f"portable-creds-{WALLET_A}"
    trust = role["TrustPolicy"]["statement"][0]
    assert trust["action"] == ["name/sts:AssumeRoleWithWebIdentity"]
    assert trust["principal"] == {
        "federated": [f"qcs::cam::uin/{env.double.owner_uin}:oidc-provider/portable-creds"]
    }
    assert trust["condition"]["string_equal"] == {
        "oidc:iss": [ISSUER],
        "oidc:aud": [AUDIENCE],
        "oidc:sub": [WALLET_A],
    }
    base = f"qcs::cos:{env.double.region}:uid/{env.double.appid}:{env.bucket}/"
    objects, listing, exact, versioning = role["Policy"]["statement"]
    assert objects["resource"] == [f"{base}bots/{WALLET_A}/*"]
    assert set(objects["action"]) == {
        "name/cos:PutObject",
        "name/cos:GetObject",
        "name/cos:HeadObject",
        "name/cos:DeleteObject",
    }
    assert listing["action"] == ["name/cos:GetBucket"] and listing["resource"] == [base]
    # The exact prefixes the store and migrate list, as COS's documented examples write them.
    omni = __import__("portable_creds.upstream").upstream.actor_omni_hex(WALLET_A)
    assert listing["condition"] == {
        "string_like": {
            "cos:prefix": [f"bots%2F{WALLET_A}%2F*", f"bots%2F{omni}%2Fcredentials%2F*"]
        }
    }
    assert exact["action"] == ["name/cos:GetBucket"] and exact["resource"] == [base]
    assert exact["condition"] == {
        "string_equal": {
            "cos:prefix": [
                f"bots%2F{WALLET_A}%2F",
                f"bots%2F{WALLET_A}%2Fcredentials%2F",
                f"bots%2F{omni}%2Fcredentials%2F",
            ]
        }
    }
    assert versioning["action"] == ["name/cos:GetBucketVersioning"]
    vendor = doc["vendor_role"]
    assert vendor["Policy"]["statement"][0]["resource"] == [f"{base}bots/*"]
    assert vendor["TrustPolicy"]["statement"][0]["principal"] == {
        "qcs": list(env.deployment.vendor_principals)
    }
    assert doc["oidc_provider"]["ClientId"] == [AUDIENCE]
    assert json.loads(__import__("base64").b64decode(doc["oidc_provider"]["IdentityKey"])) == (
        env.idp.jwks()
    )
    deny = doc["bucket_policy"]["statement"]
    assert [s["condition"] for s in deny] == [{"ip_not_equal": {"qcs:ip": ["127.0.0.0/8"]}}]
    lifecycle = ET.fromstring(doc["lifecycle_xml"])
    assert [r.findtext("Filter/Prefix") for r in lifecycle.findall("Rule")] == ["bots/"]
    xml = run(env, "render", "--config", str(config), "--document", "lifecycle")
    assert ET.fromstring(xml.stdout).tag == "LifecycleConfiguration"


def test_render_with_tls_and_expiry(env: Env, config: Path) -> None:
    cfg = json.loads(config.read_text())
    del cfg["no-require-tls"]
    cfg["expire-days"] = 90
    config.write_text(json.dumps(cfg))
    doc = json.loads(run(env, "render", "--config", str(config)).stdout)
    conditions = [s["condition"] for s in doc["bucket_policy"]["statement"]]
    assert {"bool_equal": {"cos:secure-transport": "false"}} in conditions
    assert doc["lifecycle"]["Rule"][1]["Expiration"] == {"Days": "90"}


def test_verify_is_clean_then_reports_and_repairs_drift(env: Env, config: Path) -> None:
    proc = run(env, "verify", "--config", str(config))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    root = sdk.root_cos(env.double)
    root.put_bucket_policy(
        Bucket=env.bucket,
        Policy={
            "version": "2.0",
            "statement": [
                {
                    "effect": "deny",
                    "principal": {"qcs": ["*"]},
                    "action": ["name/cos:DeleteBucket"],
                    "resource": ["*"],
                }
            ],
        },
    )
    upd = cam_models.UpdateAssumeRolePolicyRequest()
    upd.RoleName = f"portable-creds-{WALLET_B}"
    upd.PolicyDocument = json.dumps(
        {
            "version": "2.0",
            "statement": [
                {
                    "effect": "allow",
                    "action": ["name/sts:AssumeRoleWithWebIdentity"],
                    "principal": {"federated": ["qcs::cam::uin/1:oidc-provider/x"]},
                }
            ],
        }
    )
    sdk.cam(env.double).UpdateAssumeRolePolicy(upd)
    proc = run(env, "verify", "--config", str(config))
    assert proc.returncode == 1
    assert "DRIFT: bucket policy differs" in proc.stdout
    assert f"DRIFT: role portable-creds-{WALLET_B} trust policy differs" in proc.stdout
    assert run(env, "apply", "--config", str(config)).returncode == 0
    fixed = run(env, "onboard", WALLET_B, "--config", str(config))
    assert fixed.returncode == 0 and "updated trust policy" in fixed.stdout
    assert run(env, "verify", "--config", str(config)).returncode == 0


def test_apply_is_idempotent(env: Env) -> None:
    again = env.provisioner.apply()
    assert not [line for line in again if line.startswith(("created", "updated", "attached"))]
    assert env.provisioner.onboard(WALLET_A) == []


def test_offboard_removes_access_and_optionally_data(env: Env, config: Path) -> None:
    env.open(WALLET_B).put(key(WALLET_B), b"b")
    env.open(WALLET_A).put(key(WALLET_A), b"a")
    proc = run(env, "offboard", WALLET_B, "--delete-data", "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    with pytest.raises(ConfigurationError):
        env.open(WALLET_B)
    assert env.double.object_keys(env.bucket) == [key(WALLET_A)]
    assert env.open(WALLET_A).get(key(WALLET_A)).data == b"a"
    assert run(env, "verify", "--config", str(config)).returncode == 0


def test_cli_as_a_subprocess(env: Env, config: Path) -> None:
    proc = run_subprocess(env, "verify", "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    assert "deployed matches rendered" in proc.stdout
    assert run_subprocess(env, "onboard", "--config", str(config)).returncode == 2


def test_admin_main_dispatch_and_configuration_errors(env: Env, config: Path) -> None:
    assert CosDriver.admin_main(["bogus"]) == 2
    missing = run(env, "render")
    assert missing.returncode == ConfigurationError.exit_code
    assert "--url" in missing.stderr


WALLET_NEW = "0x" + "c3" * 20


def test_onboard_a_wallet_the_account_has_never_seen(env: Env, config: Path) -> None:
    """CAM answers GetRole on a missing role with InvalidParameter.RoleNotExist (the double
    does too): onboarding, offboarding twice and verify must all treat it as "absent"."""
    get = cam_models.GetRoleRequest()
    get.RoleName = f"portable-creds-{WALLET_NEW}"
    with pytest.raises(TencentCloudSDKException) as exc:
        sdk.cam(env.double).GetRole(get)
    assert exc.value.get_code() == "InvalidParameter.RoleNotExist"
    proc = run(env, "onboard", WALLET_NEW, "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    assert f"created role portable-creds-{WALLET_NEW}" in proc.stdout
    store = env.open(WALLET_NEW)
    store.put(key(WALLET_NEW), b"new")
    assert store.get(key(WALLET_NEW)).data == b"new"
    assert run(env, "verify", "--config", str(config)).returncode == 0
    first = run(env, "offboard", WALLET_NEW, "--config", str(config))
    assert first.returncode == 0, first.stderr
    second = run(env, "offboard", WALLET_NEW, "--config", str(config))
    assert second.returncode == 0, second.stderr
    assert "nothing to do" in second.stdout
    assert run(env, "verify", "--config", str(config)).returncode == 0


def test_verify_reports_a_missing_role_instead_of_failing(env: Env, config: Path) -> None:
    cam = sdk.cam(env.double)
    role = "portable-creds-vendor"
    attached = cam_models.ListAttachedRolePoliciesRequest()
    attached.RoleName, attached.Page, attached.Rp = role, 1, 20
    for pol in cam.ListAttachedRolePolicies(attached).List:
        detach = cam_models.DetachRolePolicyRequest()
        detach.PolicyId, detach.DetachRoleName = pol.PolicyId, role
        cam.DetachRolePolicy(detach)
    delete = cam_models.DeleteRoleRequest()
    delete.RoleName = role
    cam.DeleteRole(delete)
    proc = run(env, "verify", "--config", str(config))
    assert proc.returncode == 1, proc.stderr
    assert f"DRIFT: role {role} is missing" in proc.stdout
    assert run(env, "apply", "--config", str(config)).returncode == 0
    assert run(env, "verify", "--config", str(config)).returncode == 0


def test_drift_checks_compare_documents_by_meaning(env: Env, config: Path) -> None:
    """The double hands documents back the way CAM/COS do (one-item lists collapsed,
    capitalised COS keys, rewritten principals): verify stays clean, apply rewrites nothing."""
    get = cam_models.GetRoleRequest()
    get.RoleName = f"portable-creds-{WALLET_A}"
    stored = json.loads(sdk.cam(env.double).GetRole(get).RoleInfo.PolicyDocument)
    assert stored["statement"][0]["action"] == "name/sts:AssumeRoleWithWebIdentity"
    bp = json.loads(sdk.root_cos(env.double).get_bucket_policy(Bucket=env.bucket)["Policy"])
    assert "Statement" in bp and "statement" not in bp
    assert run(env, "verify", "--config", str(config)).returncode == 0
    again = run(env, "apply", "--config", str(config))
    assert "updated" not in again.stdout
    assert run(env, "onboard", WALLET_A, "--config", str(config)).stdout.strip() == "nothing to do"


def test_a_versioned_bucket_is_reported_by_apply_and_verify(env: Env, config: Path) -> None:
    assert env.open(WALLET_A).capabilities.create_only
    sdk.root_cos(env.double).put_bucket_versioning(Bucket=env.bucket, Status="Enabled")
    applied = run(env, "apply", "--config", str(config))
    assert applied.returncode == 1
    assert "PROBLEM: bucket" in applied.stdout and "versioning Enabled" in applied.stdout
    verified = run(env, "verify", "--config", str(config))
    assert verified.returncode == 1 and "x-cos-forbid-overwrite" in verified.stdout
    # Suspending does not help: the bucket has had versioning.
    sdk.root_cos(env.double).put_bucket_versioning(Bucket=env.bucket, Status="Suspended")
    store = env.open(WALLET_A)
    assert store.capabilities.create_only is False and store.versioned is True
    store.put(key(WALLET_A), b"first")
    with pytest.raises(ConfigurationError, match="versioning"):
        store.put(key(WALLET_A), b"second", if_none_match=True)
    assert store.get(key(WALLET_A)).data == b"first"


def test_role_quota_warns_near_and_refuses_beyond(
    double_factory: Callable[..., TencentDouble], idp: TestIdentityProvider
) -> None:
    double = double_factory(role_quota=6)
    env = make_env(double, idp)  # vendor role + 2 tenants = 3 roles
    d = attrs.evolve(env.deployment, role_quota=5)
    prov = admin.Provisioner(d, StaticKeys(double.root.secret_id, double.root.secret_key))
    assert prov.onboard("0x" + "01" * 20)  # 4 of 5: at the warning threshold
    assert prov.warnings and "token-vendor" in prov.warnings[0]
    assert prov.verify() == [] and prov.warnings
    prov.onboard("0x" + "02" * 20)  # 5 of 5
    with pytest.raises(ConfigurationError, match="token-vendor"):
        prov.onboard("0x" + "03" * 20)
    # If the real quota is lower than configured, CAM's InvalidParameter.RoleFull says so.
    loose = admin.Provisioner(
        attrs.evolve(d, role_quota=100), StaticKeys(double.root.secret_id, double.root.secret_key)
    )
    loose.onboard("0x" + "03" * 20)  # 6 of the double's 6
    with pytest.raises(ConfigurationError, match="role quota"):
        loose.onboard("0x" + "04" * 20)


def test_doctor_warns_near_the_role_quota_and_fails_on_a_versioned_bucket(
    env: Env, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``portable-creds doctor``'s drift check runs ``admin cos verify``: the quota warning and
    the versioning problem reach it."""
    import argparse

    from portable_creds.commands import doctor

    cfg = json.loads(config.read_text())
    cfg["role-quota"] = 3  # vendor role + two tenants: 100 % in use
    config.write_text(json.dumps(cfg))
    monkeypatch.setenv("PORTABLE_CREDS_ADMIN_VERIFY", f"--config {config}")
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", env.double.root.secret_id)
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", env.double.root.secret_key)

    def drift_check() -> dict[str, str]:
        cl = doctor.Checklist()
        doctor._drift_check(cl, argparse.Namespace(), env.url)
        return cl.checks[-1]

    check = drift_check()
    assert check["status"] == doctor.WARN, check
    assert "3 of the account's 3 CAM roles" in check["detail"]
    assert "token-vendor" in check["detail"]
    sdk.root_cos(env.double).put_bucket_versioning(Bucket=env.bucket, Status="Enabled")
    check = drift_check()
    assert check["status"] == doctor.FAIL and "versioning" in check["detail"], check
