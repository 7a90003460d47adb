"""The legacy-backend double on a real server stack (issue 12 #9): malformed framing gets an
answer, stalled clients are cut off without holding a worker, sizes are bounded, shutdown is
graceful, and a wallet-scoped token sees only its own audit events."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from portable_creds.legacy import LegacyClient
from portable_creds.testing.legacy_server import LegacyServer
from portable_creds.wsgi import ServerLimits

from ..rawhttp import connect, exchange, read_until_closed, status_of
from .conftest import WALLET_A, WALLET_B

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str, token: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with OPENER.open(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_malformed_content_length_gets_a_400_not_a_traceback() -> None:
    with LegacyServer({"t": None}) as srv:
        for value in (b"abc", b"-5", b"1, 2"):
            answer = exchange(
                srv.url,
                b"POST /credential/store HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
                b"Content-Length: " + value + b"\r\nConnection: close\r\n\r\n{}",
            )
            assert status_of(answer) == 400, (value, answer[:200])
        status, _ = _get(f"{srv.url}/credential/list?agent_id={WALLET_A}", "t")
        assert status == 200  # still serving


def test_oversized_body_and_headers_are_refused() -> None:
    with LegacyServer({"t": None}, limits=ServerLimits(max_body_bytes=1024)) as srv:
        body = b"x" * 4096
        answer = exchange(
            srv.url,
            b"POST /credential/store HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n"
            b"Connection: close\r\n\r\n" + body,
        )
        assert status_of(answer) == 413
        answer = exchange(
            srv.url,
            b"GET /credential/list HTTP/1.1\r\nHost: x\r\nX-Big: "
            + b"a" * (20 * 1024)
            + b"\r\nConnection: close\r\n\r\n",
        )
        assert answer == b"" or status_of(answer) in (400, 431)  # refused (or reset)
        status, _ = _get(f"{srv.url}/credential/list?agent_id={WALLET_A}", "t")
        assert status == 200


def test_a_stalled_body_is_cut_off_and_never_holds_the_only_worker() -> None:
    limits = ServerLimits(idle_timeout=1, threads=1)
    with LegacyServer({"t": None}, limits=limits) as srv:
        srv.seed(WALLET_A, "openai", b"sk-1")
        with connect(srv.url) as stalled:
            stalled.sendall(
                b"POST /credential/store HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
                b'Content-Length: 1000\r\n\r\n{"agent_id": '
            )
            # The one worker thread is free: a complete request is answered meanwhile.
            client = LegacyClient(srv.url, token="t")
            assert client.read(WALLET_A, "openai") == b"sk-1"
            # The stalled connection is closed by the server (a hang fails by socket timeout).
            assert read_until_closed(stalled) == b""
        with connect(srv.url) as silent:  # headers never finished: the same
            silent.sendall(b"GET /credential/list HTTP/1.1\r\nHost: x\r\n")
            assert read_until_closed(silent) == b""


def test_shutdown_lets_a_request_in_flight_finish() -> None:
    srv = LegacyServer({"t": None}).start()
    srv.seed(WALLET_A, "openai", b"sk-1")
    srv.hang_reads_after(0)
    result: dict[str, object] = {}

    def read() -> None:
        result["value"] = LegacyClient(srv.url, token="t", retries=0).read(WALLET_A, "openai")

    reader = threading.Thread(target=read)
    reader.start()
    assert srv.hanging.wait(30)
    srv.stop()  # releases the held read; its answer must still reach the client
    reader.join(30)
    assert result == {"value": b"sk-1"}
    with pytest.raises(OSError):
        connect(srv.url, timeout=5).close()  # no longer accepting


def test_audit_query_shows_a_scoped_token_only_its_own_wallets() -> None:
    with LegacyServer({"admin": None, "a-only": {WALLET_A}}) as srv:
        LegacyClient(srv.url, token="admin").store(WALLET_A, "openai", b"a")
        LegacyClient(srv.url, token="admin").store(WALLET_B, "openai", b"b")
        status, doc = _get(f"{srv.url}/audit/query", "a-only")
        assert status == 200
        assert {e["agent"] for e in doc["events"]} == {WALLET_A}
        status, doc = _get(f"{srv.url}/audit/query?owner={WALLET_B}", "a-only")
        assert status == 403 and doc["error"] == "DENIED"
        status, doc = _get(f"{srv.url}/audit/query", "admin")
        assert {e["agent"] for e in doc["events"]} == {WALLET_A, WALLET_B}


def test_module_entry_point_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "portable_creds.testing.legacy_server",
            "--port",
            str(port),
            "--token",
            "dev",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert f"127.0.0.1:{port}" in line
        status, doc = _get(f"http://127.0.0.1:{port}/credential/list?agent_id={WALLET_A}", "dev")
        assert (status, doc) == (200, {"services": []})
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
