"""Plain request/response values passed between the HTTP server and the service emulations."""

from __future__ import annotations

import attrs


@attrs.frozen
class HttpRequest:
    method: str
    raw_path: str
    """URL path exactly as received (still percent-encoded)."""
    query: tuple[tuple[str, str], ...]
    headers: dict[str, str]
    """Lower-cased header names."""
    body: bytes
    client_ip: str

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def param(self, name: str) -> str | None:
        lname = name.lower()
        for k, v in self.query:
            if k.lower() == lname:
                return v
        return None

    def has_param(self, name: str) -> bool:
        return self.param(name) is not None


@attrs.frozen
class HttpResponse:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
