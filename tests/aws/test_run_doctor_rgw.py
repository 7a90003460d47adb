"""``run`` and ``doctor`` through the real CLI on Ceph RGW (web identity, ``role_arn``): the
backend narrows credentials in the cloud, so ``run`` fetches with a cloud-enforced read-only
scope without being asked, and ``doctor`` says scopes are enforced by the cloud."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

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
