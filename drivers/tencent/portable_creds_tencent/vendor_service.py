"""The token vendor as a small HTTP service, and the tenant-side client for it.

This is what makes the ``token-vendor`` trust boundary concrete: the vendor's API key lives
only in the service process; tenants send their OIDC token and receive credentials limited to
their own prefix. Run it behind TLS (a reverse proxy); plain HTTP is accepted by the client
only on loopback, for tests.

    POST /v1/credentials
    Authorization: Bearer <OIDC JWT>
    {"wallet": "0x..."}        or, narrower:  {"wallet": "0x...", "keys": [...], "read_only": true}
    -> 200 {"TmpSecretId": ..., "TmpSecretKey": ..., "Token": ..., "ExpiredTime": <unix>}
    -> 401/403/400/503 {"error": "<type>", "message": "..."}
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from portable_creds.driver import StoreTarget, TemporaryCredentials
from portable_creds.errors import (
    AccessDenied,
    ConfigurationError,
    CredentialsError,
    InvalidName,
    InvalidToken,
    PortableCredsError,
    RemoteUnavailable,
    TransientError,
)

from .federation import Scope, TokenVendor, Vendor

log = logging.getLogger(__name__)
PATH = "/v1/credentials"
_MAX_BODY = 16 * 1024


def _status_for(exc: PortableCredsError) -> int:
    if isinstance(exc, InvalidToken | CredentialsError):
        return 401
    if isinstance(exc, AccessDenied):
        return 403
    if isinstance(exc, InvalidName | ConfigurationError):
        # e.g. a scope whose session policy is over the safe size bound, or a missing vendor
        # role: the tenant gets the typed error at once instead of retrying a 5xx.
        return 400
    if isinstance(exc, TransientError):
        return 503
    return 500


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("vendor: " + format, *args)

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            self.close_connection = True
            self._reply(413, {"error": "TooLarge", "message": "request body too large"})
            return
        raw = self.rfile.read(length) if length else b""
        if urlsplit(self.path).path != PATH:
            self._reply(404, {"error": "NotFound", "message": f"POST {PATH}"})
            return
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            self._reply(
                401, {"error": "InvalidToken", "message": "send Authorization: Bearer <JWT>"}
            )
            return
        try:
            body = json.loads(raw or b"{}")
            wallet = body["wallet"]
            if not isinstance(wallet, str):
                raise TypeError
            scope = None
            if body.get("keys") is not None:
                keys = body["keys"]
                if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                    raise TypeError
                scope = Scope(tuple(keys), bool(body.get("read_only", True)))
        except (ValueError, KeyError, TypeError):
            self._reply(
                400,
                {
                    "error": "InvalidName",
                    "message": 'send {"wallet": "0x..."} (+ "keys": [...], "read_only": ...)',
                },
            )
            return
        try:
            creds = self.server.vendor.vend(auth[len("Bearer ") :].strip(), wallet, scope)
        except PortableCredsError as exc:
            self._reply(_status_for(exc), {"error": type(exc).__name__, "message": exc.message})
            return
        assert creds.expiration is not None
        self._reply(
            200,
            {
                "TmpSecretId": creds.access_key_id,
                "TmpSecretKey": creds.secret_access_key,
                "Token": creds.session_token,
                "ExpiredTime": int(creds.expiration.timestamp()),
            },
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    vendor: Vendor


class VendorServer:
    """Serves ``vendor.vend`` over HTTP. The process running it is the trusted party."""

    def __init__(self, vendor: Vendor, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.vendor = vendor
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> VendorServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="token-vendor", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> VendorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_ERRORS: dict[str, type[PortableCredsError]] = {
    "InvalidToken": InvalidToken,
    "CredentialsError": CredentialsError,
    "ExpiredCredentials": CredentialsError,
    "AccessDenied": AccessDenied,
    "InvalidName": InvalidName,
    "ConfigurationError": ConfigurationError,
}


class HttpVendor(Vendor):
    """Tenant side: asks a ``VendorServer`` for credentials. Holds no vendor key."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise ConfigurationError("vendor_url must be https (plain http only on loopback)")
        self.url = url.rstrip("/") + PATH
        self.timeout = timeout

    def vend(self, token: str, wallet: str, scope: Scope | None = None) -> TemporaryCredentials:
        body: dict[str, Any] = {"wallet": wallet}
        if scope is not None:
            body.update(keys=list(scope.keys), read_only=scope.read_only)
        req = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.url,
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                answer = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            try:
                err = json.loads(exc.read())
            except ValueError:
                err = {}
            message = str(err.get("message") or f"token vendor answered {exc.code}")
            if exc.code >= 500:
                raise TransientError(f"token vendor unavailable: {message}") from None
            cls = _ERRORS.get(
                str(err.get("error")), AccessDenied if exc.code == 403 else CredentialsError
            )
            raise cls(f"token vendor refused: {message}") from None
        except (OSError, ValueError) as exc:
            raise RemoteUnavailable(
                f"could not reach the token vendor at {self.url}: {exc}"
            ) from None
        try:
            return TemporaryCredentials(
                access_key_id=str(answer["TmpSecretId"]),
                secret_access_key=str(answer["TmpSecretKey"]),
                session_token=str(answer["Token"]),
                expiration=dt.datetime.fromtimestamp(int(answer["ExpiredTime"]), dt.UTC),
            )
        except (KeyError, TypeError, ValueError):
            raise TransientError("the token vendor's answer lacks credential fields") from None


def main(argv: list[str] | None = None) -> int:
    """``python -m portable_creds_tencent.vendor_service --url cos://... --listen HOST:PORT``."""
    from .settings import parse_settings
    from .vendor_factory import build_vendor

    p = argparse.ArgumentParser(description="serve the portable-creds token vendor (trusted)")
    p.add_argument(
        "--url", required=True, help="cos://...&mode=token-vendor&issuer=..&audience=..&jwks_url=.."
    )
    p.add_argument("--listen", default="127.0.0.1:8787", help="HOST:PORT (put TLS in front)")
    args = p.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    try:
        settings = parse_settings(
            StoreTarget(url=args.url, wallet="0x" + "0" * 40, options={"mode": "token-vendor"})
        )
        vendor: TokenVendor = build_vendor(settings, {})
    except PortableCredsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    server = VendorServer(vendor, host or "127.0.0.1", int(port))
    print(f"token vendor listening on {server.url}{PATH}", file=sys.stderr)
    try:
        server._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
