"""The migration end to end into Ceph RGW, the store that really enforces federation and IAM:
legacy server (two wallets) -> `portable-creds migrate` subprocesses, each with its own wallet's
OIDC token -> every secret reads back identically through `portable-creds get`; a rerun does
nothing; a run killed midway resumes and completes. Nothing stored in the bucket is plaintext.

The RGW, OIDC issuer and provisioning fixtures are the shared ones (tests/cloud_fixtures.py);
without the Ceph binaries these tests skip (and fail under CI=true), exactly like those.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from portable_creds.testing.legacy_server import LegacyServer
from tests.cloud_fixtures import RgwDeployment

from .conftest import CLI, TOKEN, clean_env, run_cli

pytestmark = pytest.mark.rgw


def _env(tmp_path: Path, deployment: RgwDeployment, wallet: str) -> dict[str, str]:
    token_file = tmp_path / f"token-{wallet}"
    token_file.write_text(deployment.issuer.token(wallet, ttl=3600))
    secret_file = tmp_path / "root.key"
    if not secret_file.exists():
        secret_file.write_bytes(os.urandom(32))
        secret_file.chmod(0o600)
    return clean_env(
        tmp_path,
        PORTABLE_CREDS_BACKEND=deployment.url(token_file=str(token_file)),
        PORTABLE_CREDS_HOME=str(tmp_path / "state"),
        PORTABLE_CREDS_SECRET_FILE=str(secret_file),
        PORTABLE_CREDS_LEGACY_TOKEN=TOKEN,
    )


def _migrate(legacy: LegacyServer, env: dict[str, str], wallet: str) -> dict:  # type: ignore[type-arg]
    proc = run_cli(["migrate", "--from-legacy", legacy.url, wallet, "--json"], env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_legacy_to_rgw_end_to_end(
    legacy: LegacyServer,
    rgw_deployment: RgwDeployment,
    tenant: Callable[[], str],
    tmp_path: Path,
) -> None:
    wallets = [tenant(), tenant()]
    secrets = {
        wallets[0]: {"openai": b"sk-rgw-a", "github": b"ghp-rgw-a", "blob": bytes(range(256))},
        wallets[1]: {"openai": b"sk-rgw-b", "slack": b"xoxb-rgw-b", "aws": b"K" * 2048},
    }
    for wallet, services in secrets.items():
        for service, secret in services.items():
            legacy.seed(wallet, service, secret)
    envs = {w: _env(tmp_path, rgw_deployment, w) for w in wallets}

    # wallet 0: killed after its first secret, then resumed
    legacy.hang_reads_after(1)
    proc = subprocess.Popen(
        [*CLI, "migrate", "--from-legacy", legacy.url, wallets[0], "--json"],
        env=envs[wallets[0]],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert legacy.hanging.wait(120), "the migration never reached its second read"
    finally:
        proc.kill()
        proc.wait(30)
    legacy.release()
    resumed = _migrate(legacy, envs[wallets[0]], wallets[0])
    assert resumed["counts"]["already"] == 1 and resumed["counts"]["migrated"] == 2

    first = _migrate(legacy, envs[wallets[1]], wallets[1])
    assert first["counts"]["migrated"] == 3

    for wallet, services in secrets.items():
        env = envs[wallet]
        assert run_cli(
            ["list"], {**env, "PORTABLE_CREDS_WALLET": wallet}
        ).stdout.decode().split() == sorted(services)
        for service, secret in services.items():
            got = run_cli(["--wallet", wallet, "get", service], env)
            assert got.returncode == 0, got.stderr
            assert got.stdout == secret
        again = _migrate(legacy, env, wallet)
        assert again["counts"]["already"] == len(services) and again["counts"]["migrated"] == 0

    admin = rgw_deployment.admin_store()
    for wallet, services in secrets.items():
        stored = [o.key for o in admin.list(f"bots/{wallet}/credentials/")]
        assert stored == sorted(f"bots/{wallet}/credentials/{s}.enc" for s in services)
        for key in stored:
            data = admin.get(key).data
            assert data.startswith(b"PCE")
            assert all(secret not in data for secret in services.values() if len(secret) > 4)
