"""Real loopback HTTP servers for the redirect tests: one that answers every request with a
redirect, and one that records what reached it (the "other origin" a token must never reach).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler

from portable_creds.testing.loopback import LoopbackHTTPServer


class Recorder(LoopbackHTTPServer):
    """Answers 200 ``{}`` to everything and keeps every request's headers and body."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with lock:
                    recorder.requests.append(
                        (self.command, self.path, dict(self.headers.items()), body)
                    )
                payload = b'{"keys": []}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = do_PUT = _record

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(Handler, name="redirect-target")

    def saw(self, needle: str) -> bool:
        """Whether ``needle`` reached this server anywhere (path, a header, the body)."""
        for _method, path, headers, body in self.requests:
            if needle in path or needle.encode() in body:
                return True
            if any(needle in v for v in headers.values()):
                return True
        return False


class Redirector(LoopbackHTTPServer):
    """Answers every request with ``code`` and ``Location: <target><same path>``."""

    def __init__(self, target: str, code: int = 302) -> None:
        self.hits = 0
        redirector = self

        class Handler(BaseHTTPRequestHandler):
            def _redirect(self) -> None:
                redirector.hits += 1
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(code)
                self.send_header("Location", target + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_DELETE = do_PUT = _redirect

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(Handler, name="redirector")


@contextmanager
def redirect_pair(code: int = 302) -> Iterator[tuple[Redirector, Recorder]]:
    """A redirector on one port pointing at a recorder on another (a different origin)."""
    with Recorder() as target, Redirector(target.url, code) as redirector:
        yield redirector, target
