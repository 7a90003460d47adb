"""A local stand-in for the legacy agentKeys backend ("mock-server"), for tests and for users.

It implements the documented API (reference §2) and nothing more: bearer-token auth, the four
``/credential/*`` routes, ``/audit/query``, and the error envelope ``{"error", "message"}`` with
the documented codes. State is in memory, as upstream's was (lost on restart).

Tokens map to the wallets they may act for (``None`` = any wallet). A token listed in
``expired_tokens`` gets 410 ``EXPIRED``. Test hooks: ``fail_next(n, status)`` answers the next n
credential requests with an error; ``hang_reads_after(n)`` blocks every ``read`` after the n-th
until ``release()`` - how tests interrupt a migration at a known point without timing;
``clock_offset`` skews the ``Date`` header.

It is a WSGI app served by waitress (``portable_creds.wsgi``): bounded request sizes, idle
timeouts for stalled clients, a 400 for malformed framing, graceful shutdown - the same stack
as the token vendor, so tests exercise what production runs. A wallet-scoped token sees only
its own wallets' events in ``/audit/query``.

Run it by hand (needs ``pip install 'portable-creds[serve]'``)::

    python -m portable_creds.testing.legacy_server --port 8090 --token dev-token
"""

from __future__ import annotations

import argparse
import base64
import binascii
import email.utils
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from ..wsgi import ServerLimits, WsgiServer, request_body, request_headers

_ERRORS = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_CONSUMED",
    410: "EXPIRED",
    500: "INTERNAL_ERROR",
}


_MAX_BODY = 8 << 20
"""The largest request body accepted: base64 of a secret well above any real API key."""


class _Reject(Exception):
    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _ERRORS.get(status, "INTERNAL_ERROR")
        self.message = message


class LegacyServer(WsgiServer):
    """``with LegacyServer({"tok": {"0xabc..."}}) as srv: srv.url``."""

    def __init__(
        self,
        tokens: Mapping[str, Iterable[str] | None] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        expired_tokens: Iterable[str] = (),
        limits: ServerLimits | None = None,
    ) -> None:
        self.tokens: dict[str, set[str] | None] = {
            tok: (None if wallets is None else {w.lower() for w in wallets})
            for tok, wallets in (tokens or {}).items()
        }
        self.expired_tokens = set(expired_tokens)
        self.clock_offset = 0.0
        """Seconds added to the ``Date`` header (a server with a skewed clock)."""
        self.data: dict[tuple[str, str], bytes] = {}
        self.events: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self.reads_served = 0
        self._lock = threading.Lock()
        self._fail: list[int] = []
        self._hang_after: int | None = None
        self._released = threading.Event()
        self.hanging = threading.Event()
        """Set once a read is blocked by ``hang_reads_after``."""
        super().__init__(
            _app_for(self),
            host=host,
            port=port,
            limits=limits or ServerLimits(max_body_bytes=_MAX_BODY),
            name="legacy-agentkeys-double/1",
        )

    # -- lifecycle ------------------------------------------------------------------------

    def stop(self) -> None:
        self._released.set()  # a read held by hang_reads_after must not block shutdown
        super().stop()

    # -- test hooks -----------------------------------------------------------------------

    def seed(self, wallet: str, service: str, secret: bytes) -> None:
        with self._lock:
            self.data[(wallet.lower(), service)] = bytes(secret)

    def fail_next(self, count: int, status: int = 500) -> None:
        with self._lock:
            self._fail.extend([status] * count)

    def hang_reads_after(self, count: int | None) -> None:
        """Serve ``count`` reads normally, then block further reads until ``release()``."""
        with self._lock:
            self._hang_after = count
            self._released.clear()
            self.hanging.clear()

    def release(self) -> None:
        with self._lock:
            self._hang_after = None
        self._released.set()

    # -- the API ----------------------------------------------------------------------------

    def _authorize(self, headers: Mapping[str, str], wallet: str | None) -> str:
        """``headers`` keys are lowercased."""
        auth = headers.get("authorization") or ""
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _Reject(401, "missing bearer token")
        if token in self.expired_tokens:
            raise _Reject(410, "session expired")
        if token not in self.tokens:
            raise _Reject(401, "invalid session token")
        allowed = self.tokens[token]
        if wallet is not None and allowed is not None and wallet.lower() not in allowed:
            raise _Reject(403, "session is not allowed to act for this agent")
        return token

    def _audit(self, agent: str, service: str, action: str, result: str) -> None:
        self.events.append(
            {
                "owner": agent,
                "agent": agent,
                "service": service,
                "action": action,
                "result": result,
                "timestamp": int(time.time()),
            }
        )

    def handle(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: Any,
        headers: Mapping[str, str],
    ) -> dict[str, Any]:
        with self._lock:
            self.requests.append((method, path))
            if path.startswith("/credential/") and self._fail:
                status = self._fail.pop(0)
                raise _Reject(status, "injected failure")
        if path == "/credential/store" and method == "POST":
            agent, service = _field(body, "agent_id"), _field(body, "service")
            self._authorize(headers, agent)
            try:
                secret = base64.b64decode(_field(body, "ciphertext"), validate=True)
            except (binascii.Error, ValueError):
                raise _Reject(400, "ciphertext is not standard base64") from None
            if "/" in service:
                raise _Reject(400, "service must not contain '/'")
            with self._lock:
                self.data[(agent.lower(), service)] = secret
                self._audit(agent, service, "store", "ok")
            return {"ok": True}
        if path == "/credential/read" and method == "GET":
            agent, service = _field(query, "agent_id"), _field(query, "service")
            try:
                self._authorize(headers, agent)
            except _Reject as rej:
                if rej.status == 403:
                    with self._lock:
                        self._audit(agent, service, "read", "DENIED")
                raise
            self._maybe_hang()
            with self._lock:
                found = self.data.get((agent.lower(), service))
                self.reads_served += 1
                if found is None:
                    self._audit(agent, service, "read", "NOT_FOUND")
                    raise _Reject(404, "no such credential")
                self._audit(agent, service, "read", "ok")
            return {"ciphertext": base64.b64encode(found).decode("ascii")}
        if path == "/credential/list" and method == "GET":
            agent = _field(query, "agent_id")
            self._authorize(headers, agent)
            with self._lock:
                services = sorted(s for (a, s) in self.data if a == agent.lower())
                self._audit(agent, "", "list", "ok")
            return {"services": services}
        if path == "/credential/teardown" and method == "DELETE":
            agent = _field(body, "agent_id")
            self._authorize(headers, agent)
            with self._lock:
                for key in [k for k in self.data if k[0] == agent.lower()]:
                    del self.data[key]
            return {"ok": True}
        if path == "/audit/query" and method == "GET":
            token = self._authorize(headers, None)
            allowed = self.tokens[token]
            if allowed is not None:
                for k in ("owner", "agent"):
                    if query.get(k) and query[k].lower() not in allowed:
                        raise _Reject(403, "session is not allowed to see this agent's events")
            with self._lock:
                events = [
                    e
                    for e in reversed(self.events)
                    if all(
                        not query.get(k) or e[k] == query[k] for k in ("owner", "agent", "service")
                    )
                    # A wallet-scoped session sees its own wallets' events, nobody else's.
                    and (allowed is None or str(e["agent"]).lower() in allowed)
                ]
            return {"events": events}
        if path in (
            "/credential/store",
            "/credential/read",
            "/credential/list",
            "/credential/teardown",
        ):
            raise _Reject(400, f"method {method} not allowed on {path}")
        raise _Reject(404, f"no route {path}")

    def _maybe_hang(self) -> None:
        with self._lock:
            hang = self._hang_after is not None and self.reads_served >= self._hang_after
            if hang:
                self.hanging.set()
        if hang:
            self._released.wait()


