"""Raw HTTP/1.1 over a socket, for what a well-behaved client library would never send."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit


def connect(url: str, timeout: float = 60.0) -> socket.socket:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return socket.create_connection((parts.hostname, parts.port), timeout=timeout)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a socket timeout fails the test)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass  # a server refusing mid-request may reset; what arrived before still counts
    return b"".join(chunks)


def exchange(url: str, request: bytes, timeout: float = 60.0) -> bytes:
    """Send ``request`` verbatim, return the whole answer (the server must close after it)."""
    with connect(url, timeout) as sock:
        sock.sendall(request)
        return read_until_closed(sock)


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1."), answer[:80]
    return int(answer.split(b" ", 2)[1])
