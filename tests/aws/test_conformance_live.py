"""``make conformance-live`` (tools/conformance_live.py), the live path exercised in
``make test``: the same runner, harnesses, provisioners and teardown, against Ceph RGW and the
Tencent double instead of real AWS and Tencent Cloud.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from .conftest import REGION, RgwDeployment

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "tools" / "conformance_live.py"


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("PORTABLE_CREDS_", "AWS_", "TENCENTCLOUD_"))}  # fmt: skip
    base.update(env or {})
    return subprocess.run([sys.executable, str(RUNNER), *args], capture_output=True, text=True,
                          env=base, cwd=ROOT, timeout=1800, check=False)  # fmt: skip


def test_without_a_cloud_it_says_what_to_set_and_succeeds() -> None:
    proc = _run()
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    assert "PORTABLE_CREDS_LIVE_AWS=PROFILE" in lines[0]
    assert "PORTABLE_CREDS_LIVE_TENCENT=PROFILE" in lines[0]


# --------------------------------------------------------------------------- RGW
def _rgw_config(rgw_deployment: RgwDeployment, tmp_path: Path) -> Path:
    ep = rgw_deployment.endpoint
    path = tmp_path / "rgw.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"endpoint": ep.url, "region": REGION, "access_key": ep.admin_access_key,
                   "secret_key": ep.admin_secret_key, "admin_user": ep.admin_user}, fh)  # fmt: skip
    return path


def _run_names(out: str) -> list[str]:
    return [line.split()[1] for line in out.splitlines() if line.startswith("  rgw ")]


def _exists(rgw_deployment: RgwDeployment, name: str) -> tuple[bool, bool]:
    """(bucket exists, role exists) for a run name."""
    prov = rgw_deployment.provisioner
    try:
        prov.s3.head_bucket(Bucket=name)
        bucket = True
    except ClientError:
        bucket = False
    try:
        prov.iam.get_role(RoleName=f"{name}-data-role")
        role = True
    except ClientError:
        role = False
    return bucket, role


@pytest.mark.rgw
def test_live_runner_runs_every_group_on_rgw_and_tears_down(
    rgw_deployment: RgwDeployment, tmp_path: Path
) -> None:
    proc = _run("--rgw", str(_rgw_config(rgw_deployment, tmp_path)), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    (name,) = _run_names(proc.stdout)
    report = json.loads(next(tmp_path.glob(f"rgw-{name}.json")).read_text())
    assert report["verdict"] == "pass"
    ran = {name for name, g in report["groups"].items() if g["verdict"] == "PASS"}
    assert {"isolation-storage", "credentials", "scoping", "roundtrip"} <= ran
    assert f"teardown: deleted role {name}-data-role" in proc.stdout
    assert f"teardown: deleted bucket {name}" in proc.stdout
    assert _exists(rgw_deployment, name) == (False, False)
    assert not list(tmp_path.glob("*.state.json"))


@pytest.mark.rgw
def test_live_runner_tears_down_when_the_run_fails(
    rgw_deployment: RgwDeployment, tmp_path: Path
) -> None:
    proc = _run("--rgw", str(_rgw_config(rgw_deployment, tmp_path)), "--out", str(tmp_path),
                "--groups", "roundtrip", "--", "-p", "tests.aws.live_failure_plugin")  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-4000:]
    (name,) = _run_names(proc.stdout)
    assert "FAIL" in proc.stdout
    assert f"teardown: deleted bucket {name}" in proc.stdout
    assert _exists(rgw_deployment, name) == (False, False)


@pytest.mark.rgw
def test_keep_keeps_the_deployment_until_teardown(
    rgw_deployment: RgwDeployment, tmp_path: Path
) -> None:
    config = _rgw_config(rgw_deployment, tmp_path)
    proc = _run("--rgw", str(config), "--out", str(tmp_path), "--keep", "--groups", "roundtrip")
    assert proc.returncode == 0, proc.stdout[-4000:]
    (name,) = _run_names(proc.stdout)
    assert _exists(rgw_deployment, name) == (True, True)
    assert "teardown:" not in proc.stdout
    (state,) = tmp_path.glob("*.state.json")
    assert f"--teardown {state} --rgw {config}" in proc.stdout
    removed = _run("--teardown", str(state), "--rgw", str(config))
    assert removed.returncode == 0, removed.stderr
    assert f"teardown: deleted bucket {name}" in removed.stdout
    assert _exists(rgw_deployment, name) == (False, False)


# --------------------------------------------------------------------------- Tencent double
def test_live_runner_runs_every_group_on_the_tencent_double(tmp_path: Path) -> None:
    proc = _run("--tencent-double", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    (report_path,) = tmp_path.glob("tencent-double-*.json")
    report = json.loads(report_path.read_text())
    assert report["verdict"] == "pass"
    ran = {name for name, g in report["groups"].items() if g["verdict"] == "PASS"}
    assert {"isolation-storage", "credentials", "roundtrip"} <= ran
    # The harness removed every tenant role and the OIDC provider through the admin API.
    assert proc.stdout.count("teardown: deleted role portable-creds-0x") >= 2
    assert "teardown: deleted OIDC provider" in proc.stdout


# --------------------------------------------------------------------------- AWS flavour
def test_aws_flavour_deploys_a_hosted_issuer_and_tears_everything_down(
    moto_endpoint: str, tmp_path: Path
) -> None:
    """The parts only the AWS flavour has (issuer documents in a public-read bucket, AWS
    defaults on the credential bucket, signed STS for the account id), deployed into moto's
    S3/IAM/STS and removed again. moto evaluates no IAM, so the suite itself runs on RGW."""
    import boto3
    from portable_creds_aws.live_harness import DISCOVERY, ISSUER_KEYS, LiveS3Harness, run_name
    from portable_creds_conformance.harness import HarnessContext

    name = run_name()
    state = tmp_path / "state.json"
    config = {"flavor": "aws", "endpoint": moto_endpoint, "region": REGION, "name": name,
              "state_file": str(state), "access_key": "testing",
              "secret_key": "testing"}  # fmt: skip
    harness = LiveS3Harness(
        HarnessContext(target="live", config=config, workdir=tmp_path, run_id="0123abcd")
    )
    harness.setup()
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION,
                      aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    iam = boto3.client("iam", endpoint_url=moto_endpoint, region_name=REGION,
                       aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    try:
        iss = f"https://{name}-oidc.s3.{REGION}.amazonaws.com"
        discovery = json.loads(s3.get_object(Bucket=f"{name}-oidc", Key=DISCOVERY)["Body"].read())
        assert discovery["issuer"] == iss and discovery["jwks_uri"] == f"{iss}/{ISSUER_KEYS}"
        keys = json.loads(s3.get_object(Bucket=f"{name}-oidc", Key=ISSUER_KEYS)["Body"].read())
        assert "d" not in keys["keys"][0]  # the public key only
        pab = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
        assert all(pab.values())
        assert iam.get_role(RoleName=f"{name}-data-role")["Role"]["Arn"].endswith(
            f"role/{name}-data-role"
        )
        assert harness.verify_deployment() == []
    finally:
        harness.cleanup()
    torn_down = json.loads(state.read_text())["torn_down"]
    assert f"deleted role {name}-data-role" in torn_down
    assert f"deleted bucket {name}-oidc" in torn_down and f"deleted bucket {name}" in torn_down
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket=name)
    with pytest.raises(ClientError):
        iam.get_role(RoleName=f"{name}-data-role")
