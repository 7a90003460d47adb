"""``--backend http://...``: the legacy bearer token may come from a profile, not only the env.

Runs against the bundled legacy-backend double (a real HTTP server implementing the documented
API with bearer auth), started on 127.0.0.1 port 0.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from portable_creds.errors import EXIT_CODES
from portable_creds.testing.legacy_server import LegacyServer

from .conftest import WALLET_A, Cli

TOKEN = "profile-kept-legacy-token-1234"


@pytest.fixture
def legacy() -> Iterator[LegacyServer]:
    with LegacyServer({TOKEN: None}) as srv:
        yield srv


def _profile(cli: Cli, name: str, url: str, token: str | None) -> None:
    cli.ok("config", "set", "backend", url, "--profile", name)
    if token is not None:
        # secrets are read from stdin, never argv
        cli.ok("config", "set", "legacy_token", "--profile", name, input=token.encode() + b"\n")


def test_token_from_the_profile_is_used(wallet_cli: Cli, legacy: LegacyServer) -> None:
    _profile(wallet_cli, "legacy", legacy.url, TOKEN)
    put = wallet_cli.ok("--profile", "legacy", "put", "openai", input=b"sk-over-http")
    assert TOKEN.encode() not in put.stdout + put.stderr
    stored = legacy.data[(WALLET_A, "openai")]
    assert b"sk-over-http" not in stored  # the server holds our sealed blob only
    got = wallet_cli.ok("--profile", "legacy", "get", "openai")
    assert got.stdout == b"sk-over-http"
    assert wallet_cli.ok("--profile", "legacy", "list").stdout == b"openai\n"


def test_without_a_token_the_server_refuses(wallet_cli: Cli, legacy: LegacyServer) -> None:
    _profile(wallet_cli, "tokenless", legacy.url, None)
    proc = wallet_cli.run("--profile", "tokenless", "list")
    assert proc.returncode not in (0, EXIT_CODES["error"]), proc.stderr
    assert (WALLET_A, "openai") not in legacy.data


def test_environment_token_beats_the_profile(wallet_cli: Cli, legacy: LegacyServer) -> None:
    _profile(wallet_cli, "legacy", legacy.url, TOKEN)
    wrong = {"PORTABLE_CREDS_LEGACY_TOKEN": "not-the-token"}
    proc = wallet_cli.run("--profile", "legacy", "list", env=wrong)
    assert proc.returncode == EXIT_CODES["credentials"], proc.stderr
    assert b"not-the-token" not in proc.stderr
    ok = wallet_cli.run("--profile", "legacy", "list", env={"PORTABLE_CREDS_LEGACY_TOKEN": TOKEN})
    assert ok.returncode == 0, ok.stderr
