"""Issue 12 item 10: the small ones, each as the CLI (a subprocess) shows it."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from portable_creds.errors import EXIT_CODES
from portable_creds.testing.legacy_server import LegacyServer

from .conftest import BIN, WALLET_A, Cli, error_line

TOKEN = "small-hardening-legacy-token"


@pytest.fixture
def legacy() -> Iterator[LegacyServer]:
    with LegacyServer({TOKEN: None}) as srv:
        yield srv


def _config(cli: Cli) -> Path:
    return cli.home / ".config" / "portable-creds" / "config.toml"


def _checks(proc: subprocess.CompletedProcess[bytes]) -> dict[str, dict[str, str]]:
    return {c["name"]: c for c in json.loads(proc.stdout)["checks"]}


# -- a 0644 config file holding legacy_token fails doctor --------------------------------------


def test_doctor_fails_on_a_group_readable_config_holding_a_token(wallet_cli: Cli) -> None:
    path = _config(wallet_cli)
    path.parent.mkdir(parents=True)
    path.write_text(f'[profiles.default]\nlegacy_token = "{TOKEN}"\n')
    path.chmod(0o644)
    proc = wallet_cli.run("doctor", "--json")
    assert proc.returncode == 1
    check = _checks(proc)["config file mode"]
    assert check["status"] == "fail" and "legacy_token" in check["detail"]
    assert "chmod 600" in check["fix"]
    assert TOKEN.encode() not in proc.stdout + proc.stderr
    path.chmod(0o600)
    assert "config file mode" not in _checks(wallet_cli.run("doctor", "--json"))


# -- config set legacy_token reads stdin, never argv -------------------------------------------


def test_config_set_secret_refuses_argv_and_reads_stdin(cli: Cli) -> None:
    proc = cli.run("config", "set", "legacy_token", TOKEN)
    assert proc.returncode == EXIT_CODES["usage"]
    assert "stdin" in error_line(proc)
    assert not _config(cli).exists() or TOKEN not in _config(cli).read_text()

    proc = cli.run("config", "set", "legacy_token", input=TOKEN.encode() + b"\n")
    assert proc.returncode == 0, proc.stderr
    assert TOKEN.encode() not in proc.stdout + proc.stderr  # shown masked
    assert f'legacy_token = "{TOKEN}"' in _config(cli).read_text()  # newline stripped
    assert stat.S_IMODE(_config(cli).stat().st_mode) == 0o600

    empty = cli.run("config", "set", "signer_token", input=b"\n")
    assert empty.returncode == EXIT_CODES["invalid-input"]
    assert cli.run("config", "set", "wallet").returncode == EXIT_CODES["usage"]


# -- an oversized --prefix exits 8 ---------------------------------------------------------------


def test_oversized_prefix_is_invalid_input_on_every_backend(
    wallet_cli: Cli, legacy: LegacyServer
) -> None:
    env = {"PORTABLE_CREDS_LEGACY_TOKEN": TOKEN}
    too_long = "/".join(["p" * 100] * 9)  # 908 characters: a full key would pass 1024 bytes
    for backend in (legacy.url, "local"):
        proc = wallet_cli.run(
            "--backend", backend, "--prefix", too_long, "put", "openai", input=b"v", env=env
        )
        assert proc.returncode == EXIT_CODES["invalid-input"], (backend, proc.stderr)
        assert "1024" in error_line(proc)
    fits = "/".join(["p" * 99] * 9)  # 899 characters
    wallet_cli.ok("--backend", legacy.url, "--prefix", fits, "put", "openai", input=b"v", env=env)


# -- doctor never exits silently -----------------------------------------------------------------


@pytest.mark.parametrize("admin_verify", ["--no-such-option", "--help"])
def test_doctor_reports_an_admin_verify_the_provisioner_refuses(
    wallet_cli: Cli, admin_verify: str
) -> None:
    proc = wallet_cli.run(
        "--backend",
        "s3://pc-bucket?region=us-east-1&endpoint=http://127.0.0.1:9&max_attempts=1",
        "doctor",
        env={"PORTABLE_CREDS_ADMIN_VERIFY": admin_verify},
    )
    out = proc.stdout.decode()
    assert proc.returncode == 1, (proc.returncode, out, proc.stderr)
    assert "[FAIL] policy drift" in out
    assert out.rstrip().endswith("check(s) failed")


# -- the CLI honours ?prefix= in a backend URL, like open_store ---------------------------------


def test_cli_uses_the_url_prefix_like_the_library(wallet_cli: Cli, tmp_path: Path) -> None:
    from portable_creds import open_store
    from portable_creds.secret_key import SecretKeySource

    root = tmp_path / "store"
    url = f"local://{root}?prefix=team/creds"
    wallet_cli.ok("--backend", url, "put", "openai", input=b"sk-team")
    (blob,) = list(root.rglob("openai.enc"))
    assert blob.relative_to(root).parts[:2] == ("team", "creds")
    key = SecretKeySource.from_file(wallet_cli.data_home / "root.key")
    with open_store(url, wallet=WALLET_A, keys=key, outbox=False) as store:
        assert store.get("openai").reveal() == b"sk-team"
        store.put("github", b"gh-lib")
    assert wallet_cli.ok("--backend", url, "list").stdout == b"github\nopenai\n"
    # an explicit --prefix still wins, as open_store(prefix=...) does
    assert wallet_cli.ok("--backend", url, "--prefix", "other", "list").stdout == b""


# -- the outbox creates <home> 0700 --------------------------------------------------------------


def test_outbox_creates_the_data_home_private(cli: Cli, tmp_path: Path) -> None:
    secret = tmp_path / "root.key"
    secret.write_bytes(os.urandom(32))
    secret.chmod(0o600)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    home = tmp_path / "fresh" / "home"
    env = dict(
        cli.env,
        PORTABLE_CREDS_HOME=str(home),
        PORTABLE_CREDS_SECRET_FILE=str(secret),
        PORTABLE_CREDS_LEGACY_TOKEN=TOKEN,
        PORTABLE_CREDS_WALLET=WALLET_A,
    )
    proc = subprocess.run(
        [
            "sh",
            "-c",
            'umask 022; exec "$0" "$@"',
            str(BIN),
            "--backend",
            f"http://127.0.0.1:{closed}",
            "put",
            "openai",
        ],
        input=b"sk-x",
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == EXIT_CODES["remote-unavailable"], proc.stderr
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "outbox").stat().st_mode) == 0o700


# -- doctor counts what list counts ---------------------------------------------------------------


def test_doctor_counts_what_list_counts(wallet_cli: Cli) -> None:
    wallet_cli.ok("put", "openai", input=b"sk")
    wallet_cli.ok("put", "github", input=b"gh")
    (blob,) = list((wallet_cli.data_home / "objects").rglob("openai.enc"))
    for junk in ("notes.txt", "bad name.enc", ".hidden.enc"):
        (blob.parent / junk).write_bytes(b"not a credential")
    listed = wallet_cli.ok("list").stdout.decode().split()
    assert listed == ["github", "openai"]
    store = _checks(wallet_cli.run("doctor", "--json"))["store"]
    assert f": {len(listed)} credential(s)" in store["detail"], store
