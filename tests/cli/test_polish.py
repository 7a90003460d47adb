"""CLI conveniences users expect from comparable tools: ``config get``, ``--from-file -``,
errors as JSON under ``--json``, ``put --allow-empty``, comment-preserving ``config set`` and
``python -m portable_creds``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from portable_creds.errors import EXIT_CODES

from .conftest import WALLET_A, Cli, error_line


def test_from_file_dash_reads_stdin(wallet_cli: Cli) -> None:
    wallet_cli.ok("put", "svc", "--from-file", "-", input=b"sk-from-stdin\n")
    assert wallet_cli.ok("get", "svc").stdout == b"sk-from-stdin"


def test_from_file_dot_slash_dash_is_a_file(wallet_cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "-").write_bytes(b"sk-file\n")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "portable-creds"), "put", "svc", "--from-file", "./-"],
        cwd=tmp_path, env=wallet_cli.env, input=b"not this", capture_output=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert wallet_cli.ok("get", "svc").stdout == b"sk-file"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["get", "absent"], "not-found"),
        (["put", "bad/name"], "invalid-input"),
        (["--no-such-flag"], "usage"),
        (["config", "get", "no_such_key"], "configuration"),
    ],
)
def test_json_errors_are_one_object_on_stderr(wallet_cli: Cli, args: list[str],
                                              code: str) -> None:
    proc = wallet_cli.run("--json", *args, input=b"x")
    assert proc.returncode == EXIT_CODES[code]
    assert proc.stdout == b""
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1, proc.stderr
    obj = json.loads(lines[0])
    assert obj["exit_code"] == EXIT_CODES[code] and obj["exit_name"] == code
    assert obj["error"] and "Traceback" not in obj["error"]
    # without --json the same failure is the usual one line
    plain = wallet_cli.run(*args, input=b"x")
    assert plain.returncode == proc.returncode
    assert error_line(plain).endswith(obj["error"])


def test_json_after_double_dash_belongs_to_the_child(wallet_cli: Cli) -> None:
    proc = wallet_cli.run("--bogus", "--", "--json")
    assert proc.returncode == EXIT_CODES["usage"]
    error_line(proc)  # a plain line: --json after -- was not ours


def test_put_allow_empty(wallet_cli: Cli) -> None:
    refused = wallet_cli.run("put", "svc", input=b"")
    assert refused.returncode == EXIT_CODES["invalid-input"]
    assert "--allow-empty" in error_line(refused)
    wallet_cli.ok("put", "svc", "--allow-empty", input=b"")
    assert wallet_cli.ok("list").stdout == b"svc\n"
    assert wallet_cli.ok("get", "svc").stdout == b""


def test_config_get_resolves_like_every_command(cli: Cli, tmp_path: Path) -> None:
    cli.env["PORTABLE_CREDS_CONFIG"] = str(tmp_path / "config.toml")
    missing = cli.run("config", "get", "wallet")
    assert missing.returncode == EXIT_CODES["not-found"]
    error_line(missing)
    cli.ok("config", "set", "wallet", WALLET_A)
    assert cli.ok("config", "get", "wallet").stdout.decode() == WALLET_A + "\n"
    assert cli.ok("config", "get", "prefix").stdout == b"bots\n"  # the default
    got = json.loads(cli.ok("--prefix", "team", "config", "get", "prefix", "--json").stdout)
    assert got == {"key": "prefix", "value": "team", "source": "--prefix", "secret": False}
    cli.ok("config", "set", "legacy_token", input=b"tok-0123456789abcdef")
    masked = cli.ok("config", "get", "legacy_token").stdout.decode()
    assert "tok-0123456789abcdef" not in masked
    assert cli.ok("config", "get", "legacy_token", "--reveal").stdout == b"tok-0123456789abcdef\n"


def test_config_set_and_unset_keep_the_users_comments(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    cli.env["PORTABLE_CREDS_CONFIG"] = str(path)
    original = (
        "# my portable-creds settings\n"
        'profile = "work"  # the one I use\n'
        "\n"
        "[profiles.work]\n"
        "# the team bucket, ask ops before changing\n"
        'backend = "local:///srv/creds"  # keep\n'
    )
    path.write_text(original)
    cli.ok("config", "set", "wallet", WALLET_A)
    text = path.read_text()
    assert text.startswith(original)
    assert text[len(original):] == f'wallet = "{WALLET_A}"\n'
    cli.ok("config", "unset", "wallet")
    assert path.read_text() == original
    assert path.stat().st_mode & 0o777 == 0o600


def test_python_dash_m_runs_the_cli(cli: Cli, tmp_path: Path) -> None:
    direct = cli.ok("--help").stdout
    proc = subprocess.run([sys.executable, "-m", "portable_creds", "--help"], cwd=tmp_path,
                          env=cli.env, capture_output=True, check=False)
    assert proc.returncode == 0 and proc.stdout == direct
    assert b"README" not in direct and b"https://" in direct
