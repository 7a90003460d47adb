"""AWS's defaults kept (issue 11 items 11 and 12): every PublicAccessBlock setting and
``BucketOwnerEnforced`` for ``--flavor aws``, the measured RGW exceptions for ``--flavor rgw``,
and a lifecycle that, with versioning, also expires noncurrent versions and expired delete
markers. Applied and verified on moto's S3 API; drift on any of them is reported by ``verify``.
"""

from __future__ import annotations

import secrets
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from portable_creds_aws.admin import policies as P
from portable_creds_aws.admin.provisioner import Provisioner

from .conftest import REGION, RgwDeployment, make_provisioner

ACCOUNT = "123456789012"  # moto's default account
ALL_ON = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _aws(**kwargs: Any) -> P.Deployment:
    tag = secrets.token_hex(4)
    return P.Deployment(
        bucket=f"pc-def-{tag}",
        issuer=f"https://idp-{tag}.example.com",
        account_id=ACCOUNT,
        role_name=f"role-{tag}",
        **kwargs,
    )


def _provisioner(endpoint: str, d: P.Deployment) -> Provisioner:
    return Provisioner(d, iam=_client("iam", endpoint), s3=_client("s3", endpoint), region=REGION)


# --------------------------------------------------------------------------- rendering
def test_aws_flavor_renders_every_public_access_block_and_acls_disabled() -> None:
    docs = P.render(_aws())["bucket"]
    assert docs["public_access_block"] == ALL_ON
    assert docs["ownership_controls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def test_rgw_flavor_keeps_its_measured_exceptions() -> None:
    d = P.Deployment(
        bucket="creds", issuer="http://127.0.0.1:1", flavor="rgw", strategy="per-tenant"
    )
    docs = P.render(d)["bucket"]
    assert docs["public_access_block"] == {
        "BlockPublicAcls": False,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": False,
        "RestrictPublicBuckets": True,
    }
    assert docs["ownership_controls"] is None


def test_versioned_lifecycle_expires_noncurrent_versions_and_delete_markers() -> None:
    plain = P.lifecycle(_aws(lifecycle_days=30))
    assert plain is not None
    (rule,) = plain["Rules"]
    assert rule["Expiration"] == {"Days": 30} and "NoncurrentVersionExpiration" not in rule
    versioned = P.lifecycle(_aws(lifecycle_days=30, versioning=True))
    assert versioned is not None
    main, markers = versioned["Rules"]
    assert main["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert markers["Expiration"] == {"ExpiredObjectDeleteMarker": True}
    assert markers["Filter"] == main["Filter"] == {"Prefix": "bots/"}


# --------------------------------------------------------------------------- moto
def test_apply_blocks_public_access_and_verify_reports_drift(moto_endpoint: str) -> None:
    d = _aws()
    prov = _provisioner(moto_endpoint, d)
    prov.apply()
    s3 = prov.s3
    assert s3.get_public_access_block(Bucket=d.bucket)["PublicAccessBlockConfiguration"] == ALL_ON
    rules = s3.get_bucket_ownership_controls(Bucket=d.bucket)["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert prov.verify() == []

    weaker = {**ALL_ON, "BlockPublicAcls": False}
    s3.put_public_access_block(Bucket=d.bucket, PublicAccessBlockConfiguration=weaker)
    assert any('"BlockPublicAcls": false' in line for line in prov.verify())
    prov.apply()
    assert prov.verify() == []

    s3.put_bucket_ownership_controls(
        Bucket=d.bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
    )
    assert any("ObjectWriter" in line for line in prov.verify())
    s3.delete_bucket_ownership_controls(Bucket=d.bucket)
    assert any("ownership_controls" in line for line in prov.verify())
    prov.apply()
    assert prov.verify() == []


def test_versioned_lifecycle_applies_and_verify_reports_a_missing_rule(moto_endpoint: str) -> None:
    d = _aws(lifecycle_days=7, versioning=True)
    prov = _provisioner(moto_endpoint, d)
    prov.apply()
    assert prov.verify() == []
    live = prov.s3.get_bucket_lifecycle_configuration(Bucket=d.bucket)["Rules"]
    assert {r["ID"] for r in live} == {P.LIFECYCLE_RULE_ID, P.LIFECYCLE_MARKERS_RULE_ID}
    # An older deployment's lifecycle (current versions only) is drift now.
    old = P.lifecycle(_aws(lifecycle_days=7))
    prov.s3.put_bucket_lifecycle_configuration(Bucket=d.bucket, LifecycleConfiguration=old)
    diff = "\n".join(prov.verify())
    assert "NoncurrentDays" in diff and P.LIFECYCLE_MARKERS_RULE_ID in diff


# --------------------------------------------------------------------------- RGW
@pytest.mark.rgw
def test_rgw_has_no_ownership_controls(rgw_deployment: RgwDeployment) -> None:
    """Measured: why the RGW flavour renders no ownership controls."""
    s3 = rgw_deployment.provisioner.s3
    with pytest.raises(ClientError) as info:
        s3.put_bucket_ownership_controls(
            Bucket=rgw_deployment.bucket,
            OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        )
    status = info.value.response["ResponseMetadata"]["HTTPStatusCode"]
    print("RGW PutBucketOwnershipControls:", status, info.value.response.get("Error"))
    assert status >= 400


@pytest.mark.rgw
def test_rgw_versioned_lifecycle_applies_and_verifies(rgw_deployment: RgwDeployment) -> None:
    d = rgw_deployment.deployment
    other = P.Deployment(
        bucket=f"pc-lc-{secrets.token_hex(3)}",
        issuer=d.issuer,
        flavor="rgw",
        strategy="per-tenant",
        role_name=f"pc-lc-role-{secrets.token_hex(3)}",
        admin_principal=d.admin_principal,
        thumbprints=d.thumbprints,
        lifecycle_days=3,
        versioning=True,
    )
    prov = make_provisioner(rgw_deployment.endpoint, other)
    prov.apply()
    assert prov.verify() == []
    rules = prov.deployed()["bucket"]["lifecycle"]["Rules"]
    assert {r["ID"] for r in rules} == {P.LIFECYCLE_RULE_ID, P.LIFECYCLE_MARKERS_RULE_ID}
