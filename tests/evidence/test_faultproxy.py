"""The fault proxy itself, against a stdlib HTTP server: it must be transparent when told to be,
apply exactly the programmed faults, and stop by itself."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from portable_creds.testing.faultproxy import Fault, FaultProxy, match


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _reply(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._reply(b"path=" + self.path.encode() + b";" + b"x" * 200)

    do_HEAD = do_GET

    def do_PUT(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            data = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
        else:
            data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._reply(b"got=" + data)


@pytest.fixture
def upstream() -> Iterator[tuple[str, int]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield ("127.0.0.1", server.server_address[1])
    server.shutdown()
    server.server_close()


def _conn(proxy: FaultProxy, timeout: float = 5.0) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)


def test_transparent_without_faults(upstream: tuple[str, int]) -> None:
    with FaultProxy(upstream) as proxy:
        conn = _conn(proxy)
        conn.request("GET", "/a?b=1")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read().startswith(b"path=/a?b=1;")
        conn = _conn(proxy)
        conn.request("PUT", "/k", body=b"payload", headers={"Expect": "100-continue"})
        assert conn.getresponse().read() == b"got=payload"
        conn = _conn(proxy)
        conn.request("PUT", "/k", body=iter([b"ab", b"cd"]), encode_chunked=True)
        assert conn.getresponse().read() == b"got=abcd"
        conn = _conn(proxy)
        conn.request("HEAD", "/h")
        head = conn.getresponse()
        assert head.status == 200 and head.read() == b""
        assert [r.fault for r in proxy.records] == ["pass"] * 4


def test_programmed_faults_apply_in_order_and_only_where_matched(
    upstream: tuple[str, int],
) -> None:
    with FaultProxy(upstream) as proxy:
        proxy.inject(Fault.s3_slowdown(), times=2, when=match(method="PUT"))
        proxy.inject(Fault.truncated(), times=1, when=match(path_contains="/cut"))
        conn = _conn(proxy)
        conn.request("GET", "/fine")
        assert conn.getresponse().read().startswith(b"path=/fine")
        for _ in range(2):
            conn = _conn(proxy)
            conn.request("PUT", "/k", body=b"v")
            resp = conn.getresponse()
            assert resp.status == 503 and b"<Code>SlowDown</Code>" in resp.read()
        conn = _conn(proxy)
        conn.request("PUT", "/k", body=b"v")
        assert conn.getresponse().read() == b"got=v"
        conn = _conn(proxy)
        conn.request("GET", "/cut")
        with pytest.raises(http.client.IncompleteRead):
            conn.getresponse().read()
        assert proxy.count("status") == 2 and proxy.count("truncate") == 1


def test_reset_slow_and_corrupt(upstream: tuple[str, int]) -> None:
    with FaultProxy(upstream) as proxy:
        proxy.inject(Fault.reset())
        conn = _conn(proxy)
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
            conn.request("GET", "/r")
            conn.getresponse().read()
        proxy.inject(Fault.slow(2.0))
        conn = _conn(proxy, timeout=0.5)
        conn.request("GET", "/s")
        with pytest.raises(TimeoutError):
            conn.getresponse()
        proxy.inject(Fault.corrupt())
        conn = _conn(proxy)
        conn.request("GET", "/c")
        body = conn.getresponse().read()
        clean = b"path=/c;" + b"x" * 200
        assert len(body) == len(clean) and body != clean
        assert sum(a != b for a, b in zip(body, clean, strict=True)) == 1


def test_stops_by_itself_after_its_lifetime(upstream: tuple[str, int]) -> None:
    proxy = FaultProxy(upstream, lifetime=0.5).start()
    port = proxy.port
    time.sleep(1.5)
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        if not s.recv(1):
            raise ConnectionResetError("closed")
    proxy.stop()
