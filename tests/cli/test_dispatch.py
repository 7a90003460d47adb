"""``admin <driver> ...`` and ``conformance ...`` hand their arguments to other packages."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from portable_creds.errors import EXIT_CODES

from .conftest import FAILDRIVER, Cli, error_line


@pytest.fixture
def plugin_cli(cli: Cli) -> Cli:
    cli.env["PYTHONPATH"] = str(FAILDRIVER)
    return cli


def test_admin_dispatches_argv_to_the_driver_class(plugin_cli: Cli) -> None:
    argv = ["render", "--bucket", "b", "--json", "-h", "--", "x"]
    proc = plugin_cli.ok("admin", "flaky", *argv)
    assert json.loads(proc.stdout) == {"driver": "flaky", "argv": argv}


def test_admin_returns_the_drivers_exit_code(plugin_cli: Cli) -> None:
    proc = plugin_cli.run("admin", "flaky", "--exit", "4")
    assert proc.returncode == 4
    assert json.loads(proc.stdout)["argv"] == ["--exit", "4"]


def test_admin_global_options_before_the_command_are_not_forwarded(plugin_cli: Cli) -> None:
    proc = plugin_cli.ok("--wallet", "0x" + "a1" * 20, "admin", "flaky", "status")
    assert json.loads(proc.stdout)["argv"] == ["status"]


def test_admin_lists_drivers_with_admin_commands(plugin_cli: Cli) -> None:
    out = plugin_cli.ok("admin").stdout.decode()
    listed = out.splitlines()[0].split(":", 1)[1].replace(",", " ").split()
    assert "flaky" in listed
    assert "local" not in listed


def test_admin_driver_without_admin_commands(cli: Cli) -> None:
    proc = cli.run("admin", "local", "anything")
    assert proc.returncode == EXIT_CODES["configuration"]
    assert "no admin commands" in error_line(proc)


def test_admin_unknown_driver(cli: Cli) -> None:
    proc = cli.run("admin", "nosuchdriver", "x")
    assert proc.returncode == EXIT_CODES["configuration"]
    assert "nosuchdriver" in error_line(proc)


_WITHOUT_SUITE = """
import sys
sys.path = [p for p in sys.path if not p.rstrip('/').endswith('/conformance')]
sys.modules.pop('portable_creds_conformance', None)
from portable_creds.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_conformance_not_installed_is_a_clear_error(cli: Cli) -> None:
    proc = subprocess.run([sys.executable, "-c", _WITHOUT_SUITE, "conformance", "--help"],
                          capture_output=True, env=cli.env, check=False)
    assert proc.returncode == EXIT_CODES["configuration"]
    line = error_line(proc)
    assert "not installed" in line and "pip install" in line


def test_conformance_forwards_to_the_suite(cli: Cli) -> None:
    proc = cli.run("conformance", "--help")
    assert proc.returncode == 0
    assert b"usage:" in proc.stdout
    assert b"portable-creds put" not in proc.stdout  # the suite's help, not ours
