"""Every CLI operation on a store emits exactly one audit event to the configured sink.

The sink is chosen the three documented ways (``--audit``, ``PORTABLE_CREDS_AUDIT``, the
profile's ``audit`` key) and read back both directly and through ``audit tail``.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from portable_creds.audit import FIELDS

from .conftest import WALLET_A, Cli

SECRET = b"sk-audit-wiring-7f3a9c"


def _events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_put_get_list_delete_each_add_one_event(wallet_cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "logs" / "audit.jsonl"
    sink = ("--audit", f"file:{log}")
    steps: list[tuple[tuple[str, ...], bytes, tuple[str, str | None]]] = [
        (("put", "openai"), SECRET, ("put", "openai")),
        (("get", "openai"), b"", ("get", "openai")),
        (("list",), b"", ("list", None)),
        (("delete", "openai"), b"", ("delete", "openai")),
    ]
    for argv, stdin, (operation, service) in steps:
        before = len(_events(log))
        proc = wallet_cli.ok(*sink, *argv, input=stdin)
        events = _events(log)
        assert len(events) == before + 1, (argv, events[before:])
        event = events[-1]
        assert (event["operation"], event["service"], event["outcome"]) == (
            operation,
            service,
            "ok",
        )
        assert event["wallet"] == WALLET_A
        assert event["backend"].startswith("local:")
        assert set(event) == set(FIELDS)
        assert SECRET not in proc.stderr
    raw = log.read_bytes()
    assert SECRET not in raw and SECRET.decode() not in json.dumps(_events(log))
    assert stat.S_IMODE(log.stat().st_mode) == 0o600

    # audit tail shows the same four, oldest first, in text and as JSON Lines
    text = wallet_cli.ok(*sink, "audit", "tail", "-n", "10").stdout.decode().splitlines()
    assert [line.split()[1] for line in text] == ["put", "get", "list", "delete"]
    lines = wallet_cli.ok(*sink, "audit", "tail", "-n", "10", "--json").stdout.splitlines()
    assert [json.loads(line) for line in lines] == _events(log)


def test_a_failed_operation_is_one_error_event(wallet_cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    proc = wallet_cli.run("--audit", f"file:{log}", "get", "missing")
    assert proc.returncode == 3
    (event,) = _events(log)
    assert (event["operation"], event["service"], event["outcome"], event["error"]) == (
        "get",
        "missing",
        "error",
        "NotFound",
    )


@pytest.mark.parametrize("how", ["env", "profile"])
def test_sink_from_environment_or_profile(wallet_cli: Cli, tmp_path: Path, how: str) -> None:
    log = tmp_path / f"{how}.jsonl"
    env: dict[str, str] = {}
    if how == "env":
        env["PORTABLE_CREDS_AUDIT"] = f"file:{log}"
    else:
        wallet_cli.ok("config", "set", "audit", f"file:{log}")
    wallet_cli.ok("put", "github", input=b"ghp-x", env=env)
    wallet_cli.ok("list", env=env)
    assert [e["operation"] for e in _events(log)] == ["put", "list"]


def test_no_sink_configured_writes_no_log(wallet_cli: Cli) -> None:
    wallet_cli.ok("put", "github", input=b"ghp-x")
    assert not list(wallet_cli.home.rglob("*.jsonl"))
