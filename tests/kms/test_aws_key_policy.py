"""The rendered KMS key policy: tenant isolation by encryption context, parliament, drift."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from parliament import analyze_policy_string
from portable_creds_aws.admin.kms_policy import TENANT_SID, key_policy, key_policy_drift
from portable_creds_aws.admin.policies import Deployment

from ..cloud_fixtures import REGION

DEPLOYMENT = Deployment(
    bucket="pc-data", issuer="https://broker.example.com", account_id="123456789012"
)


def test_tenant_statement_binds_the_wallet_context_to_the_session_tag() -> None:
    (tenant,) = [s for s in key_policy(DEPLOYMENT)["Statement"] if s["Sid"] == TENANT_SID]
    assert tenant["Principal"] == {"AWS": DEPLOYMENT.role_arn}
    assert set(tenant["Action"]) == {"kms:GenerateDataKey", "kms:Decrypt"}
    cond = tenant["Condition"]
    assert cond["StringEquals"] == {
        "kms:EncryptionContext:pc_wallet": "${aws:PrincipalTag/agentkeys_user_wallet}"
    }
    assert set(cond["ForAllValues:StringEquals"]["kms:EncryptionContextKeys"]) == {
        "pc_wallet", "pc_service", "pc_storage_key",
    }  # fmt: skip


def test_parliament_finds_nothing() -> None:
    """Every finding except RESOURCE_STAR: parliament lints as if this were an identity
    policy, but in a key policy ``"Resource": "*"`` means "this KMS key" (AWS KMS developer
    guide, key policies), which is the only form the rendered policy uses."""
    findings = analyze_policy_string(
        json.dumps(key_policy(DEPLOYMENT)), ignore_private_auditors=True
    ).findings
    assert {f.issue for f in findings} <= {"RESOURCE_STAR"}
    assert [f"{f.issue}: {f.detail}" for f in findings if f.issue != "RESOURCE_STAR"] == []
    assert all(s["Resource"] == "*" for s in key_policy(DEPLOYMENT)["Statement"])


def test_parliament_would_catch_a_broken_condition() -> None:
    """Control: the lint is not vacuous (an unknown condition key is reported)."""
    doc = key_policy(DEPLOYMENT)
    doc["Statement"][1]["Condition"]["StringEquals"] = {"kms:EncryptionContxt:pc_wallet": "x"}
    assert analyze_policy_string(json.dumps(doc)).findings


@pytest.fixture
def kms(moto_endpoint: str) -> Any:
    return boto3.client(
        "kms",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_drift_is_reported(kms: Any) -> None:
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(key_policy(DEPLOYMENT)))
    assert key_policy_drift(DEPLOYMENT, kms, key) == []
    widened = key_policy(DEPLOYMENT)
    del widened["Statement"][1]["Condition"]["StringEquals"]
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(widened))
    assert key_policy_drift(DEPLOYMENT, kms, key) == [
        f"key policy statement {TENANT_SID!r} differs from the rendered one"
    ]
    kms.put_key_policy(
        KeyId=key,
        PolicyName="default",
        Policy=json.dumps({"Version": "2012-10-17", "Statement": widened["Statement"][:1]}),
    )
    assert key_policy_drift(DEPLOYMENT, kms, key) == [
        f"key policy statement {TENANT_SID!r} is missing"
    ]
