"""Every command's ``--help`` has an ``examples:`` section, and ``--json`` output parses.

The command paths are read from the real parser (so a new command is covered automatically);
each ``--help`` and each ``--json`` run is the installed CLI in a subprocess.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from portable_creds.cli import build_parser
from portable_creds.testing.legacy_server import LegacyServer

from .conftest import WALLET_A, WALLET_B, Cli


def _paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = [prefix] if prefix else []
    seen: set[int] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if id(sub) in seen:  # an alias of a command already walked
                    continue
                seen.add(id(sub))
                found.extend(_paths(sub, (*prefix, name)))
    return found


COMMAND_PATHS = _paths(build_parser())


def test_the_walk_finds_nested_commands() -> None:
    assert {
        ("put",),
        ("outbox", "flush"),
        ("config", "set"),
        ("audit", "tail"),
        ("creds", "export"),
        ("completion",),
    } <= set(COMMAND_PATHS)


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=" ".join)
def test_every_command_help_has_examples(cli: Cli, path: tuple[str, ...]) -> None:
    out = cli.ok(*path, "--help").stdout.decode()
    assert "\nexamples:\n" in out, out
    examples = out.split("\nexamples:\n", 1)[1]
    invocations = [ln for ln in examples.splitlines() if "portable-creds " in ln]
    assert 1 <= len(invocations) <= 3, examples
    assert "portable-creds" in examples


def _json(cli: Cli, *args: str, input: bytes = b"", code: int = 0, **kw: Any) -> Any:
    proc = cli.run(*args, "--json", input=input, **kw)
    assert proc.returncode == code, (args, proc.returncode, proc.stderr.decode())
    return json.loads(proc.stdout)


def test_json_output_of_every_command_parses(wallet_cli: Cli, tmp_path: Path) -> None:
    cli = wallet_cli
    audit = ("--audit", f"file:{tmp_path / 'audit.jsonl'}")
    assert _json(cli, *audit, "put", "openai", input=b"sk-json") == {
        "stored": "openai",
        "wallet": WALLET_A,
        "bytes": 7,
    }
    assert _json(cli, "get", "openai")["secret"] == "sk-json"
    assert _json(cli, "list")["services"] == ["openai"]
    assert _json(cli, "rewrap") == {"rewrapped": 0, "wallet": WALLET_A}
    assert _json(cli, "--kek-version", "2", "rewrap") == {"rewrapped": 1, "wallet": WALLET_A}
    assert _json(cli, "--kek-version", "2", *audit, "delete", "openai") == {
        "deleted": "openai",
        "wallet": WALLET_A,
    }
    cli.ok("put", "a", input=b"1")
    assert _json(cli, "teardown", "--yes") == {"deleted": 1, "wallet": WALLET_A}
    assert _json(cli, "outbox", "list") == []
    assert _json(cli, "outbox", "flush") == {"delivered": 0, "pending": 0}
    assert _json(cli, "config", "set", "prefix", "team")["value"] == "team"
    assert _json(cli, "config", "show")["settings"]["prefix"]["value"] == "team"
    assert _json(cli, "config", "unset", "prefix")["removed"] is True
    assert Path(_json(cli, "config", "path")["config_file"]).name == "config.toml"
    assert _json(cli, "config", "profiles") == {"profiles": ["default"]}
    assert _json(cli, "doctor")["ok"] is True
    events = _json(cli, *audit, "audit", "query")["events"]
    assert [e["operation"] for e in events] == ["put", "delete"]
    tail = cli.ok(*audit, "audit", "tail", "--json").stdout.decode().splitlines()
    assert [json.loads(line) for line in tail] == events  # JSON Lines: one object a line
    assert "s3" in _json(cli, "admin")["drivers"]
    demo = _json(cli, "demo")
    assert demo["ok"] is True and demo["tamper_detected"] is True
    assert demo["plaintext_in_blob"] is False
    assert _json(cli, "completion", "fish")["shell"] == "fish"


def test_migrate_json(wallet_cli: Cli) -> None:
    with LegacyServer({"tok": None}) as srv:
        srv.seed(WALLET_B, "svc", b"legacy-value")
        report = _json(
            wallet_cli,
            "migrate",
            "--from-legacy",
            srv.url,
            WALLET_B,
            "--quiet",
            env={"PORTABLE_CREDS_LEGACY_TOKEN": "tok"},
        )
    assert isinstance(report, dict)
    assert "legacy-value" not in json.dumps(report)


def test_errors_stay_on_stderr_with_json(wallet_cli: Cli) -> None:
    proc = wallet_cli.run("get", "missing", "--json")
    assert proc.returncode == 3 and proc.stdout == b""
    error = json.loads(proc.stderr)  # under --json, one JSON object (tests/cli/test_polish.py)
    assert error["exit_name"] == "not-found" and "'missing'" in error["error"]


def test_run_has_no_output_of_its_own(wallet_cli: Cli) -> None:
    """``run`` execs the command: with ``--json`` stdout is still exactly the child's."""
    wallet_cli.ok("put", "openai", input=b"sk-1")
    proc = wallet_cli.ok("run", "--json", "--", sys.executable, "-c", "print('child')")
    assert proc.stdout == b"child\n"


def test_the_s3_admin_help_has_examples(cli: Cli) -> None:
    out = cli.ok("admin", "s3", "--help").stdout.decode()
    assert "\nexamples:\n" in out and "--log-bucket" in out
