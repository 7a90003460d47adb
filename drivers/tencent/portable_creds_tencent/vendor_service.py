"""The token vendor as a small HTTP service, and the tenant-side client for it.

This is what makes the ``token-vendor`` trust boundary concrete: the vendor's API key lives
only in the service process; tenants send their OIDC token and receive credentials limited to
their own prefix. Run it behind TLS (a reverse proxy); plain HTTP is accepted by the client
only on loopback, for tests. It is served by waitress (``portable_creds.wsgi``): bounded
headers and body, idle timeouts for stalled clients, a 400 for malformed framing, graceful
shutdown on SIGTERM.

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
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

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
from portable_creds.httpclient import build_opener, check_service_url
from portable_creds.wsgi import ServerLimits, WsgiApp, WsgiServer, request_body, request_headers

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


_BAD_BODY = {
    "error": "InvalidName",
    "message": 'send {"wallet": "0x..."} (+ "keys": [...], "read_only": ...)',
}


def _parse(raw: bytes) -> tuple[str, Scope | None]:
    """The wallet and optional scope of a vend request; ``ValueError`` if malformed."""
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
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ValueError("malformed vend request") from None
    return wallet, scope


def vendor_app(vendor: Vendor) -> WsgiApp:
    """The token vendor as a WSGI app: ``POST /v1/credentials`` -> ``vendor.vend``.

    Framing, size limits and timeouts are the server's job (``portable_creds.wsgi``); this
    only ever sees complete requests of at most ``_MAX_BODY`` bytes.
    """

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        status, doc = _answer(vendor, environ)
        data = json.dumps(doc).encode()
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(data))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [data]

    return app


def _answer(vendor: Vendor, environ: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    if environ.get("PATH_INFO") != PATH:
        return 404, {"error": "NotFound", "message": f"POST {PATH}"}
    if environ.get("REQUEST_METHOD") != "POST":
        return 405, {"error": "MethodNotAllowed", "message": f"POST {PATH}"}
    raw = request_body(environ)
    if len(raw) > _MAX_BODY:
        return 413, {"error": "TooLarge", "message": "request body too large"}
    auth = request_headers(environ).get("authorization", "")
    if not auth.startswith("Bearer "):
        return 401, {"error": "InvalidToken", "message": "send Authorization: Bearer <JWT>"}
    try:
        wallet, scope = _parse(raw)
    except ValueError:
        return 400, _BAD_BODY
    try:
        creds = vendor.vend(auth[len("Bearer ") :].strip(), wallet, scope)
    except PortableCredsError as exc:
        return _status_for(exc), {"error": type(exc).__name__, "message": exc.message}
    except Exception:  # the vendor must answer, never leak a traceback
        log.exception("token vendor: unexpected failure")
        return 500, {"error": "InternalError", "message": "internal error"}
    assert creds.expiration is not None
    return 200, {
        "TmpSecretId": creds.access_key_id,
        "TmpSecretKey": creds.secret_access_key,
        "Token": creds.session_token,
        "ExpiredTime": int(creds.expiration.timestamp()),
    }


#: Serving limits: a vend request is a few hundred bytes; a client gets 15 s of silence at most.
VENDOR_LIMITS = ServerLimits(
    max_header_bytes=16 * 1024,  # a JWT in Authorization is ~1-2 KiB
    max_body_bytes=_MAX_BODY,
    idle_timeout=15,
    threads=16,
    connection_limit=512,
    shutdown_grace=10.0,
)


class VendorServer(WsgiServer):
    """Serves ``vendor.vend`` over HTTP on waitress. The process running it is the trusted party.

    Needs the ``vendor`` extra (``pip install 'portable-creds-tencent[vendor]'``).
    """

    def __init__(
        self,
        vendor: Vendor,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        limits: ServerLimits = VENDOR_LIMITS,
    ) -> None:
        self.vendor = vendor
        super().__init__(
            vendor_app(vendor), host=host, port=port, limits=limits, name="token-vendor"
        )


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
        check_service_url(url, what="vendor_url")  # https off loopback, no user:password@
        self.url = url.rstrip("/") + PATH
        # The tenant's OIDC token never follows a redirect to another origin or off https.
        self._opener = build_opener(self.url)
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
            with self._opener.open(req, timeout=self.timeout) as resp:
                answer = json.loads(resp.read(_MAX_BODY + 1))
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
    try:
        server = VendorServer(vendor, host or "127.0.0.1", int(port))
    except PortableCredsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"token vendor listening on {server.url}{PATH}", file=sys.stderr)
    server.serve_forever()  # SIGINT/SIGTERM: stop accepting, finish in-flight vends, exit
    return 0


if __name__ == "__main__":
    sys.exit(main())
