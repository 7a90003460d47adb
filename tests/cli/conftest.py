"""Fixtures for the CLI tests: every test runs the installed ``portable-creds`` as a subprocess.

The environment is scrubbed of the user's settings (``PORTABLE_CREDS_*``, ``AGENTKEYS_*``,
``XDG_*``, ``AWS_*``) and HOME points into the test's tmp dir, so the default data home is a
fresh directory per test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent / "portable-creds"
FAILDRIVER = Path(__file__).resolve().parent / "faildriver"

WALLET_A = "0x" + "a1" * 20
WALLET_B = "0x" + "b2" * 20
ERROR_PREFIX = "portable-creds: error: "


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTABLE_CREDS_", "AGENTKEYS_", "XDG_", "AWS_"))
    }
    env["HOME"] = str(home)
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


class Cli:
    """Runs the CLI with a clean environment rooted at ``home``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = clean_env(home)

    @property
    def data_home(self) -> Path:
        return self.home / ".local" / "share" / "portable-creds"

    def init_root_secret(self) -> Path:
        """Put a root secret where first use would create one (so no notice is printed)."""
        key = self.data_home / "root.key"
        key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key.write_bytes(os.urandom(32))
        key.chmod(0o600)
        return key

    def run(
        self,
        *args: str,
        input: bytes | None = b"",
        env: Mapping[str, str] | None = None,
        unset: tuple[str, ...] = (),
    ) -> subprocess.CompletedProcess[bytes]:
        full = dict(self.env)
        full.update(env or {})
        for name in unset:
            full.pop(name, None)
        return subprocess.run(
            [str(BIN), *args], input=input, capture_output=True, env=full, timeout=120,
            check=False,
        )

    def ok(self, *args: str, **kw: object) -> subprocess.CompletedProcess[bytes]:
        proc = self.run(*args, **kw)  # type: ignore[arg-type]
        assert proc.returncode == 0, (proc.returncode, proc.stderr.decode(errors="replace"))
        return proc


def error_line(proc: subprocess.CompletedProcess[bytes]) -> str:
    """Assert stderr is exactly one error line, no traceback, and return it."""
    text = proc.stderr.decode()
    lines = text.splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith(ERROR_PREFIX), text
    assert "Traceback" not in text
    return lines[0]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    home = tmp_path / "home"
    home.mkdir()
    return Cli(home)


@pytest.fixture
def wallet_cli(cli: Cli) -> Cli:
    """A CLI with wallet A configured through the environment and a root secret in place."""
    cli.env["PORTABLE_CREDS_WALLET"] = WALLET_A
    cli.init_root_secret()
    return cli
