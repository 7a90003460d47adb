"""``admin s3 render --format cloudformation|terraform`` (issue 11 item 14).

* cfn-lint (AWS's CloudFormation resource schemas) reports nothing on the templates;
* parliament (AWS's IAM action/resource/condition database) reports nothing on any rendered
  identity or resource policy;
* the template deploys into moto's CloudFormation (``testing.moto_cfn`` adds the two resource
  types and the bucket properties moto lacks) and ``verify``, run as the CLI, reports no drift;
* the Terraform JSON carries the same documents (no terraform binary here: its argument names
  follow the hashicorp/aws v5 documentation and are unverified by a tool).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import parliament
import pytest
from cfnlint.api import lint
from portable_creds_aws.admin import policies as P
from portable_creds_aws.admin.render_iac import cloudformation, terraform
from portable_creds_aws.scoping import session_policy_document
from portable_creds_aws.testing.moto_cfn import install

from portable_creds.errors import ConfigurationError

from .conftest import REGION, random_wallet

CLI = [sys.executable, "-m", "portable_creds.cli", "admin", "s3"]
ACCOUNT = "123456789012"  # moto's default account
WALLET = "0x" + "1" * 40


def _deployment(**kwargs: Any) -> P.Deployment:
    tag = secrets.token_hex(4)
    base: dict[str, Any] = {
        "bucket": f"pc-iac-{tag}",
        "issuer": f"https://idp-{tag}.example.com",
        "account_id": ACCOUNT,
        "role_name": f"pc-iac-role-{tag}",
    }
    base.update(kwargs)
    return P.Deployment(**base)


FULL = {
    "lifecycle_days": 30,
    "versioning": True,
    "thumbprints": ("a" * 40,),
    "log_bucket": "acme-logs",
}
VARIANTS = {
    "default": {},
    "full": FULL,
    "per-tenant": {"strategy": "per-tenant", **FULL},
}


# --------------------------------------------------------------------------- cfn-lint
def _lint(template: dict[str, Any]) -> list[str]:
    return [f"{m.rule.id} {m.message} ({m.path})" for m in lint(json.dumps(template))]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_cfn_lint_reports_nothing(variant: str) -> None:
    d = _deployment(**VARIANTS[variant])
    tenants = [WALLET, random_wallet()] if d.strategy == "per-tenant" else None
    assert _lint(cloudformation(d, tenants)) == []


def test_cfn_lint_would_catch_a_wrong_property() -> None:
    """The check can fail: a misspelt property is an error (E3002)."""
    template = cloudformation(_deployment(**FULL))
    rules = template["Resources"]["CredentialBucket"]["Properties"]["LifecycleConfiguration"]
    rules["Rules"][0]["ExpirationInDayz"] = rules["Rules"][0].pop("ExpirationInDays")
    assert any(line.startswith("E") for line in _lint(template))


def test_rgw_has_no_iac_rendering() -> None:
    d = P.Deployment(bucket="creds", issuer="http://127.0.0.1:1", flavor="rgw",
                     strategy="per-tenant")  # fmt: skip
    with pytest.raises(ConfigurationError, match="apply"):
        cloudformation(d)
    with pytest.raises(ConfigurationError, match="apply"):
        terraform(d)


# --------------------------------------------------------------------------- parliament
def _findings(doc: dict[str, Any]) -> list[tuple[str, str]]:
    policy = parliament.analyze_policy_string(json.dumps(doc))
    return [(f.issue, str(f.detail)) for f in policy.findings]


def _policies_in(template: Any) -> Iterator[dict[str, Any]]:
    """Every IAM document in a CloudFormation template (``*PolicyDocument`` properties)."""
    if isinstance(template, dict):
        for key, value in template.items():
            if key.endswith("PolicyDocument") and isinstance(value, dict):
                yield value
            else:
                yield from _policies_in(value)
    elif isinstance(template, list):
        for item in template:
            yield from _policies_in(item)


def _identity_and_resource_policies(d: P.Deployment) -> dict[str, dict[str, Any]]:
    docs: dict[str, Any] = {
        "isolation (tag-variable role policy)": P.isolation_policy(d),
        "tenant (per-tenant role policy)": P.tenant_policy(d, WALLET),
        "offboarded (deny list)": P.offboarded_policy(d, [WALLET, random_wallet()]),
        "session policy (scoped store)": session_policy_document(
            d.bucket, [f"bots/{WALLET}/credentials/github"], read_only=False
        ),
        "bucket policy": P.bucket_policy(d),
        "log bucket policy": P.log_bucket_policy(d),
    }
    template = cloudformation(d, [WALLET])
    for i, doc in enumerate(_policies_in(template)):
        if "Principal" in json.dumps(doc) and "Federated" in json.dumps(doc):
            continue  # the trust policy: below
        docs[f"template document {i}"] = doc
    return {name: doc for name, doc in docs.items() if doc is not None}


@pytest.mark.parametrize("strategy", ["tag-variable", "per-tenant"])
def test_parliament_finds_nothing_in_identity_and_resource_policies(strategy: str) -> None:
    d = _deployment(strategy=strategy, **FULL)
    found = {name: _findings(doc) for name, doc in _identity_and_resource_policies(d).items()}
    assert {name: f for name, f in found.items() if f} == {}
    assert len(found) >= 7


def test_parliament_would_catch_a_wrong_action() -> None:
    doc = P.isolation_policy(_deployment())
    doc["Statement"][0]["Action"] = ["s3:GetObjekt"]
    assert _findings(doc) != []


def test_trust_policy_findings_are_only_parliaments_known_blind_spots() -> None:
    """parliament knows only SAML and four public web-identity providers as federated
    principals, and checks every document as an identity policy (which needs a Resource).
    An OIDC provider ARN is what AWS documents for web identity, and IAM refuses a Resource in
    a trust policy (MalformedPolicyDocument), so exactly these two findings remain."""
    d = _deployment()
    issues = sorted(_findings(P.trust_policy(d)))
    assert issues == [
        ("MALFORMED", "Statement contains neither Resource nor NotResource"),
        ("UNKNOWN_FEDERATION_SOURCE", d.provider_arn),
    ]


# --------------------------------------------------------------------------- moto deploy
def _admin_args(d: P.Deployment, endpoint: str) -> list[str]:
    args = ["--bucket", d.bucket, "--issuer", d.issuer, "--account-id", ACCOUNT,
            "--role-name", d.role_name, "--endpoint", endpoint, "--region", REGION]  # fmt: skip
    if d.lifecycle_days:
        args += ["--lifecycle-days", str(d.lifecycle_days)]
    if d.versioning:
        args += ["--versioning"]
    for thumbprint in d.thumbprints:
        args += ["--thumbprint", thumbprint]
    if d.log_bucket:
        args += ["--log-bucket", d.log_bucket]
    return args


def _cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=120,
                          check=False)  # fmt: skip


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip


def test_template_deploys_into_moto_cloudformation_without_drift(moto_endpoint: str) -> None:
    install(moto_endpoint, REGION)
    log_bucket = f"pc-iac-logs-{secrets.token_hex(4)}"
    d = _deployment(**{**FULL, "log_bucket": log_bucket})
    s3 = _client("s3", moto_endpoint)
    # The operator's log bucket, with the statement render tells them to merge.
    s3.create_bucket(Bucket=log_bucket)
    s3.put_bucket_policy(Bucket=log_bucket, Policy=json.dumps(P.log_bucket_policy(d)))

    rendered = _cli([*_admin_args(d, moto_endpoint), "render", "--format", "cloudformation"])
    assert rendered.returncode == 0, rendered.stderr
    assert _lint(json.loads(rendered.stdout)) == []
    cfn = _client("cloudformation", moto_endpoint)
    stack = f"pc-iac-{secrets.token_hex(3)}"
    cfn.create_stack(StackName=stack, TemplateBody=rendered.stdout)
    (described,) = cfn.describe_stacks(StackName=stack)["Stacks"]
    assert described["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    assert outputs["DataRoleArn"] == d.role_arn

    verified = _cli([*_admin_args(d, moto_endpoint), "verify"])
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "matches" in verified.stdout

    # And verify is not blind here: a weakened PublicAccessBlock is drift.
    s3.put_public_access_block(
        Bucket=d.bucket,
        PublicAccessBlockConfiguration={**P.public_access_block(d), "BlockPublicPolicy": False},
    )
    drift = _cli([*_admin_args(d, moto_endpoint), "verify"])
    assert drift.returncode == 1 and "BlockPublicPolicy" in drift.stdout


# --------------------------------------------------------------------------- terraform
def test_terraform_json_carries_the_same_documents() -> None:
    d = _deployment(**FULL)
    rendered = _cli([*_admin_args(d, "http://127.0.0.1:1"), "render", "--format", "terraform"])
    assert rendered.returncode == 0, rendered.stderr
    tf = json.loads(rendered.stdout)
    r = tf["resource"]

    def literal(text: str) -> Any:  # undo Terraform's template escaping
        return json.loads(text.replace("$${", "${").replace("%%{", "%{"))

    assert r["aws_s3_bucket"]["credentials"]["bucket"] == d.bucket
    pab = r["aws_s3_bucket_public_access_block"]["credentials"]
    assert all(pab[k] is True for k in ("block_public_acls", "ignore_public_acls",
                                          "block_public_policy", "restrict_public_buckets"))
    assert r["aws_s3_bucket_ownership_controls"]["credentials"]["rule"] == {
        "object_ownership": "BucketOwnerEnforced"
    }
    rules = r["aws_s3_bucket_lifecycle_configuration"]["credentials"]["rule"]
    assert rules[0]["noncurrent_version_expiration"] == {"noncurrent_days": 30}
    assert rules[1]["expiration"] == {"expired_object_delete_marker": True}
    assert literal(r["aws_s3_bucket_policy"]["credentials"]["policy"]) == P.bucket_policy(d)
    assert literal(r["aws_iam_role"]["data"]["assume_role_policy"]) == P.trust_policy(d)
    (policy,) = r["aws_iam_role_policy"].values()
    # The policy variable survives Terraform's interpolation only when escaped.
    assert "$${aws:PrincipalTag/agentkeys_user_wallet}" in policy["policy"]
    assert literal(policy["policy"]) == P.isolation_policy(d)
    assert r["aws_iam_openid_connect_provider"]["issuer"]["url"] == d.issuer
