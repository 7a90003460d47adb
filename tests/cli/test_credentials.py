"""put / get / list / delete / teardown / rewrap through the installed CLI."""

from __future__ import annotations

import json
import os
import pty
import select
import stat
import subprocess
import time
from pathlib import Path

import pytest

from portable_creds import envelope, names
from portable_creds.errors import EXIT_CODES

from .conftest import BIN, WALLET_A, WALLET_B, Cli, error_line


def blob_path(cli: Cli, service: str, wallet: str = WALLET_A) -> Path:
    return cli.data_home / "objects" / names.object_key(wallet, service)


# -- first use --------------------------------------------------------------------------


def test_first_use_creates_root_secret_0600_with_one_notice(cli: Cli) -> None:
    wallet_cli = cli
    wallet_cli.env["PORTABLE_CREDS_WALLET"] = WALLET_A
    key = wallet_cli.data_home / "root.key"
    assert not key.exists()
    first = wallet_cli.ok("put", "openai", input=b"sk-1\n")
    assert first.stdout == b""
    notices = [line for line in first.stderr.decode().splitlines() if "root secret" in line]
    assert len(notices) == 1
    assert str(key) in notices[0]
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(wallet_cli.data_home.stat().st_mode) == 0o700
    assert stat.S_IMODE(blob_path(wallet_cli, "openai").stat().st_mode) == 0o600
    before = key.read_bytes()
    second = wallet_cli.ok("put", "other", input=b"sk-2")
    assert b"root secret" not in second.stderr
    assert key.read_bytes() == before


# -- put / get exactness ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (b"sk-123\n", b"sk-123"),  # echo sk-123 | put
        (b"sk-123", b"sk-123"),  # printf / echo -n
        (b"sk-123\r\n", b"sk-123"),  # Windows line ending
        (b"sk-123\n\n", b"sk-123\n"),  # only one newline is removed
        (b"  spaced  \n", b"  spaced  "),  # other whitespace is kept
        (b"line1\nline2\n", b"line1\nline2"),
    ],
)
def test_put_strips_exactly_one_trailing_newline(wallet_cli: Cli, given: bytes,
                                                 stored: bytes) -> None:
    wallet_cli.ok("put", "svc", input=given)
    got = wallet_cli.ok("get", "svc")
    assert got.stdout == stored
    assert got.stderr == b""


def test_put_raw_keeps_bytes_exactly(wallet_cli: Cli) -> None:
    wallet_cli.ok("put", "svc", "--raw", input=b"sk-123\n")
    assert wallet_cli.ok("get", "svc").stdout == b"sk-123\n"


def test_binary_secret_round_trips_exactly(wallet_cli: Cli) -> None:
    secret = bytes(range(256)) + b"\x00\n\r\n"
    wallet_cli.ok("put", "bin", "--raw", input=secret)
    got = wallet_cli.ok("get", "bin")
    assert got.stdout == secret
    as_json = json.loads(wallet_cli.ok("get", "bin", "--json").stdout)
    import base64

    assert base64.b64decode(as_json["secret_base64"]) == secret
    assert "secret" not in as_json


def test_put_from_file(wallet_cli: Cli, tmp_path: Path) -> None:
    f = tmp_path / "secret.txt"
    f.write_bytes(b"from-file\n")
    wallet_cli.ok("put", "a", "--from-file", str(f), input=b"ignored stdin")
    wallet_cli.ok("put", "b", "--from-file", str(f), "--raw")
    assert wallet_cli.ok("get", "a").stdout == b"from-file"
    assert wallet_cli.ok("get", "b").stdout == b"from-file\n"


def test_put_replaces_and_get_json(wallet_cli: Cli) -> None:
    wallet_cli.ok("put", "svc", input=b"old\n")
    out = json.loads(wallet_cli.ok("put", "svc", "--json", input=b"new\n").stdout)
    assert out == {"stored": "svc", "wallet": WALLET_A, "bytes": 3}
    got = json.loads(wallet_cli.ok("get", "svc", "--json").stdout)
    assert got == {"service": "svc", "wallet": WALLET_A, "secret": "new"}


def test_put_from_a_terminal_prompts_without_echo(wallet_cli: Cli) -> None:
    pid, fd = pty.fork()
    if pid == 0:  # child: the CLI on a terminal
        os.execve(str(BIN), [str(BIN), "put", "tty-svc"], wallet_cli.env)
    output = b""
    try:
        output += _read_until(fd, b"input hidden")
        os.write(fd, b"typed-secret\n")
        output += _read_until(fd, None)
    finally:
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert b"typed-secret" not in output  # not echoed
    assert wallet_cli.ok("get", "tty-svc").stdout == b"typed-secret"


def _read_until(fd: int, marker: bytes | None, timeout: float = 30.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 1024)
        except OSError:  # EIO: the child closed the terminal
            return data
        if not chunk:
            return data
        data += chunk
        if marker is not None and marker in data:
            return data
    raise AssertionError(f"timed out waiting for {marker!r}; got {data!r}")


# -- list / delete --------------------------------------------------------------------------


def test_list_one_per_line_sorted_and_json(wallet_cli: Cli) -> None:
    assert wallet_cli.ok("list").stdout == b""
    for name in ("zeta", "Alpha", "beta.v2", "a_b-c"):
        wallet_cli.ok("put", name, input=b"x")
    names_out = wallet_cli.ok("list").stdout.decode().splitlines()
    assert names_out == sorted(["zeta", "Alpha", "beta.v2", "a_b-c"])
    doc = json.loads(wallet_cli.ok("list", "--json").stdout)
    assert doc == {"wallet": WALLET_A, "services": names_out}
    # the global flag before the command works the same
    assert json.loads(wallet_cli.ok("--json", "list").stdout) == doc