def _field(doc: Any, name: str) -> str:
    value = doc.get(name) if isinstance(doc, Mapping) else None
    if not isinstance(value, str) or not value:
        raise _Reject(400, f"missing or empty field {name!r}")
    return value


def _app_for(server: LegacyServer) -> Callable[..., Iterable[bytes]]:
    """The WSGI app: parse, dispatch to ``server.handle``, answer with the error envelope."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request_id = uuid.uuid4().hex
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        headers = request_headers(environ)
        try:
            raw = request_body(environ)
            body: Any = None
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise _Reject(400, "body is not JSON") from None
            method = str(environ["REQUEST_METHOD"])
            path = str(environ.get("PATH_INFO") or "/")
            status, doc = 200, server.handle(method, path, query, body, headers)
        except _Reject as rej:
            status, doc = rej.status, {"error": rej.code, "message": rej.message}
        except Exception:  # the double must answer, not die
            status, doc = 500, {"error": "INTERNAL_ERROR", "message": "internal error"}
        payload = json.dumps(doc).encode()
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        start_response(
            f"{status} {phrase}",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(payload))),
                ("X-Request-Id", request_id),
                ("Date", email.utils.formatdate(time.time() + server.clock_offset, usegmt=True)),
            ],
        )
        return [payload]

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the local legacy agentKeys backend double.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        help="accepted bearer token, optionally TOKEN=WALLET[,WALLET...] to scope it (repeatable)",
    )
    args = parser.parse_args(argv)
    tokens: dict[str, Iterable[str] | None] = {}
    for spec in args.token or ["dev-token"]:
        tok, _, wallets = spec.partition("=")
        tokens[tok] = wallets.split(",") if wallets else None
    server = LegacyServer(tokens, host=args.host, port=args.port)
    print(f"legacy backend double listening on {server.url} (Ctrl-C to stop)", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
