"""Fixtures for the legacy-backend, migration and operator-command tests.

Every server here is a real HTTP server on 127.0.0.1, port 0, started and stopped by the fixture.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from portable_creds.testing.legacy_server import LegacyServer

WALLET_A = "0x" + "a1" * 20
WALLET_B = "0x" + "b2" * 20
WALLET_C = "0x" + "c3" * 20
TOKEN = "legacy-session-token"
TOKEN_A_ONLY = "token-for-a-only"

REPO = Path(__file__).resolve().parents[2]
CLI = [str(REPO / ".venv" / "bin" / "portable-creds")]


@pytest.fixture
def legacy() -> Iterator[LegacyServer]:
    with LegacyServer({TOKEN: None, TOKEN_A_ONLY: {WALLET_A}}, expired_tokens={"old-token"}) as srv:
        yield srv


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment with nothing from the user's: HOME, XDG dirs and state under tmp_path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTABLE_CREDS_", "AGENTKEYS_", "XDG_", "AWS_"))
    }
    env["HOME"] = str(tmp_path / "home")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env.update(extra)
    return env


def run_cli(
    args: list[str],
    env: Mapping[str, str],
    *,
    input: bytes | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*CLI, *args], env=dict(env), input=input, capture_output=True, timeout=timeout, check=False
    )


def python_cli() -> list[str]:
    return [sys.executable, "-m", "portable_creds.cli"]
