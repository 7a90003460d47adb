"""Issue 12 item 4 (CLI): one unreadable blob does not stop a rotation half-way.

Before the fix ``rewrap`` stopped at the first blob that failed to open, with a message that
did not even name the service, leaving every later credential under the old KEK.
"""

from __future__ import annotations

import json
from pathlib import Path

from portable_creds.errors import IntegrityError

from .conftest import Cli, error_line


def _blob(cli: Cli, service: str) -> Path:
    (found,) = list((cli.data_home / "objects").rglob(f"{service}.enc"))
    return found


def _setup(cli: Cli) -> None:
    for service in ("alpha", "broken", "gamma"):
        cli.ok("put", service, input=f"v-{service}".encode())
    path = _blob(cli, "broken")
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))


def test_rewrap_continues_past_an_unreadable_blob_and_names_it(wallet_cli: Cli) -> None:
    cli = wallet_cli
    _setup(cli)
    proc = cli.run("--kek-version", "2", "rewrap")
    assert proc.returncode == IntegrityError.exit_code
    line = error_line(proc)
    assert "'broken'" in line and "re-wrapped 2" in line
    # the others are under v2 now: they open with only v2 accepted
    for service in ("alpha", "gamma"):
        got = cli.ok("--accept-kek-versions", "2", "get", service).stdout
        assert got == f"v-{service}".encode()


def test_rewrap_json_reports_failures_per_service(wallet_cli: Cli) -> None:
    cli = wallet_cli
    _setup(cli)
    proc = cli.run("--kek-version", "2", "rewrap", "--json")
    assert proc.returncode == IntegrityError.exit_code
    doc = json.loads(proc.stdout)
    assert doc["rewrapped"] == 2
    assert list(doc["failed"]) == ["broken"]
    assert doc["failed"]["broken"]["error"] == "IntegrityError"