def test_delete_then_get_is_not_found(wallet_cli: Cli) -> None:
    wallet_cli.ok("put", "gone", input=b"x")
    wallet_cli.ok("put", "kept", input=b"y")
    proc = wallet_cli.ok("delete", "gone")
    assert proc.stdout == b""
    assert wallet_cli.ok("list").stdout == b"kept\n"
    missing = wallet_cli.run("get", "gone")
    assert missing.returncode == EXIT_CODES["not-found"]
    assert "'gone'" in error_line(missing)
    again = wallet_cli.run("delete", "gone")
    assert again.returncode == EXIT_CODES["not-found"]
    error_line(again)


# -- wallets, case, teardown ------------------------------------------------------------------


def test_wallet_case_is_canonical_and_wallets_are_isolated(cli: Cli) -> None:
    cli.ok("--wallet", WALLET_A.upper().replace("0X", "0x"), "put", "svc", input=b"a-secret")
    assert cli.ok("--wallet", WALLET_A, "get", "svc").stdout == b"a-secret"
    assert cli.ok("--wallet", WALLET_B, "list").stdout == b""
    other = cli.run("--wallet", WALLET_B, "get", "svc")
    assert other.returncode == EXIT_CODES["not-found"]
    assert b"a-secret" not in other.stderr + other.stdout


def test_teardown_requires_yes_without_a_terminal(cli: Cli) -> None:
    for name in ("one", "two"):
        cli.ok("--wallet", WALLET_A, "put", name, input=b"x")
    cli.ok("--wallet", WALLET_B, "put", "b-only", input=b"y")
    refused = cli.run("--wallet", WALLET_A, "teardown", input=b"yes\n")
    assert refused.returncode == EXIT_CODES["usage"]
    assert "--yes" in error_line(refused)
    assert cli.ok("--wallet", WALLET_A, "list").stdout == b"one\ntwo\n"
    out = json.loads(cli.ok("--wallet", WALLET_A, "teardown", "--yes", "--json").stdout)
    assert out == {"deleted": 2, "wallet": WALLET_A}
    assert cli.ok("--wallet", WALLET_A, "list").stdout == b""
    assert cli.ok("--wallet", WALLET_B, "list").stdout == b"b-only\n"


@pytest.mark.parametrize(("answer", "deleted"), [(b"yes\n", True), (b"no\n", False)])
def test_teardown_confirms_on_a_terminal(wallet_cli: Cli, answer: bytes, deleted: bool) -> None:
    wallet_cli.ok("put", "svc", input=b"x")
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(str(BIN), [str(BIN), "teardown"], wallet_cli.env)
    try:
        prompt = _read_until(fd, b"Type 'yes'")
        assert b"1 credential" in prompt
        os.write(fd, answer)
        _read_until(fd, None)
    finally:
        _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code == (0 if deleted else EXIT_CODES["usage"])
    assert wallet_cli.ok("list").stdout == (b"" if deleted else b"svc\n")


# -- rewrap -----------------------------------------------------------------------------------


def _kek_id(path: Path) -> str:
    return envelope.parse_header(path.read_bytes()).kek_id


def test_rewrap_moves_every_blob_to_the_new_kek_version(wallet_cli: Cli) -> None:
    wallet_cli.ok("put", "a", input=b"secret-a")
    wallet_cli.ok("put", "b", input=b"secret-b")
    before = {s: _kek_id(blob_path(wallet_cli, s)) for s in "ab"}
    assert all(k.startswith("sk.v1.") for k in before.values())
    payload_before = blob_path(wallet_cli, "a").read_bytes()[-30:]

    out = json.loads(wallet_cli.ok("--kek-version", "2", "rewrap", "--json").stdout)
    assert out == {"rewrapped": 2, "wallet": WALLET_A}
    after = {s: _kek_id(blob_path(wallet_cli, s)) for s in "ab"}
    assert all(k.startswith("sk.v2.") for k in after.values())
    # same root secret (same fingerprint), payload ciphertext untouched
    assert {k.split(".")[-1] for k in after.values()} == {k.split(".")[-1] for k in before.values()}
    assert blob_path(wallet_cli, "a").read_bytes()[-30:] == payload_before
    # idempotent
    again = json.loads(wallet_cli.ok("--kek-version", "2", "rewrap", "--json").stdout)
    assert again["rewrapped"] == 0
    # readable at version 2 (env var form too)
    assert wallet_cli.ok("get", "a", env={"PORTABLE_CREDS_KEK_VERSION": "2"}).stdout == b"secret-a"
    # a version-1 key source refuses the version-2 blob
    old = wallet_cli.run("get", "a")
    assert old.returncode == EXIT_CODES["integrity"]
    assert b"secret-a" not in old.stdout + old.stderr
    assert "--kek-version 2" in error_line(old)  # and says what to do


def test_commands_work_with_options_after_the_command(cli: Cli) -> None:
    cli.ok("put", "svc", "--wallet", WALLET_A, input=b"after")
    assert cli.ok("get", "svc", "--wallet", WALLET_A).stdout == b"after"


def test_stdout_of_get_is_pipe_safe(wallet_cli: Cli) -> None:
    wallet_cli.ok("put", "svc", input=b"piped\n")
    proc = subprocess.run(
        f"'{BIN}' get svc | od -An -c", shell=True, capture_output=True,
        env=wallet_cli.env, check=True,
    )
    assert proc.stdout.split() == [b"p", b"i", b"p", b"e", b"d"]
