"""``--scope`` / ``--read-only`` / ``creds export`` on backends that cannot narrow credentials.

The local backend declares ``scoped_credentials="client"``: the CLI refuses a scope unless the
user opts into client-side enforcement (and then says so on stderr), and never exports
anything. Cloud enforcement is tested on Ceph RGW in tests/aws/test_scoping_cli.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ._cli import ERROR_PREFIX, run_cli, stderr_of

WALLET = "0x" + "c3" * 20


class LocalCli:
    def __init__(self, tmp: Path) -> None:
        self.home = tmp
        self.base = ["--backend", f"local://{tmp / 'store'}", "--home", str(tmp / "data")]

    def run(self, *args: str, input: bytes = b"") -> tuple[int, bytes, str]:
        proc = run_cli(self.home, *self.base, "--wallet", WALLET, *args, input=input)
        return proc.returncode, proc.stdout, stderr_of(proc)


@pytest.fixture
def cli(tmp_path: Path) -> LocalCli:
    c = LocalCli(tmp_path)
    for service, value in (("allowed", b"A"), ("denied", b"D")):
        code, _, err = c.run("put", service, input=value)
        assert code == 0, err
    return c


def test_scope_without_opt_in_is_refused_on_a_client_only_backend(cli: LocalCli) -> None:
    code, out, err = cli.run("--scope", "allowed", "get", "allowed")
    assert code == 6 and out == b""  # configuration
    assert err.startswith(ERROR_PREFIX)
    assert "scoped_credentials='client'" in err and "--scope-enforcement client" in err


def test_client_enforcement_is_explicit_and_announced(cli: LocalCli) -> None:
    opt_in = ("--scope", "allowed", "--read-only", "--scope-enforcement", "client")
    code, out, err = cli.run(*opt_in, "get", "allowed")
    assert (code, out) == (0, b"A"), err
    assert "enforced by this client only" in err
    code, out, err = cli.run(*opt_in, "get", "denied")
    assert code == 4 and out == b"", err  # access-denied
    code, out, err = cli.run(*opt_in, "put", "allowed", input=b"changed")
    assert code == 4, err
    code, out, err = cli.run(*opt_in, "delete", "allowed")
    assert code == 4, err
    code, out, err = cli.run("--scope", "allowed,absent", "--scope-enforcement", "client", "list")
    assert (code, out) == (0, b"allowed\n"), err
    # Nothing changed.
    assert cli.run("get", "allowed")[1] == b"A"
    assert cli.run("list")[1] == b"allowed\ndenied\n"


def test_options_after_the_command_and_repeated_scopes(cli: LocalCli) -> None:
    code, out, err = cli.run(
        "list", "--scope", "allowed", "--scope", "denied", "--scope-enforcement", "client"
    )
    assert (code, out) == (0, b"allowed\ndenied\n"), err


@pytest.mark.parametrize(
    "args",
    [
        ("--read-only", "list"),
        ("--scope-enforcement", "client", "list"),
        ("--scope", ",", "list"),
        ("creds", "export"),
        ("creds", "export", "--read-only"),
    ],
)
def test_half_given_scope_options_are_usage_errors(cli: LocalCli, args: tuple[str, ...]) -> None:
    code, out, err = cli.run(*args)
    assert code == 2 and out == b""
    assert err.startswith(ERROR_PREFIX) and "--scope" in err


def test_invalid_service_in_scope_is_invalid_input(cli: LocalCli) -> None:
    code, out, err = cli.run("--scope", "ok,../etc", "--scope-enforcement", "client", "list")
    assert code == 8 and out == b"", err


@pytest.mark.parametrize(
    "extra", [(), ("--scope-enforcement", "client"), ("--read-only", "--format", "json")]
)
def test_nothing_is_exported_without_cloud_enforcement(
    cli: LocalCli, extra: tuple[str, ...]
) -> None:
    code, out, err = cli.run("creds", "export", "--scope", "allowed", *extra)
    assert code == 6 and out == b"", err
    assert err.startswith(ERROR_PREFIX)


def test_static_key_s3_store_exports_nothing(tmp_path: Path) -> None:
    """Static keys cannot carry a scope: refused before any request is made."""
    proc = run_cli(
        tmp_path,
        "--backend",
        "s3://pc-bucket?region=us-east-1&endpoint=http://127.0.0.1:9",
        "--wallet",
        WALLET,
        "creds",
        "export",
        "--scope",
        "allowed",
        env={"AWS_ACCESS_KEY_ID": "AKIDSTATIC", "AWS_SECRET_ACCESS_KEY": "static-secret-value"},
    )
    assert proc.returncode == 6 and proc.stdout == b""
    assert "static-secret-value" not in stderr_of(proc)


def test_a_refused_export_is_audited_as_an_error(cli: LocalCli) -> None:
    log = cli.home / "audit.jsonl"
    code, out, err = cli.run("creds", "export", "--scope", "allowed", "--audit", f"file:{log}")
    assert code == 6 and out == b"", err
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["operation"], e["outcome"], e["service"]) for e in events] == [
        ("creds-export", "error", "allowed")
    ]
