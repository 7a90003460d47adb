"""A loopback HTTP fault proxy: sits between a client and a real endpoint and misbehaves on cue.

Fault-injection tests need the *network* to fail, not a mocked SDK: the client's own retry,
timeout and error-mapping code must run exactly as it would against a flaky cloud. The proxy
forwards each HTTP/1.1 request to the upstream server over a fresh connection and applies the
first matching programmed fault instead (or on top of) forwarding: a connection reset, an error
status with the body the real service sends (S3 ``SlowDown``, COS ``SlowDown``, Tencent API
``RequestLimitExceeded``...), a response held back past the client's timeout, or a body cut
short. Every request is recorded so a test can prove the fault really happened.

It is bounded by construction: it listens on 127.0.0.1 port 0, stops itself after ``lifetime``
seconds, every socket has a timeout, and slow responses wait on an event that ``stop`` sets.
Only the standard library is used, so importing it never drags in a cloud SDK.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Literal

import attrs

FaultKind = Literal["pass", "reset", "status", "delay", "truncate", "corrupt"]

_MAX_HEAD = 64 * 1024
_IO_TIMEOUT = 30.0


@attrs.frozen
class Request:
    """What the proxy saw of one request (head only; bodies are sealed blobs, not logged)."""

    method: str
    target: str
    headers: dict[str, str]

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""


@attrs.frozen
class Fault:
    """One misbehaviour. Build them with the class methods, not directly."""

    kind: FaultKind
    status: int = 0
    body: bytes = b""
    content_type: str = "application/xml"
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    keep: float = 0.5
    """For ``truncate``: the fraction of the response body that is sent before closing."""

    @classmethod
    def passthrough(cls) -> Fault:
        return cls("pass")

    @classmethod
    def reset(cls) -> Fault:
        """Close the client connection with a TCP RST after reading the request head."""
        return cls("reset")

    @classmethod
    def error(
        cls,
        status: int,
        body: bytes = b"",
        *,
        content_type: str = "application/xml",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> Fault:
        """Answer with ``status`` and ``body`` without forwarding (the upstream never sees it)."""
        return cls("status", status=status, body=body, content_type=content_type, headers=headers)

    @classmethod
    def s3_error(cls, status: int, code: str, message: str = "injected fault") -> Fault:
        request_id = uuid.uuid4().hex[:16].upper()
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<RequestId>{request_id}</RequestId><HostId>faultproxy</HostId></Error>"
        ).encode()
        return cls.error(status, body, headers=(("x-amz-request-id", request_id),))

    @classmethod
    def s3_slowdown(cls) -> Fault:
        """What S3 answers when throttling: 503 SlowDown."""
        return cls.s3_error(503, "SlowDown", "Please reduce your request rate.")

    @classmethod
    def sts_error(cls, status: int, code: str, message: str = "injected fault") -> Fault:
        """An AWS query-protocol (STS/IAM) error document."""
        request_id = str(uuid.uuid4())
        body = (
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        return cls.error(status, body, content_type="text/xml")

    @classmethod
    def sts_throttle(cls) -> Fault:
        """What STS answers when throttling: 400 Throttling."""
        return cls.sts_error(400, "Throttling", "Rate exceeded")

    @classmethod
    def cos_error(cls, status: int, code: str, message: str = "injected fault") -> Fault:
        """A COS error document (all four fields, so the COS SDK can read the code)."""
        request_id = uuid.uuid4().hex
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<Resource>faultproxy</Resource><RequestId>{request_id}</RequestId>"
            "<TraceId>faultproxy</TraceId></Error>"
        ).encode()
        return cls.error(status, body, headers=(("x-cos-request-id", request_id),))

    @classmethod
    def cos_slowdown(cls) -> Fault:
        """What COS answers when throttling: 503 SlowDown."""
        return cls.cos_error(503, "SlowDown", "Please reduce your request rate.")

    @classmethod
    def tencent_api_error(cls, code: str, message: str = "injected fault") -> Fault:
        """A Tencent Cloud API (STS/CAM) error: HTTP 200 with an ``Error`` envelope."""
        request_id = str(uuid.uuid4())
        envelope = {"Error": {"Code": code, "Message": message}, "RequestId": request_id}
        body = json.dumps({"Response": envelope}).encode()
        return cls.error(200, body, content_type="application/json")

    @classmethod
    def tencent_throttle(cls) -> Fault:
        return cls.tencent_api_error("RequestLimitExceeded", "request limit exceeded")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Forward at once but hold the response ``seconds`` (past the client's read timeout).

        The upstream has already acted on the request when the client gives up, as with a slow
        server, so a later request can never be overtaken by this one.
        """
        return cls("delay", delay=seconds)

    @classmethod
    def truncated(cls, keep: float = 0.5) -> Fault:
        """Forward, then send the headers and only ``keep`` of the body, then close."""
        return cls("truncate", keep=keep)

    @classmethod
    def corrupt(cls) -> Fault:
        """Forward, then flip one bit in the middle of the response body (length unchanged)."""
        return cls("corrupt")


