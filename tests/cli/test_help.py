"""``--help``: complete, documents the exit codes, and never imports a cloud SDK."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from portable_creds.commands._common import EXIT_CODE_MEANINGS
from portable_creds.errors import EXIT_CODES

from .conftest import BIN, Cli

COMMANDS = ["put", "get", "list", "delete", "teardown", "rewrap", "outbox", "admin",
            "conformance", "demo"]
CLOUD_SDKS = ("boto3", "botocore", "qcloud_cos", "tencentcloud", "moto")


def test_help_lists_every_command_and_every_exit_code(cli: Cli) -> None:
    proc = cli.ok("--help")
    out = proc.stdout.decode()
    for command in COMMANDS:
        assert f"\n  {command} " in out, command
    # every documented code, with its number, taken from the error hierarchy
    assert {name for name, _ in EXIT_CODE_MEANINGS} == set(EXIT_CODES)
    for name, code in EXIT_CODES.items():
        assert f"{code:>3}  {name}" in out, name
    assert proc.stderr == b""


@pytest.mark.parametrize(
    "argv",
    [["put", "--help"], ["get", "--help"], ["list", "--help"], ["delete", "--help"],
     ["teardown", "--help"], ["rewrap", "--help"], ["outbox", "--help"],
     ["outbox", "list", "--help"], ["outbox", "flush", "--help"], ["demo", "--help"],
     ["admin", "--help"]],
)
def test_every_command_has_help(cli: Cli, argv: list[str]) -> None:
    out = cli.ok(*argv).stdout.decode()
    assert out.startswith("usage: portable-creds " + argv[0])
    assert "--wallet" in out or argv[0] == "admin"


_PROBE = """
import json, sys
from portable_creds.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
sys.stderr.write(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


@pytest.mark.parametrize(
    "argv", [["--help"], ["put", "--help"], ["outbox", "flush", "--help"], ["admin", "--help"]]
)
def test_help_imports_no_cloud_sdk_and_no_crypto(cli: Cli, argv: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True,
                          env=cli.env, check=False)
    report = json.loads(proc.stderr.decode().splitlines()[-1])
    assert report["code"] == 0
    modules = report["modules"]
    assert "portable_creds.cli" in modules  # the probe really ran the CLI
    leaked = [m for m in modules if m.split(".")[0] in CLOUD_SDKS]
    assert leaked == []
    # cold start stays light: no crypto, no store, no driver registry yet
    heavy = [m for m in modules if m.split(".")[0] in ("cryptography", "attrs")
             or m in ("portable_creds.store", "portable_creds.registry")]
    assert heavy == []


def test_console_script_importtime_shows_no_cloud_sdk(cli: Cli) -> None:
    """The real entry point under ``python -X importtime``: every import it performs."""
    proc = subprocess.run([sys.executable, "-X", "importtime", str(BIN), "--help"],
                          capture_output=True, env=cli.env, check=False)
    assert proc.returncode == 0
    imported = [line.split("|")[-1].strip() for line in proc.stderr.decode().splitlines()
                if line.startswith("import time:") and "|" in line]
    assert "portable_creds.cli" in imported
    assert not [m for m in imported if m.split(".")[0] in CLOUD_SDKS]


def test_local_operations_import_no_cloud_sdk(cli: Cli) -> None:
    probe = _PROBE.replace("main(sys.argv[1:])", "main(['--wallet', sys.argv[1], 'list'])")
    proc = subprocess.run([sys.executable, "-c", probe, "0x" + "a1" * 20],
                          capture_output=True, env=cli.env, check=False)
    report = json.loads(proc.stderr.decode().splitlines()[-1])
    assert report["code"] == 0
    assert "portable_creds.store" in report["modules"]
    assert not [m for m in report["modules"] if m.split(".")[0] in CLOUD_SDKS]


def test_no_command_prints_help_and_exits_usage(cli: Cli) -> None:
    proc = cli.run()
    assert proc.returncode == EXIT_CODES["usage"]
    assert b"usage: portable-creds" in proc.stderr
    assert proc.stdout == b""


def test_version(cli: Cli) -> None:
    from portable_creds import __version__

    assert cli.ok("--version").stdout.decode().strip() == f"portable-creds {__version__}"
