"""Every S3 failure becomes a typed ``portable_creds`` error, decided by code and status.

A tiny local HTTP server answers like S3 does (documented error XML with a ``Code``), so boto3
parses real responses; the server counts requests, which shows retries are bounded.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from portable_creds_aws.driver import S3Driver
from portable_creds_aws.objectstore import S3ObjectStore

from portable_creds.driver import StoreTarget
from portable_creds.errors import (
    AccessDenied,
    ConfigurationError,
    CredentialsError,
    ExpiredCredentials,
    NotFound,
    PayloadTooLarge,
    PortableCredsError,
    PreconditionFailed,
    RemoteUnavailable,
)

from .conftest import MOTO_KEYS


class ErrorServer:
    def __init__(self) -> None:
        self.status = 500
        self.code: str | None = "InternalError"
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, with_body: bool) -> None:
                server.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                body = b""
                if server.code is not None:
                    body = (
                        "<?xml version='1.0' encoding='UTF-8'?><Error>"
                        f"<Code>{server.code}</Code><Message>text nobody should parse</Message>"
                        "<RequestId>req-123</RequestId></Error>"
                    ).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("x-amz-request-id", "req-123")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if with_body:
                    self.wfile.write(body)

            def do_GET(self) -> None:
                self._answer(True)

            def do_PUT(self) -> None:
                self._answer(True)

            def do_DELETE(self) -> None:
                self._answer(True)

            def do_HEAD(self) -> None:
                self._answer(False)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[ErrorServer]:
    s = ErrorServer()
    yield s
    s.stop()


def _store(endpoint: str, **params: str) -> S3ObjectStore:
    query = "&".join(
        f"{k}={v}" for k, v in {"endpoint": endpoint, "region": "us-east-1", **params}.items()
    )
    return S3Driver().open_object_store(
        StoreTarget(url=f"s3://pc-bucket?{query}", wallet=None, options=MOTO_KEYS)
    )


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (404, "NoSuchKey", NotFound),
        (403, "AccessDenied", AccessDenied),
        (403, "AllAccessDisabled", AccessDenied),
        (412, "PreconditionFailed", PreconditionFailed),
        (409, "ConditionalRequestConflict", PreconditionFailed),
        (400, "ExpiredToken", ExpiredCredentials),
        (403, "InvalidAccessKeyId", CredentialsError),
        (403, "SignatureDoesNotMatch", CredentialsError),
        (400, "InvalidToken", CredentialsError),
        (400, "EntityTooLarge", PayloadTooLarge),
        (404, "NoSuchBucket", ConfigurationError),
        (400, "InvalidArgument", ConfigurationError),
        (503, "SlowDown", RemoteUnavailable),
        (500, "InternalError", RemoteUnavailable),
        (418, "SomethingNew", ConfigurationError),
        (403, None, AccessDenied),
        (404, None, NotFound),
        (502, None, RemoteUnavailable),
    ],
)
def test_codes_and_statuses_map_to_types(
    server: ErrorServer, status: int, code: str | None, expected: type[PortableCredsError]
) -> None:
    server.status, server.code = status, code
    store = _store(server.url, max_attempts="1")
    with pytest.raises(expected) as info:
        store.put("k", b"v")
    assert type(info.value) is expected
    assert "text nobody should parse" not in str(info.value)
    if code is not None:
        assert info.value.request_id == "req-123"


def test_head_errors_have_no_body_and_map_by_status(server: ErrorServer) -> None:
    server.status, server.code = 404, None
    with pytest.raises(NotFound):
        _store(server.url).head("k")
    server.status = 412
    with pytest.raises(PreconditionFailed):
        _store(server.url).head("k")


def test_retries_are_bounded(server: ErrorServer) -> None:
    server.status, server.code = 503, "SlowDown"
    store = _store(server.url, max_attempts="4")
    before = server.requests
    with pytest.raises(RemoteUnavailable):
        store.get("k")
    assert server.requests - before == 4
    server.status, server.code = 403, "AccessDenied"
    before = server.requests
    with pytest.raises(AccessDenied):
        store.put("k", b"v")
    assert server.requests - before == 1  # a denial is never retried


def test_connection_refused_is_remote_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = _store(f"http://127.0.0.1:{port}", max_attempts="2", connect_timeout="1")
    with pytest.raises(RemoteUnavailable, match="could not reach"):
        store.get("k")


def test_read_timeout_is_remote_unavailable() -> None:
    """A server that accepts and never answers: the read timeout fires, bounded."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                accepted.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        store = _store(f"http://127.0.0.1:{port}", max_attempts="2", read_timeout="0.5")
        with pytest.raises(RemoteUnavailable, match="timed out"):
            store.get("k")
        assert len(accepted) == 2
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()
