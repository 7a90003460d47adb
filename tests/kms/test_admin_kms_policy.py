"""``admin s3 --kms-key ARN``: render shows the key policy, apply puts it, verify reports drift.

The CLI runs as a subprocess against the moto server (KMS PutKeyPolicy/GetKeyPolicy are real
there; moto evaluates no key policy, so what the policy *allows* is proven only on AWS).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from typing import Any

import boto3
import pytest
from parliament import analyze_policy_string
from portable_creds_aws.admin import policies as P
from portable_creds_aws.admin.kms_policy import (
    CUSTODIAN_SID,
    MAX_POLICY_BYTES,
    TENANT_SID,
    key_policy,
)
from portable_creds_aws.admin.render_iac import KMS_METADATA, cloudformation, terraform

from portable_creds.errors import ConfigurationError

from ..cloud_fixtures import REGION

CLI = [sys.executable, "-m", "portable_creds.cli", "admin", "s3"]
ACCOUNT = "123456789012"  # moto's default account
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
CUSTODIAN = f"arn:aws:iam::{ACCOUNT}:role/fleet-custodian"


def _args(tag: str, key: str = KEY, *extra: str) -> list[str]:
    return ["--bucket", f"pc-kms-{tag}", "--issuer", f"https://idp-{tag}.example.com",
            "--account-id", ACCOUNT, "--role-name", f"pc-kms-role-{tag}", "--region", REGION,
            "--kms-key", key, *extra]  # fmt: skip


def _cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=120)


def _kms(endpoint: str) -> Any:
    return boto3.client("kms", endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip


def _deployment(**kwargs: Any) -> P.Deployment:
    base: dict[str, Any] = {
        "bucket": "pc-data",
        "issuer": "https://broker.example.com",
        "account_id": ACCOUNT,
        "kms_key": KEY,
    }
    return P.Deployment(**{**base, **kwargs})


# --------------------------------------------------------------------------- render (pure)
def test_render_prints_the_key_policy() -> None:
    out = _cli([*_args("r"), "render"])
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)["kms_key_policy"]
    assert doc["key"] == KEY
    sids = [s["Sid"] for s in doc["policy"]["Statement"]]
    assert sids == ["AccountAdministersTheKey", TENANT_SID]
    assert doc["policy"]["Statement"][1]["Principal"] == {
        "AWS": f"arn:aws:iam::{ACCOUNT}:role/pc-kms-role-r"
    }
    plain = _cli([*_args("r")[:-2], "render"])  # no --kms-key: no key policy rendered
    assert plain.returncode == 0 and "kms_key_policy" not in json.loads(plain.stdout)


def test_custodian_statement_is_granted_only_when_configured() -> None:
    without = key_policy(_deployment())
    assert CUSTODIAN_SID not in [s["Sid"] for s in without["Statement"]]
    out = _cli([*_args("c", KEY, "--kms-custodian", CUSTODIAN), "render"])
    assert out.returncode == 0, out.stderr
    statements = json.loads(out.stdout)["kms_key_policy"]["policy"]["Statement"]
    (custodian,) = [s for s in statements if s["Sid"] == CUSTODIAN_SID]
    assert custodian["Principal"] == {"AWS": CUSTODIAN}
    assert set(custodian["Action"]) == {"kms:GenerateDataKey", "kms:Decrypt"}
    # Any wallet, but only our context shape: a blob's data key, nothing else.
    assert "StringEquals" not in custodian["Condition"]
    assert set(custodian["Condition"]["ForAllValues:StringEquals"]["kms:EncryptionContextKeys"]) \
        == {"pc_wallet", "pc_service", "pc_storage_key"}  # fmt: skip
    assert custodian["Condition"]["Null"] == {"kms:EncryptionContext:pc_wallet": "false"}


@pytest.mark.parametrize("custodian", [None, CUSTODIAN])
def test_parliament_passes_with_and_without_the_custodian(custodian: str | None) -> None:
    doc = key_policy(_deployment(kms_custodian=custodian))
    findings = analyze_policy_string(json.dumps(doc), ignore_private_auditors=True).findings
    # RESOURCE_STAR only: "*" in a key policy means this key (see test_aws_key_policy.py).
    assert [f"{f.issue}: {f.detail}" for f in findings if f.issue != "RESOURCE_STAR"] == []


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--strategy", "role-per-tenant"], "role-per-tenant"),
        (["--strategy", "per-tenant"], "per-tenant"),
        (["--kms-custodian", "alice"], "--kms-custodian"),
    ],
)
def test_unsupported_combinations_are_refused(extra: list[str], needle: str) -> None:
    out = _cli([*_args("x"), *extra, "render"])
    assert out.returncode == ConfigurationError.exit_code, out.stdout
    assert needle in out.stderr


def test_sharded_revocation_names_every_shard_role_within_the_size_limit() -> None:
    doc = key_policy(_deployment(revocation="sharded", kms_custodian=CUSTODIAN))
    (tenant,) = [s for s in doc["Statement"] if s["Sid"] == TENANT_SID]
    principals = tenant["Principal"]["AWS"]
    assert len(principals) == 256 == len(set(principals))
    assert principals[0] == f"arn:aws:iam::{ACCOUNT}:role/agentkeys-data-role-00"
    assert principals[-1] == f"arn:aws:iam::{ACCOUNT}:role/agentkeys-data-role-ff"
    assert len(json.dumps(doc, separators=(",", ":"))) < MAX_POLICY_BYTES
    findings = analyze_policy_string(json.dumps(doc), ignore_private_auditors=True).findings
    assert [f"{f.issue}: {f.detail}" for f in findings if f.issue != "RESOURCE_STAR"] == []


def test_custodian_needs_a_key_and_the_key_must_be_an_arn() -> None:
    with pytest.raises(ConfigurationError, match="needs --kms-key"):
        _deployment(kms_key=None, kms_custodian=CUSTODIAN)
    with pytest.raises(ConfigurationError, match="not a KMS key ARN"):
        _deployment(kms_key="alias/creds")
    with pytest.raises(ConfigurationError, match="no KMS"):
        _deployment(flavor="rgw", account_id="", strategy="per-tenant")


def test_iac_renders_carry_the_key_policy() -> None:
    d = _deployment(kms_custodian=CUSTODIAN)
    meta = cloudformation(d)["Metadata"][KMS_METADATA]
    assert meta["KeyArn"] == KEY and meta["KeyPolicy"] == key_policy(d)
    tf = terraform(d)["resource"]["aws_kms_key_policy"]["credentials"]
    assert tf["key_id"] == KEY
    assert "$${aws:PrincipalTag/agentkeys_user_wallet}" in tf["policy"]  # a literal, not a var
    assert json.loads(tf["policy"].replace("$${", "${")) == key_policy(d)
    assert "Metadata" not in cloudformation(_deployment(kms_key=None))
    assert "aws_kms_key_policy" not in terraform(_deployment(kms_key=None))["resource"]


# --------------------------------------------------------------------------- moto
def test_apply_puts_the_policy_and_verify_reports_drift(moto_endpoint: str) -> None:
    kms = _kms(moto_endpoint)
    key = str(kms.create_key()["KeyMetadata"]["Arn"])
    tag = secrets.token_hex(4)
    args = [*_args(tag, key, "--kms-custodian", CUSTODIAN), "--endpoint", moto_endpoint]

    before = _cli([*args, "verify"])
    assert before.returncode == 1
    assert f"{key}: key policy statement {TENANT_SID!r} is missing" in before.stdout

    applied = _cli([*args, "apply"])
    assert applied.returncode == 0, applied.stderr
    assert f"key policy on {key}" in applied.stdout
    live = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    rendered = json.loads(_cli([*args, "render"]).stdout)["kms_key_policy"]["policy"]
    assert live == rendered
    ok = _cli([*args, "verify"])
    assert ok.returncode == 0, ok.stdout + ok.stderr

    # Same meaning, other spelling (singleton lists, statement order): no drift.
    respelled = json.loads(json.dumps(live))
    respelled["Statement"].reverse()
    respelled["Statement"][0]["Principal"]["AWS"] = [respelled["Statement"][0]["Principal"]["AWS"]]
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(respelled))
    assert _cli([*args, "verify"]).returncode == 0

    # A widened tenant statement (the wallet condition dropped in the console) is drift.
    widened = json.loads(json.dumps(live))
    (tenant,) = [s for s in widened["Statement"] if s["Sid"] == TENANT_SID]
    del tenant["Condition"]["StringEquals"]
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(widened))
    drift = _cli([*args, "verify"])
    assert drift.returncode == 1
    assert f"{key}: key policy statement {TENANT_SID!r} differs from the rendered one" in (
        drift.stdout
    )
    # Verified without the custodian, the custodian's statement is "not ours".
    no_custodian = _cli([*_args(tag, key), "--endpoint", moto_endpoint, "verify"])
    assert f"statement {CUSTODIAN_SID!r} is not ours" in no_custodian.stdout

    assert _cli([*args, "apply"]).returncode == 0
    assert _cli([*args, "verify"]).returncode == 0


def test_sharded_apply_puts_the_policy_after_the_shard_roles(moto_endpoint: str) -> None:
    kms = _kms(moto_endpoint)
    key = str(kms.create_key()["KeyMetadata"]["Arn"])
    args = [*_args(secrets.token_hex(4), key), "--revocation", "sharded",
            "--endpoint", moto_endpoint]  # fmt: skip
    applied = _cli([*args, "apply"])
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.rstrip().endswith(f"key policy on {key}: tenants use only their own "
                                            "wallet's context")  # fmt: skip
    live = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    (tenant,) = [s for s in live["Statement"] if s["Sid"] == TENANT_SID]
    assert len(tenant["Principal"]["AWS"]) == 256
    ok = _cli([*args, "verify"])
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_verify_names_a_key_that_does_not_exist(moto_endpoint: str) -> None:
    tag = secrets.token_hex(4)
    args = [*_args(tag), "--endpoint", moto_endpoint]
    assert _cli([*args, "apply"]).returncode != 0  # PutKeyPolicy on a missing key fails
    out = _cli([*args, "verify"])
    assert out.returncode == 1
    assert f"KMS key {KEY} does not exist" in out.stdout


def test_doctor_reports_key_policy_drift(moto_endpoint: str, tmp_path: Any) -> None:
    """``portable-creds doctor`` runs the provisioner's verify (``admin_verify``), so a drifted
    key policy shows up there too."""
    kms = _kms(moto_endpoint)
    key = str(kms.create_key()["KeyMetadata"]["Arn"])
    tag = secrets.token_hex(4)
    args = [*_args(tag, key), "--endpoint", moto_endpoint]
    assert _cli([*args, "apply"]).returncode == 0
    kms.put_key_policy(
        KeyId=key,
        PolicyName="default",
        Policy=json.dumps({"Version": "2012-10-17", "Statement": key_policy(
            _deployment(kms_key=key, role_name=f"pc-kms-role-{tag}"))["Statement"][:1]}),
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PORTABLE_CREDS_"))}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        PORTABLE_CREDS_HOME=str(tmp_path),
        PORTABLE_CREDS_ADMIN_VERIFY=" ".join(args),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )
    url = f"s3://pc-kms-{tag}?endpoint={moto_endpoint}&region={REGION}"
    out = subprocess.run(
        [sys.executable, "-m", "portable_creds.cli", "--backend", url, "doctor", "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert "policy drift" in out.stdout, out.stdout + out.stderr
    (check,) = [c for c in json.loads(out.stdout)["checks"] if c["name"] == "policy drift"]
    assert check["status"] != "ok"
    assert TENANT_SID in json.dumps(check)
