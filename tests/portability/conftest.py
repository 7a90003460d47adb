"""Fixtures for the copy tests: the Tencent double (tests/tencent) and helpers to seed fleets."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import attrs
import pytest
from portable_creds_aws.testing.deployment import rgw_per_tenant_deployment
from portable_creds_aws.testing.oidc import OidcIssuer
from portable_creds_aws.testing.rgw import RgwEndpoint
from portable_creds_tencent.testing import TencentDouble, TestIdentityProvider

from portable_creds.driver import ObjectStore
from portable_creds.keys import KeySource
from portable_creds.secret_key import SecretKeySource
from portable_creds.store import CredentialStore

from ..cloud_fixtures import RgwDeployment, make_provisioner
from ..tencent.conftest import ISSUER, Env, make_env

REPO = Path(__file__).resolve().parents[2]
CLI = [str(REPO / ".venv" / "bin" / "portable-creds")]


def wallet(n: int) -> str:
    return f"0x{n:040x}"


def fleet_secrets(wallets: int, services: int) -> dict[str, dict[str, bytes]]:
    """Distinct values per (wallet, service), binary and text, some larger than a packet."""
    out: dict[str, dict[str, bytes]] = {}
    for w in range(1, wallets + 1):
        out[wallet(w)] = {
            f"svc-{s}": (f"secret {w}/{s} ".encode() + bytes([w % 256, s % 256, 0, 255]))
            * (1 + (s % 3) * 500)
            for s in range(services)
        }
    return out


def seed(objects: ObjectStore, keys: KeySource, secrets: Mapping[str, Mapping[str, bytes]]) -> None:
    for w, services in secrets.items():
        store = CredentialStore(objects, keys, w)
        for service, value in services.items():
            store.put(service, value)


def write_secret(path: Path, root: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(root)
    return path


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Nothing from the user's environment: HOME, XDG and state under tmp_path."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTABLE_CREDS_", "AGENTKEYS_", "XDG_", "AWS_", "TENCENTCLOUD_"))
    }
    environ["HOME"] = str(tmp_path / "home")
    environ["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    environ["XDG_DATA_HOME"] = str(tmp_path / "data")
    environ["XDG_STATE_HOME"] = str(tmp_path / "state")
    environ["PORTABLE_CREDS_HOME"] = str(tmp_path / "pc-home")
    environ["PATH"] = f"{Path(CLI[0]).parent}:{environ.get('PATH', '')}"
    environ.update(extra)
    return environ


def run_cli(
    args: list[str], environ: Mapping[str, str], *, timeout: float = 300
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*CLI, *args], env=dict(environ), capture_output=True, timeout=timeout, check=False
    )


@pytest.fixture
def cos() -> Iterator[Env]:
    """A Tencent double with a deployment provisioned as in tests/tencent/conftest.py."""
    with TencentDouble() as d:
        yield make_env(d, TestIdentityProvider(ISSUER))


def own_rgw_deployment(rgw: RgwEndpoint, oidc: OidcIssuer, name: str) -> RgwDeployment:
    """A deployment with its own bucket and data role, so ``--all-wallets`` sees only ours."""
    deployment = attrs.evolve(
        rgw_per_tenant_deployment(name, rgw, oidc), role_name=f"{name}-role"
    )
    provisioner = make_provisioner(rgw, deployment)
    provisioner.apply()
    return RgwDeployment(rgw, oidc, deployment, provisioner, SecretKeySource(os.urandom(32)))


def setup_requests(cos: Env) -> int:
    """Requests the COS driver makes before its first write (e.g. the versioning check), so
    a test can place a fault on an exact request of a copy that follows."""
    before = cos.double.stats["cos"]
    with cos.admin() as probe:
        assert probe.capabilities.create_only
    return cos.double.stats["cos"] - before