Matcher = Callable[[Request], bool]


@attrs.define
class _Rule:
    fault: Fault
    remaining: int | None
    matcher: Matcher | None


@attrs.frozen
class Record:
    """One handled request and the fault applied to it (``pass`` when forwarded unchanged)."""

    request: Request
    fault: FaultKind
    at: float


def match(method: str | None = None, path_contains: str | None = None) -> Matcher:
    """A matcher on the request method and/or a substring of the path."""

    def check(req: Request) -> bool:
        if method is not None and req.method.upper() != method.upper():
            return False
        return path_contains is None or path_contains in req.path

    return check


class FaultProxy:
    """Forward ``127.0.0.1:<port>`` to ``upstream`` applying programmed faults.

    ``inject(fault, times=n)`` queues a rule applied to the next ``n`` matching requests
    (``times=None``: every matching request until ``clear()``). Rules are tried in order; a
    request that matches none is forwarded unchanged. ``records`` lists what happened.
    """

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        lifetime: float = 600.0,
        rewrite_host: bool = False,
    ) -> None:
        self.upstream = upstream
        self.lifetime = lifetime
        self.rewrite_host = rewrite_host
        self.records: list[Record] = []
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.settimeout(0.2)
        self._listener = sock
        self.port = sock.getsockname()[1]
        deadline = time.monotonic() + self.lifetime
        thread = threading.Thread(
            target=self._accept_loop, args=(deadline,), name="faultproxy", daemon=True
        )
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(timeout=5)
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    # -- programming -----------------------------------------------------------------------

    def inject(
        self,
        fault: Fault,
        *,
        times: int | None = 1,
        when: Matcher | None = None,
    ) -> FaultProxy:
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None (every matching request)")
        with self._lock:
            self._rules.append(_Rule(fault, times, when))
        return self

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def reset_records(self) -> None:
        with self._lock:
            self.records.clear()

    def count(self, kind: FaultKind | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.records if kind is None or r.fault == kind)

    def _choose(self, req: Request) -> Fault:
        with self._lock:
            for rule in self._rules:
                if rule.matcher is not None and not rule.matcher(req):
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
                fault = rule.fault
                break
            else:
                fault = Fault.passthrough()
            self.records.append(Record(req, fault.kind, time.monotonic()))
            return fault

    # -- serving ---------------------------------------------------------------------------

    def _accept_loop(self, deadline: float) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            if time.monotonic() > deadline:
                self._stopping.set()  # bounded: stop by ourselves
                break
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            conn.settimeout(_IO_TIMEOUT)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.add(conn)
            worker = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            worker.start()
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(worker)
        with contextlib.suppress(OSError):
            self._listener.close()

    def _serve(self, conn: socket.socket) -> None:
        reader = _Reader(conn)
        try:
            while not self._stopping.is_set():
                head = reader.read_head()
                if head is None:
                    return
                req, raw_lines = _parse_head(head)
                fault = self._choose(req)
                if fault.kind == "reset":
                    _reset(conn)
                    return
                if req.headers.get("expect", "").lower() == "100-continue":
                    conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                body = reader.read_body(req.headers)
                if fault.kind == "status":
                    conn.sendall(_error_response(fault))
                    continue
                response = self._forward(req, raw_lines, body)
                if fault.kind == "delay" and self._stopping.wait(fault.delay):
                    return
                if fault.kind == "truncate":
                    conn.sendall(_truncate(response, fault.keep))
                    return
                if fault.kind == "corrupt":
                    response = _corrupt(response)
                conn.sendall(response)
                if req.headers.get("connection", "").lower() == "close":
                    return
        except (OSError, ValueError):
            return
        finally:
            with self._lock:
                self._conns.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def _forward(self, req: Request, raw_lines: list[bytes], body: bytes) -> bytes:
        """One request over a fresh upstream connection with ``Connection: close``.

        The response is read to EOF, so its framing (length, chunked, none for HEAD) is passed
        through verbatim, and rewritten to ``Connection: close`` for the client as well.
        """
        lines = [raw_lines[0]]
        for line in raw_lines[1:]:
            name = line.split(b":", 1)[0].strip().lower()
            if name in (b"connection", b"expect", b"keep-alive", b"proxy-connection"):
                continue
            if name == b"host" and self.rewrite_host:
                line = b"Host: %s:%d" % (self.upstream[0].encode(), self.upstream[1])
            lines.append(line)
        lines.append(b"Connection: close")
        payload = b"\r\n".join(lines) + b"\r\n\r\n" + body
        with socket.create_connection(self.upstream, timeout=_IO_TIMEOUT) as up:
            up.sendall(payload)
            chunks = []
            while True:
                data = up.recv(65536)
                if not data:
                    break
                chunks.append(data)
        response = b"".join(chunks)
        head, sep, rest = response.partition(b"\r\n\r\n")
        if not sep:
            return response
        kept = [
            line
            for line in head.split(b"\r\n")
            if line.split(b":", 1)[0].strip().lower() not in (b"connection", b"keep-alive")
        ]
        kept.append(b"Connection: close")
        return b"\r\n".join(kept) + b"\r\n\r\n" + rest


