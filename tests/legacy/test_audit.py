"""Audit sinks and the CredentialStore hook (library level)."""

from __future__ import annotations

import io
import json
import logging
import os
import stat
from pathlib import Path

import pytest

from portable_creds import audit
from portable_creds.errors import ConfigurationError, NotFound
from portable_creds.local import LocalObjectStore
from portable_creds.secret_key import SecretKeySource
from portable_creds.store import CredentialStore

from .conftest import WALLET_A


def test_store_hook_writes_one_event_per_operation(tmp_path: Path) -> None:
    sink = audit.JsonLinesSink(tmp_path / "logs" / "audit.jsonl")
    store = CredentialStore(
        LocalObjectStore(tmp_path / "objs", wallet=WALLET_A),
        SecretKeySource(os.urandom(32)),
        WALLET_A,
        audit=sink,
    )
    store.put("openai", b"sk-never-logged")
    assert store.get("openai").reveal() == b"sk-never-logged"
    with pytest.raises(NotFound):
        store.get("missing")
    store.list()
    raw = sink.path.read_bytes()
    assert b"sk-never-logged" not in raw
    assert stat.S_IMODE(sink.path.stat().st_mode) == 0o600
    events = [json.loads(line) for line in raw.splitlines()]
    assert [(e["operation"], e["service"], e["outcome"]) for e in events] == [
        ("put", "openai", "ok"),
        ("get", "openai", "ok"),
        ("get", "missing", "error"),
        ("list", None, "ok"),
    ]
    assert events[2]["error"] == "NotFound"
    assert all(set(e) == set(audit.FIELDS) for e in events)
    assert all(e["wallet"] == WALLET_A and e["backend"].startswith("local:") for e in events)
    assert audit.query(sink.path, outcome="error") == [events[2]]
    assert audit.query(sink.path, service="openai", operation="get") == [events[1]]


def test_unknown_fields_are_dropped() -> None:
    out = io.StringIO()
    audit.StreamSink(out).emit({"operation": "put", "secret": "sk-smuggled", "message": "x"})
    line = out.getvalue()
    assert line.startswith("audit: ") and "sk-smuggled" not in line
    assert set(json.loads(line[len("audit: ") :])) == set(audit.FIELDS)


def test_logging_sink(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="custom.audit"):
        audit.open_sink("logging:custom.audit").emit({"operation": "get", "outcome": "error"})
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.audit["operation"] == "get"  # type: ignore[attr-defined]


def test_open_sink_specs(tmp_path: Path) -> None:
    assert isinstance(audit.open_sink(f"file:{tmp_path}/a.jsonl"), audit.JsonLinesSink)
    assert isinstance(audit.open_sink(str(tmp_path / "b.jsonl")), audit.JsonLinesSink)
    assert isinstance(audit.open_sink("stderr"), audit.StreamSink)
    assert isinstance(audit.open_sink("none"), audit.NullSink)
    with pytest.raises(ConfigurationError):
        audit.open_sink("syslog://x")


def test_sink_failure_never_breaks_the_operation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    sink = audit.JsonLinesSink(blocker / "audit.jsonl")
    sink.emit({"operation": "put"})
    sink.emit({"operation": "put"})
    assert capsys.readouterr().err.count("audit sink") == 1


def test_recorder_records_error_type_not_message() -> None:
    out = io.StringIO()
    with pytest.raises(NotFound), audit.Recorder(audit.StreamSink(out), "run", wallet=WALLET_A):
        raise NotFound("secret-looking message sk-xyz", request_id="rid-1")
    event = json.loads(out.getvalue()[len("audit: ") :])
    assert event["error"] == "NotFound" and event["request_id"] == "rid-1"
    assert "sk-xyz" not in out.getvalue()
