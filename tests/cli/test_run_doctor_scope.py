"""``run`` fetches through a read-only scope of exactly what it injects; ``doctor`` says who
enforces scopes on the configured backend.

Local backend (``scoped_credentials="client"``) and the legacy HTTP double (``"none"``); the
cloud-enforced case runs on Ceph RGW in tests/aws/test_scoping_cli.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from portable_creds.errors import EXIT_CODES
from portable_creds.testing.legacy_server import LegacyServer

from .conftest import Cli

PRINT_ENV = (
    "import json, os; "
    "print(json.dumps({k: v for k, v in os.environ.items() if k.endswith('_API_KEY')}))"
)


def _seed(cli: Cli) -> None:
    for service, value in (("allowed", b"A-secret"), ("denied", b"D-secret")):
        cli.ok("put", service, input=value)


def _events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_run_on_local_scopes_silently_and_fetches_only_what_it_injects(
    wallet_cli: Cli, tmp_path: Path
) -> None:
    _seed(wallet_cli)
    log = tmp_path / "audit.jsonl"
    proc = wallet_cli.ok(
        "--audit",
        f"file:{log}",
        "run",
        "--service",
        "allowed",
        "--",
        sys.executable,
        "-c",
        PRINT_ENV,
    )
    assert json.loads(proc.stdout) == {"ALLOWED_API_KEY": "A-secret"}
    assert proc.stderr == b""  # no "client only" notice: nothing left the process
    reads = [(e["operation"], e["service"]) for e in _events(log) if e["operation"] != "run"]
    assert reads == [("get", "allowed")]  # neither a listing nor the other credential


def test_run_debug_names_the_scope_and_its_enforcer(wallet_cli: Cli) -> None:
    _seed(wallet_cli)
    proc = wallet_cli.ok("--debug", "run", "--service", "allowed", "--", "true")
    err = proc.stderr.decode()
    assert "injecting ALLOWED_API_KEY into true" in err
    assert "read-only scope of 1 service(s), enforced by this client" in err


def test_run_refuses_to_inject_outside_an_explicit_scope(wallet_cli: Cli) -> None:
    _seed(wallet_cli)
    proc = wallet_cli.run(
        "run",
        "--scope",
        "allowed",
        "--scope-enforcement",
        "client",
        "--service",
        "denied",
        "--",
        sys.executable,
        "-c",
        "print('ran')",
    )
    assert proc.returncode == EXIT_CODES["usage"]
    assert b"ran" not in proc.stdout and b"denied" in proc.stderr


def test_run_with_an_explicit_scope_injects_its_existing_services(wallet_cli: Cli) -> None:
    _seed(wallet_cli)
    proc = wallet_cli.ok(
        "run",
        "--scope",
        "allowed,absent",
        "--scope-enforcement",
        "client",
        "--",
        sys.executable,
        "-c",
        PRINT_ENV,
    )
    assert json.loads(proc.stdout) == {"ALLOWED_API_KEY": "A-secret"}
    assert b"enforced by this client only" in proc.stderr  # the user asked: say so


def test_run_with_a_cloud_scope_on_local_is_a_configuration_error(wallet_cli: Cli) -> None:
    _seed(wallet_cli)
    proc = wallet_cli.run("run", "--scope", "allowed", "--", sys.executable, "-c", "print('ran')")
    assert proc.returncode == EXIT_CODES["configuration"]
    assert b"--scope-enforcement client" in proc.stderr and b"ran" not in proc.stdout


def _doctor(cli: Cli, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = cli.run(*args, "doctor", "--json", env=env)
    doc = json.loads(proc.stdout)
    assert isinstance(doc, dict)
    return doc


def _check(doc: dict[str, Any], name: str) -> dict[str, str]:
    (check,) = [c for c in doc["checks"] if c["name"] == name]
    return dict(check)


def test_doctor_reports_client_side_scoping_on_local(wallet_cli: Cli) -> None:
    doc = _doctor(wallet_cli)
    assert doc["ok"] is True and doc["scoped_credentials"] == "client"
    check = _check(doc, "scoping")
    assert check["status"] == "ok"
    assert "enforced by this client only" in check["detail"]
    assert "'creds export' is refused" in check["detail"]
    text = wallet_cli.ok("doctor").stdout.decode()
    assert "[ ok ] scoping: --scope is enforced by this client only" in text


def test_doctor_warns_when_the_asked_scope_cannot_be_met(wallet_cli: Cli) -> None:
    cloud = _check(_doctor(wallet_cli, "--scope", "allowed"), "scoping")
    assert cloud["status"] == "warn" and "--scope-enforcement client" in cloud["fix"]
    client = _check(
        _doctor(wallet_cli, "--scope", "allowed", "--scope-enforcement", "client"), "scoping"
    )
    assert client["status"] == "warn" and "enforced by this client only" in client["detail"]


def test_doctor_on_a_backend_that_cannot_scope(wallet_cli: Cli) -> None:
    with LegacyServer({"tok": None}) as srv:
        env = {"PORTABLE_CREDS_BACKEND": srv.url, "PORTABLE_CREDS_LEGACY_TOKEN": "tok"}
        doc = _doctor(wallet_cli, env=env)
    assert doc["scoped_credentials"] == "none"
    check = _check(doc, "scoping")
    assert check["status"] == "ok" and "cannot scope credentials" in check["detail"]


def test_doctor_skips_scoping_when_the_store_is_unreachable(wallet_cli: Cli) -> None:
    with LegacyServer({"tok": None}) as srv:
        url = srv.url  # stopped on exit: nothing listens there any more
    env = {"PORTABLE_CREDS_BACKEND": url, "PORTABLE_CREDS_LEGACY_TOKEN": "tok"}
    doc = _doctor(wallet_cli, env=env)
    assert _check(doc, "store")["status"] == "fail"
    assert _check(doc, "scoping")["status"] == "skip"
    assert "scoped_credentials" not in doc