class _Reader:
    """Buffered reads of HTTP/1.1 framing from a socket."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buf = b""

    def _fill(self) -> bool:
        data = self.conn.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def read_head(self) -> bytes | None:
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > _MAX_HEAD:
                raise ValueError("request head too large")
            if not self._fill():
                return None
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        return head

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ValueError("connection closed inside a body")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise ValueError("connection closed inside a chunk header")
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def read_body(self, headers: dict[str, str]) -> bytes:
        """The body, re-framed with its original encoding (chunked bodies stay chunked)."""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            out = []
            while True:
                size_line = self.read_line()
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                out.append(size_line + b"\r\n")
                if size == 0:
                    while True:  # trailers, then the empty line
                        trailer = self.read_line()
                        out.append(trailer + b"\r\n")
                        if not trailer:
                            return b"".join(out)
                out.append(self.read_exact(size + 2))
        length = int(headers.get("content-length", "0") or "0")
        return self.read_exact(length) if length else b""


def _parse_head(head: bytes) -> tuple[Request, list[bytes]]:
    lines = head.split(b"\r\n")
    parts = lines[0].decode("latin-1").split(" ")
    if len(parts) != 3:
        raise ValueError("malformed request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.decode("latin-1").partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return Request(parts[0], parts[1], headers), lines


def _reset(conn: socket.socket) -> None:
    # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        conn.close()


_REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _error_response(fault: Fault) -> bytes:
    head = [
        f"HTTP/1.1 {fault.status} {_REASONS.get(fault.status, 'Error')}",
        f"Content-Type: {fault.content_type}",
        f"Content-Length: {len(fault.body)}",
        "Server: faultproxy",
    ]
    head.extend(f"{name}: {value}" for name, value in fault.headers)
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + fault.body


def _truncate(response: bytes, keep: float) -> bytes:
    head, sep, body = response.partition(b"\r\n\r\n")
    if not sep:
        return response[: max(0, int(len(response) * keep))]
    cut = min(len(body) - 1, int(len(body) * keep)) if body else 0
    return head + sep + body[: max(0, cut)]


def _corrupt(response: bytes) -> bytes:
    head, sep, body = response.partition(b"\r\n\r\n")
    if not sep or not body:
        return response
    mid = len(body) // 2
    return head + sep + body[:mid] + bytes([body[mid] ^ 0x01]) + body[mid + 1 :]
