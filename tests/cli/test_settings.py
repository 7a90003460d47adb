"""Where settings come from: flag > PORTABLE_CREDS_* > AGENTKEYS_* > defaults."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from portable_creds import names
from portable_creds.errors import EXIT_CODES

from .conftest import WALLET_A, WALLET_B, Cli, error_line


def stored_under(root: Path, wallet: str, service: str) -> bool:
    return (root / names.object_key(wallet, service)).is_file()


def test_backend_flag_beats_env(cli: Cli, tmp_path: Path) -> None:
    env_root, flag_root = tmp_path / "env-root", tmp_path / "flag-root"
    cli.env.update(PORTABLE_CREDS_BACKEND=f"local://{env_root}", PORTABLE_CREDS_WALLET=WALLET_A)
    cli.ok("put", "by-env", input=b"x")
    cli.ok("--backend", f"local://{flag_root}", "put", "by-flag", input=b"y")
    assert stored_under(env_root, WALLET_A, "by-env")
    assert not stored_under(env_root, WALLET_A, "by-flag")
    assert stored_under(flag_root, WALLET_A, "by-flag")
    # nothing landed in the default location
    assert not (cli.data_home / "objects").exists()


def test_backend_by_name_local_is_the_default_root(cli: Cli) -> None:
    cli.ok("--wallet", WALLET_A, "--backend", "local", "put", "svc", input=b"x")
    assert stored_under(cli.data_home / "objects", WALLET_A, "svc")


def test_wallet_flag_beats_env(cli: Cli) -> None:
    cli.env["PORTABLE_CREDS_WALLET"] = WALLET_A
    cli.ok("--wallet", WALLET_B, "put", "svc", input=b"x")
    root = cli.data_home / "objects"
    assert stored_under(root, WALLET_B, "svc")
    assert not stored_under(root, WALLET_A, "svc")
    assert cli.ok("list").stdout == b""  # env wallet A has nothing


def test_home_env_and_flag(cli: Cli, tmp_path: Path) -> None:
    env_home, flag_home = tmp_path / "env-home", tmp_path / "flag-home"
    cli.env.update(PORTABLE_CREDS_HOME=str(env_home), PORTABLE_CREDS_WALLET=WALLET_A)
    first = cli.ok("put", "svc", input=b"x")
    assert str(env_home / "root.key") in first.stderr.decode()
    assert stored_under(env_home / "objects", WALLET_A, "svc")
    cli.ok("--home", str(flag_home), "put", "svc2", input=b"y")
    assert (flag_home / "root.key").is_file()
    assert stored_under(flag_home / "objects", WALLET_A, "svc2")
    assert not stored_under(env_home / "objects", WALLET_A, "svc2")
    assert not cli.data_home.exists()


def test_xdg_data_home_is_the_default_home(cli: Cli, tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    cli.ok("--wallet", WALLET_A, "put", "svc", input=b"x", env={"XDG_DATA_HOME": str(xdg)})
    assert (xdg / "portable-creds" / "root.key").is_file()


def _key(path: Path, seed: int) -> Path:
    path.write_bytes(bytes((seed + i) % 256 for i in range(32)))
    path.chmod(0o600)
    return path


def test_secret_file_env_and_flag(wallet_cli: Cli, tmp_path: Path) -> None:
    k1, k2 = _key(tmp_path / "k1", 1), _key(tmp_path / "k2", 2)
    wallet_cli.ok("put", "svc", input=b"under-k1", env={"PORTABLE_CREDS_SECRET_FILE": str(k1)})
    # the default root secret cannot open it
    assert wallet_cli.run("get", "svc").returncode == EXIT_CODES["integrity"]
    # the env var can
    got = wallet_cli.ok("get", "svc", env={"PORTABLE_CREDS_SECRET_FILE": str(k1)})
    assert got.stdout == b"under-k1"
    # the flag beats the env var
    got = wallet_cli.ok("--secret-file", str(k1), "get", "svc",
                        env={"PORTABLE_CREDS_SECRET_FILE": str(k2)})
    assert got.stdout == b"under-k1"
    wrong = wallet_cli.run("--secret-file", str(k2), "get", "svc",
                           env={"PORTABLE_CREDS_SECRET_FILE": str(k1)})
    assert wrong.returncode == EXIT_CODES["integrity"]


def test_prefix_flag_and_env(wallet_cli: Cli) -> None:
    wallet_cli.ok("--prefix", "tenants/prod", "put", "svc", input=b"x")
    root = wallet_cli.data_home / "objects"
    assert (root / names.object_key(WALLET_A, "svc", "tenants/prod")).is_file()
    assert wallet_cli.ok("list").stdout == b""
    assert wallet_cli.ok("list", env={"PORTABLE_CREDS_PREFIX": "tenants/prod"}).stdout == b"svc\n"


# -- upstream AGENTKEYS_* names -----------------------------------------------------------------


def test_agentkeys_s3_needs_a_bucket(wallet_cli: Cli) -> None:
    proc = wallet_cli.run("list", env={"AGENTKEYS_CREDENTIAL_BACKEND": "s3"})
    assert proc.returncode == EXIT_CODES["configuration"]
    assert "AGENTKEYS_BUCKET" in error_line(proc)


def test_agentkeys_s3_with_bucket_selects_the_s3_driver(wallet_cli: Cli) -> None:
    env = {"AGENTKEYS_CREDENTIAL_BACKEND": "s3", "AGENTKEYS_BUCKET": "agentkeys-creds"}
    proc = wallet_cli.run("list", env=env)
    # The S3 driver (not the local one) answers: a tenant store needs the data role.
    assert proc.returncode == EXIT_CODES["configuration"]
    assert "role_arn" in error_line(proc)
    # With the upstream role variable as well, the driver gets that far and asks for a token.
    env["AGENTKEYS_DATA_ROLE_ARN"] = "arn:aws:iam::123456789012:role/agentkeys-data-role"
    proc = wallet_cli.run("list", env=env)
    assert proc.returncode == EXIT_CODES["configuration"]
    assert "token" in error_line(proc)
    assert not (wallet_cli.data_home / "objects").exists()


def test_portable_creds_backend_beats_agentkeys(wallet_cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "pc-root"
    env = {"AGENTKEYS_CREDENTIAL_BACKEND": "s3", "PORTABLE_CREDS_BACKEND": f"local://{root}"}
    wallet_cli.ok("put", "svc", input=b"x", env=env)
    assert stored_under(root, WALLET_A, "svc")


def test_unknown_agentkeys_backend(wallet_cli: Cli) -> None:
    proc = wallet_cli.run("list", env={"AGENTKEYS_CREDENTIAL_BACKEND": "carrier-pigeon"})
    assert proc.returncode == EXIT_CODES["configuration"]
    assert "AGENTKEYS_CREDENTIAL_BACKEND" in error_line(proc)


def test_agentkeys_http_is_the_legacy_default_address(wallet_cli: Cli) -> None:
    # Hold 127.0.0.1:8090 bound but not listening, so connections are refused for sure; the
    # failed put must then wait in the outbox, recorded against upstream's default address.
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.bind(("127.0.0.1", 8090))
    except OSError:
        holder.close()
        pytest.skip("port 8090 is in use on this machine")
    try:
        env = {"AGENTKEYS_CREDENTIAL_BACKEND": "http", "PORTABLE_CREDS_LEGACY_TOKEN": "t"}
        proc = wallet_cli.run("put", "svc", input=b"legacy-bound", env=env)
        assert proc.returncode == EXIT_CODES["remote-unavailable"], proc.stderr
        assert "outbox" in error_line(proc)
        entries = json.loads(wallet_cli.ok("outbox", "list", "--json").stdout)
        assert len(entries) == 1
        assert "8090" in entries[0]["backend_id"]
        assert entries[0]["service"] == "svc"
    finally:
        holder.close()
