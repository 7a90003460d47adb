"""Every expected failure: one stderr line, the documented exit code, no traceback, no secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from portable_creds import names
from portable_creds.envelope import DEFAULT_MAX_PAYLOAD
from portable_creds.errors import EXIT_CODES

from .conftest import FAILDRIVER, WALLET_A, WALLET_B, Cli, error_line

SECRET = b"sk-very-secret-value-0123456789"


def blob_path(cli: Cli, service: str, wallet: str = WALLET_A) -> Path:
    return cli.data_home / "objects" / names.object_key(wallet, service)


def assert_no_secret(*outputs: bytes) -> None:
    for out in outputs:
        assert SECRET not in out
        assert SECRET.hex().encode() not in out


@pytest.mark.parametrize(
    "service",
    ["..", ".hidden", "a..b", "a/b", "x" * 65, "sp ace", "", "ünï", "a\\b"],
)
def test_bad_service_names(wallet_cli: Cli, service: str) -> None:
    for argv in (["put", service], ["get", service], ["delete", service]):
        proc = wallet_cli.run(*argv, input=SECRET)
        assert proc.returncode == EXIT_CODES["invalid-input"], (argv, proc.stderr)
        line = error_line(proc)
        assert "service name" in line
        assert_no_secret(proc.stdout, proc.stderr)
    assert not (wallet_cli.data_home / "objects").exists() or wallet_cli.ok("list").stdout == b""


@pytest.mark.parametrize("wallet", ["0x123", "abababababababababababababababababababab",
                                    "0x" + "g1" * 20, "0x" + "a1" * 21])
def test_bad_wallet(cli: Cli, wallet: str) -> None:
    proc = cli.run("--wallet", wallet, "put", "svc", input=SECRET)
    assert proc.returncode == EXIT_CODES["invalid-input"]
    assert "wallet" in error_line(proc)
    assert_no_secret(proc.stdout, proc.stderr)


def test_missing_wallet_is_a_configuration_error(cli: Cli) -> None:
    proc = cli.run("list")
    assert proc.returncode == EXIT_CODES["configuration"]
    line = error_line(proc)
    assert "--wallet" in line and "PORTABLE_CREDS_WALLET" in line


def test_oversize_secret(wallet_cli: Cli) -> None:
    at_limit = b"a" * DEFAULT_MAX_PAYLOAD
    wallet_cli.ok("put", "big", input=at_limit + b"\n")
    assert len(wallet_cli.ok("get", "big").stdout) == DEFAULT_MAX_PAYLOAD
    over = wallet_cli.run("put", "bigger", input=at_limit + b"b")
    assert over.returncode == EXIT_CODES["invalid-input"]
    assert str(DEFAULT_MAX_PAYLOAD) in error_line(over)
    huge = wallet_cli.run("put", "huge", input=b"z" * (8 * DEFAULT_MAX_PAYLOAD))
    assert huge.returncode == EXIT_CODES["invalid-input"]
    error_line(huge)
    assert wallet_cli.ok("list").stdout == b"big\n"


@pytest.mark.parametrize("given", [b"", b"\n", b"\r\n"])
def test_empty_secret_is_refused(wallet_cli: Cli, given: bytes) -> None:
    proc = wallet_cli.run("put", "svc", input=given)
    assert proc.returncode == EXIT_CODES["invalid-input"]
    assert "empty secret" in error_line(proc)
    assert wallet_cli.ok("list").stdout == b""


def test_unreadable_from_file(wallet_cli: Cli, tmp_path: Path) -> None:
    proc = wallet_cli.run("put", "svc", "--from-file", str(tmp_path / "nope"))
    assert proc.returncode == EXIT_CODES["invalid-input"]
    assert "nope" in error_line(proc)


def test_get_not_found(wallet_cli: Cli) -> None:
    proc = wallet_cli.run("get", "never-stored")
    assert proc.returncode == EXIT_CODES["not-found"]
    assert proc.stdout == b""
    line = error_line(proc)
    assert "'never-stored'" in line and "portable-creds list" in line


@pytest.mark.parametrize("where", ["header", "wrapped-key", "payload", "tag"])
def test_flipped_byte_is_an_integrity_error(wallet_cli: Cli, where: str) -> None:
    wallet_cli.ok("put", "svc", input=SECRET)
    path = blob_path(wallet_cli, "svc")
    blob = bytearray(path.read_bytes())
    offset = {"header": 4, "wrapped-key": 40, "payload": len(blob) - 20,
              "tag": len(blob) - 1}[where]
    blob[offset] ^= 0x01
    path.write_bytes(bytes(blob))
    proc = wallet_cli.run("get", "svc")
    assert proc.returncode == EXIT_CODES["integrity"]
    assert proc.stdout == b""
    assert "integrity check failed" in error_line(proc)
    assert_no_secret(proc.stdout, proc.stderr)


def test_truncated_and_extended_blobs_are_integrity_errors(wallet_cli: Cli) -> None:
    wallet_cli.ok("put", "svc", input=SECRET)
    path = blob_path(wallet_cli, "svc")
    good = path.read_bytes()
    for bad in (good[:-1], good + b"\x00", good[: len(good) // 2]):
        path.write_bytes(bad)
        proc = wallet_cli.run("get", "svc")
        assert proc.returncode == EXIT_CODES["integrity"]
        assert proc.stdout == b""
        error_line(proc)


def test_blob_copied_to_another_service_is_an_integrity_error(wallet_cli: Cli) -> None:
    wallet_cli.ok("put", "a", input=SECRET)
    wallet_cli.ok("put", "b", input=b"other")
    blob_path(wallet_cli, "b").write_bytes(blob_path(wallet_cli, "a").read_bytes())
    proc = wallet_cli.run("get", "b")
    assert proc.returncode == EXIT_CODES["integrity"]
    assert_no_secret(proc.stdout, proc.stderr)


def test_wrong_root_secret_is_an_integrity_error(wallet_cli: Cli, tmp_path: Path) -> None:
    wallet_cli.ok("put", "svc", input=SECRET)
    other = tmp_path / "other.key"
    other.write_bytes(bytes(range(32)))
    other.chmod(0o600)
    proc = wallet_cli.run("--secret-file", str(other), "get", "svc")
    assert proc.returncode == EXIT_CODES["integrity"]
    assert_no_secret(proc.stdout, proc.stderr)


def test_access_denied_when_the_prefix_names_another_wallet(cli: Cli) -> None:
    # A misconfigured prefix that reaches into wallet A's tree: the local store's tenant
    # scoping refuses wallet B, whatever the prefix says.
    cli.init_root_secret()
    proc = cli.run("--wallet", WALLET_B, "--prefix", f"bots/{WALLET_A}", "put", "svc",
                   input=SECRET)
    assert proc.returncode == EXIT_CODES["access-denied"]
    assert "access denied" in error_line(proc)
    assert_no_secret(proc.stdout, proc.stderr)


def test_missing_secret_file_is_a_configuration_error(wallet_cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "typo.key"
    for argv in (["--secret-file", str(missing), "put", "svc"], ["put", "svc"]):
        env = {"PORTABLE_CREDS_SECRET_FILE": str(missing)} if argv[0] == "put" else {}
        proc = wallet_cli.run(*argv, input=SECRET, env=env)
        assert proc.returncode == EXIT_CODES["configuration"], proc.stderr
        assert str(missing) in error_line(proc)
        assert not missing.exists()  # never invented on a mistyped path


def test_world_readable_secret_file_is_refused(wallet_cli: Cli, tmp_path: Path) -> None:
    key = tmp_path / "loose.key"
    key.write_bytes(bytes(32))
    key.chmod(0o644)
    proc = wallet_cli.run("--secret-file", str(key), "put", "svc", input=SECRET)
    assert proc.returncode == EXIT_CODES["configuration"]
    assert "chmod 600" in error_line(proc)


def test_unknown_backend_scheme(wallet_cli: Cli) -> None:
    proc = wallet_cli.run("--backend", "ftp://example", "list")
    assert proc.returncode == EXIT_CODES["configuration"]
    assert "ftp" in error_line(proc)


@pytest.mark.parametrize("argv", [["frobnicate"], ["get"], ["put", "a", "b"], ["list", "--nope"],
                                  ["--kek-version", "x", "list"]])
def test_usage_errors_are_one_line_exit_2(wallet_cli: Cli, argv: list[str]) -> None:
    proc = wallet_cli.run(*argv)
    assert proc.returncode == EXIT_CODES["usage"]
    assert "--help" in error_line(proc)


def _flaky_env(tmp_path: Path) -> tuple[str, dict[str, str]]:
    crash = tmp_path / "crash"
    crash.touch()
    url = f"flaky://{tmp_path / 'objects'}?crash={crash}"
    return url, {"PYTHONPATH": str(FAILDRIVER)}


def test_unexpected_exception_is_one_line_exit_1(wallet_cli: Cli, tmp_path: Path) -> None:
    url, env = _flaky_env(tmp_path)
    wallet_cli.env["PORTABLE_CREDS_SECRET_FILE"] = str(_root_key(tmp_path))
    proc = wallet_cli.run("--backend", url, "put", "svc", input=SECRET, env=env)
    assert proc.returncode == EXIT_CODES["error"]
    line = error_line(proc)
    assert "RuntimeError" in line and "--debug" in line
    assert_no_secret(proc.stdout, proc.stderr)

    debug = wallet_cli.run("--backend", url, "--debug", "put", "svc", input=SECRET, env=env)
    assert debug.returncode == EXIT_CODES["error"]
    assert b"Traceback" in debug.stderr
    assert_no_secret(debug.stdout, debug.stderr)


def _root_key(tmp_path: Path) -> Path:
    key = tmp_path / "root.key"
    if not key.exists():
        key.write_bytes(bytes(range(100, 132)))
        key.chmod(0o600)
    return key
