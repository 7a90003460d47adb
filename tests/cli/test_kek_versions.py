"""Issue 12 item 3: readers can retire old KEK versions, so a replayed pre-rotation blob fails.

Anyone with write access to the bucket can write a blob they saved earlier back in place: the
envelope authenticates it (right wallet, service, key, root secret), so by default it opens and
``get`` returns the *old* value. After a rotation and ``rewrap``, ``--accept-kek-versions``
(flag, environment, profile) makes readers refuse every blob sealed under a retired version.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from portable_creds.errors import ConfigurationError, IntegrityError

from .conftest import Cli, error_line


def _blob(cli: Cli, service: str) -> Path:
    found = list((cli.data_home / "objects").rglob(f"{service}.enc"))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def replayed(wallet_cli: Cli) -> Cli:
    """sk-OLD sealed under v1 and saved by an attacker; sk-NEW stored; rotated to v2 with
    rewrap; then the saved v1 blob written back in place."""
    cli = wallet_cli
    cli.ok("put", "openai", input=b"sk-OLD\n")
    saved = _blob(cli, "openai").read_bytes()
    cli.ok("put", "openai", input=b"sk-NEW\n")
    cli.ok("--kek-version", "2", "rewrap")
    assert cli.ok("--kek-version", "2", "get", "openai").stdout == b"sk-NEW"
    path = _blob(cli, "openai")
    path.write_bytes(saved)
    path.chmod(0o600)
    return cli


def test_default_readers_accept_the_replayed_old_blob(replayed: Cli) -> None:
    """The threat, shown: without narrowing, the old value comes back."""
    assert replayed.ok("--kek-version", "2", "get", "openai").stdout == b"sk-OLD"


@pytest.mark.parametrize("how", ["flag", "flag-only", "env", "profile"])
def test_narrowed_readers_refuse_the_replayed_blob(replayed: Cli, how: str) -> None:
    cli = replayed
    args: list[str] = ["--kek-version", "2"]
    env: dict[str, str] = {}
    if how == "flag":
        args += ["--accept-kek-versions", "2"]
    elif how == "flag-only":  # the newest accepted version is also the sealing one
        args = ["--accept-kek-versions", "2"]
    elif how == "env":
        env["PORTABLE_CREDS_ACCEPT_KEK_VERSIONS"] = "2"
    else:
        cli.ok("config", "set", "accept_kek_versions", "2")
    proc = cli.run(*args, "get", "openai", env=env)
    assert proc.returncode == IntegrityError.exit_code, proc.stderr
    line = error_line(proc)
    assert "no longer accepts" in line and "replay" in line
    assert b"sk-OLD" not in proc.stdout + proc.stderr
    # a fresh write under v2 opens again
    cli.ok(*args, "put", "openai", input=b"sk-NEWER\n", env=env)
    assert cli.ok(*args, "get", "openai", env=env).stdout == b"sk-NEWER"


def test_bad_accept_list_is_a_configuration_error(wallet_cli: Cli) -> None:
    for bad in ("x", "0", "3-2", "2,,"):
        proc = wallet_cli.run("--accept-kek-versions", bad, "list")
        assert proc.returncode == ConfigurationError.exit_code, (bad, proc.stderr)
        assert "accept-kek-versions" in error_line(proc)
    assert wallet_cli.run("config", "set", "accept_kek_versions", "x").returncode == 6
