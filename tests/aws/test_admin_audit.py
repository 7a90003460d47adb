"""The provisioner's cloud-side audit switches: S3 server access logging (applied, verified on
moto's S3 API), CloudTrail data-event selectors (rendered guidance, accepted by moto's
CloudTrail API as written), and the measured fact that Ceph RGW 16.2 has no bucket logging.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from portable_creds_aws.admin import policies as P
from portable_creds_aws.admin.provisioner import Provisioner

from portable_creds.errors import ConfigurationError, PortableCredsError

from .conftest import REGION, RgwDeployment

CLI = [sys.executable, "-m", "portable_creds.cli", "admin", "s3"]
ACCOUNT = "123456789012"  # moto's default account


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _deployment(bucket: str, log_bucket: str | None) -> P.Deployment:
    return P.Deployment(
        bucket=bucket,
        issuer=f"https://idp-{secrets.token_hex(4)}.example.com",
        account_id=ACCOUNT,
        role_name=f"role-{secrets.token_hex(4)}",
        log_bucket=log_bucket,
    )


def _render(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, check=False)


def test_render_includes_access_logging_and_cloudtrail_guidance() -> None:
    out = _render(
        "--bucket", "acme-creds", "--issuer", "https://idp.example.com",
        "--account-id", ACCOUNT, "--log-bucket", "acme-logs", "--log-prefix", "creds/",
        "render",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    docs = json.loads(out.stdout)
    assert docs["bucket"]["access_logging"] == {
        "LoggingEnabled": {"TargetBucket": "acme-logs", "TargetPrefix": "creds/"}
    }
    audit = docs["audit"]
    (stmt,) = audit["log_bucket_policy"]["Statement"]
    assert stmt["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert stmt["Resource"] == "arn:aws:s3:::acme-logs/creds/*"
    assert stmt["Condition"]["ArnLike"] == {"aws:SourceArn": "arn:aws:s3:::acme-creds"}
    (selector,) = audit["cloudtrail_data_events"]["AdvancedEventSelectors"]
    fields = {f["Field"]: f for f in selector["FieldSelectors"]}
    assert fields["resources.ARN"]["StartsWith"] == ["arn:aws:s3:::acme-creds/bots/"]
    assert fields["eventCategory"]["Equals"] == ["Data"]


def test_render_without_log_bucket_says_how_to_turn_it_on() -> None:
    out = _render(
        "--bucket", "acme-creds", "--issuer", "https://idp.example.com",
        "--account-id", ACCOUNT, "render",
    )  # fmt: skip
    docs = json.loads(out.stdout)
    assert docs["bucket"]["access_logging"] is None
    assert any("--log-bucket" in note for note in docs["audit"]["notes"])
    assert docs["audit"]["cloudtrail_data_events"]["TrailName"] == P.DEFAULT_TRAIL_NAME


def test_log_bucket_is_refused_for_rgw_and_for_the_data_bucket() -> None:
    rgw = _render(
        "--bucket", "creds", "--issuer", "http://127.0.0.1:1", "--flavor", "rgw",
        "--log-bucket", "logs", "render",
    )  # fmt: skip
    assert rgw.returncode == ConfigurationError.exit_code
    assert "405" in rgw.stderr and "ops log" in rgw.stderr
    with pytest.raises(ConfigurationError):
        _deployment("same", "same")
    out = _render("--bucket", "creds", "--issuer", "http://127.0.0.1:1", "--flavor", "rgw",
                  "render")  # fmt: skip
    notes = json.loads(out.stdout)["audit"]["notes"]
    assert any("ops log" in n for n in notes)


def _provisioner(endpoint: str, d: P.Deployment) -> Provisioner:
    return Provisioner(d, iam=_client("iam", endpoint), s3=_client("s3", endpoint), region=REGION)


def test_apply_turns_on_access_logging_on_moto(moto_endpoint: str) -> None:
    s3 = _client("s3", moto_endpoint)
    data, logs = f"pc-data-{secrets.token_hex(4)}", f"pc-logs-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=logs)
    d = _deployment(data, logs)
    prov = _provisioner(moto_endpoint, d)

    # Without the rendered log-bucket policy, S3 refuses to log there.
    with pytest.raises(PortableCredsError):
        prov.apply()
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=data)

    # What the operator does with 'render': merge the log bucket policy, then apply.
    policy = P.audit_guidance(d)["log_bucket_policy"]
    s3.put_bucket_policy(Bucket=logs, Policy=json.dumps(policy))
    changes = prov.apply()
    assert f"server access logging: s3://{logs}/{P.DEFAULT_LOG_PREFIX}" in changes
    live = s3.get_bucket_logging(Bucket=data)["LoggingEnabled"]
    assert (live["TargetBucket"], live["TargetPrefix"]) == (logs, P.DEFAULT_LOG_PREFIX)
    assert prov.deployed()["bucket"]["access_logging"] == P.render(d)["bucket"]["access_logging"]

    # Logging switched off behind the provisioner's back is drift.
    s3.put_bucket_logging(Bucket=data, BucketLoggingStatus={})
    assert prov.deployed()["bucket"]["access_logging"] is None
    assert any("LoggingEnabled" in line for line in prov.verify())


def test_cloudtrail_guidance_is_accepted_by_the_api(moto_endpoint: str) -> None:
    s3 = _client("s3", moto_endpoint)
    trail_bucket = f"pc-trail-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=trail_bucket)
    d = _deployment("acme-creds", None)
    guidance = P.audit_guidance(d)["cloudtrail_data_events"]
    cloudtrail = _client("cloudtrail", moto_endpoint)
    cloudtrail.create_trail(Name=guidance["TrailName"], S3BucketName=trail_bucket)
    cloudtrail.put_event_selectors(**guidance)  # botocore validates the shape, moto stores it
    got = cloudtrail.get_event_selectors(TrailName=guidance["TrailName"])
    assert got["AdvancedEventSelectors"] == guidance["AdvancedEventSelectors"]


@pytest.mark.rgw
def test_rgw_refuses_bucket_logging(rgw_deployment: RgwDeployment) -> None:
    """Measured: why --log-bucket is refused for --flavor rgw (and verify still matches)."""
    s3 = rgw_deployment.provisioner.s3
    status = {"LoggingEnabled": {"TargetBucket": rgw_deployment.bucket, "TargetPrefix": "x/"}}
    with pytest.raises(ClientError) as info:
        s3.put_bucket_logging(Bucket=rgw_deployment.bucket, BucketLoggingStatus=status)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 405
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=rgw_deployment.bucket)
    assert rgw_deployment.provisioner.deployed()["bucket"]["access_logging"] is None
