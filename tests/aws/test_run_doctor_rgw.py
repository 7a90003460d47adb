"""``run`` and ``doctor`` through the real CLI on Ceph RGW (web identity, ``role_arn``): the
backend narrows credentials in the cloud, so ``run`` fetches with a cloud-enforced read-only
scope without being asked, and ``doctor`` says scopes are enforced by the cloud."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from portable_creds_aws.admin import tenant_roles as TR

from ..scoping._cli import run_cli
from .conftest import RgwDeployment
from .test_scoping_cli import Tenant

pytestmark = pytest.mark.rgw

PRINT_ENV = (
    "import json, os; "
    "print(json.dumps({k: v for k, v in os.environ.items() if k.endswith('_API_KEY')}))"
)


@pytest.fixture
def bob(rgw_deployment: RgwDeployment, tenant: Callable[[], str], tmp_path: Path) -> Tenant:
    t = Tenant(rgw_deployment, tenant(), tmp_path)
    for service, value in (("allowed", b"in-scope secret"), ("denied", b"other secret")):
        code, _, err = t.cli("put", service, input=value)
        assert code == 0, err
    return t


def test_run_uses_a_cloud_scope_of_what_it_injects(bob: Tenant) -> None:
    code, out, err = bob.cli(
        "--debug", "run", "--service", "allowed", "--", sys.executable, "-c", PRINT_ENV
    )
    assert code == 0, err
    assert json.loads(out) == {"ALLOWED_API_KEY": "in-scope secret"}
    assert "read-only scope of 1 service(s), enforced by the cloud" in err
    assert "client only" not in err


def test_run_refuses_services_outside_an_explicit_scope(bob: Tenant) -> None:
    code, out, err = bob.cli(
        "run", "--scope", "allowed", "--service", "denied", "--", sys.executable, "-c", "1"
    )
    assert code == 2 and out == b"", err
    code, out, err = bob.cli("run", "--scope", "allowed", "--", sys.executable, "-c", PRINT_ENV)
    assert code == 0, err
    assert json.loads(out) == {"ALLOWED_API_KEY": "in-scope secret"}


def test_doctor_reports_cloud_enforced_scoping(bob: Tenant) -> None:
    code, out, err = bob.cli("doctor", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] is True, (out, err)
    assert doc["scoped_credentials"] == "cloud"
    (check,) = [c for c in doc["checks"] if c["name"] == "scoping"]
    assert check["status"] == "ok" and "enforced by the cloud" in check["detail"]
    _, out, _ = bob.cli("--scope", "allowed", "doctor", "--json")
    (check,) = [c for c in json.loads(out)["checks"] if c["name"] == "scoping"]
    assert check["status"] == "ok"  # a cloud scope on a backend that can: nothing to warn of


def _doctor_with_drift_check(bob: Tenant, rgw_deployment: RgwDeployment) -> dict[str, str]:
    admin = rgw_deployment.admin_env()
    env = {
        "AWS_ACCESS_KEY_ID": admin["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": admin["AWS_SECRET_ACCESS_KEY"],
        "PORTABLE_CREDS_ADMIN_VERIFY": shlex.join(rgw_deployment.admin_args()),
    }
    proc = run_cli(
        bob.home,
        "--backend",
        bob.backend,
        "--wallet",
        bob.wallet,
        "--secret-file",
        str(bob.secret_file),
        "--home",
        str(bob.home / "data"),
        "doctor",
        "--json",
        env=env,
    )
    doc = json.loads(proc.stdout)
    (check,) = [c for c in doc["checks"] if c["name"] == "policy drift"]
    assert (proc.returncode == 0) == (check["status"] == "ok"), proc.stdout
    return dict(check)


def test_doctor_compares_deployed_policies_with_render(
    bob: Tenant, rgw_deployment: RgwDeployment
) -> None:
    assert _doctor_with_drift_check(bob, rgw_deployment)["status"] == "ok"
    iam = rgw_deployment.provisioner.iam
    role = TR.role_name(rgw_deployment.deployment, bob.wallet)  # bob's own role
    broad = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::*"]}],
    }
    iam.put_role_policy(
        RoleName=role,
        PolicyName="doctor-drift",
        PolicyDocument=json.dumps(broad, separators=(",", ":")),
    )
    try:
        check = _doctor_with_drift_check(bob, rgw_deployment)
    finally:
        iam.delete_role_policy(RoleName=role, PolicyName="doctor-drift")
    assert check["status"] == "fail"
    assert "apply" in check["fix"]


def test_doctor_skips_the_drift_check_with_a_fix_when_not_configured(bob: Tenant) -> None:
    code, out, _ = bob.cli("doctor", "--json")
    (check,) = [c for c in json.loads(out)["checks"] if c["name"] == "policy drift"]
    assert code == 0  # a skipped check is not a failure
    assert check["status"] == "skip" and "admin_verify" in check["fix"]
