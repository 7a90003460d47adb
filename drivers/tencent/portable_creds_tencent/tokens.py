"""Where a tenant's OIDC token comes from when the caller gives no ``token=`` callable.

The CLI cannot pass a callable, so a ``cos://`` URL names the source, as the ``s3://`` driver
does: a token file re-read at every credential refresh (the ``AWS_WEB_IDENTITY_TOKEN_FILE``
convention: something else, e.g. a kubelet or an agent, keeps it fresh), or the agentKeys
broker (``POST /v1/mint-oidc-jwt`` with the session JWT as bearer). Precedence: the caller's
callable, the ``token`` option (a fixed string), ``token_file=``, ``broker_url=``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from portable_creds.driver import TokenSource
from portable_creds.errors import (
    ConfigurationError,
    CredentialsError,
    InvalidToken,
    RemoteUnavailable,
)

HOW_TO_PROVIDE = (
    "pass token=<callable returning the JWT> to open_store, or add token_file=PATH (a file "
    "holding the current OIDC JWT, re-read at every refresh) or broker_url=URL with "
    "session_jwt_file=PATH (or the session_jwt option) to the cos:// URL"
)


@attrs.frozen(repr=False)
class FileTokenSource:
    """Re-reads ``path`` on every call, so a rotated token file is picked up at refresh."""

    path: Path

    def __call__(self) -> str:
        try:
            token = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            raise CredentialsError(
                f"token file {self.path} does not exist; point token_file= at the file your "
                "platform keeps refreshed with the tenant's OIDC JWT"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CredentialsError(
                f"cannot read token file {self.path} ({type(exc).__name__}); check permissions"
            ) from None
        if not token:
            raise InvalidToken(f"token file {self.path} is empty; it must hold one OIDC JWT")
        return token

    def __repr__(self) -> str:
        return f"FileTokenSource({str(self.path)!r})"


@attrs.frozen(repr=False)
class BrokerTokenSource:
    """Asks the agentKeys broker for a fresh token (short TTL) at each refresh."""

    url: str
    session_jwt: str
    ttl_seconds: int = 300
    timeout: float = 10.0

    def __call__(self) -> str:
        body = json.dumps({"ttl_seconds": self.ttl_seconds}).encode()
        request = urllib.request.Request(  # noqa: S310 - scheme checked by broker_endpoint
            self.url.rstrip("/") + "/v1/mint-oidc-jwt",
            data=body,
            method="POST",
            headers={
                "Authorization": f"Bearer {self.session_jwt}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:  # noqa: S310
                payload = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise CredentialsError(
                    f"the broker refused the session (HTTP {exc.code}); log in again to get a "
                    "fresh session JWT"
                ) from None
            if exc.code == 429 or exc.code >= 500:
                raise RemoteUnavailable(
                    f"the broker failed (HTTP {exc.code}); try again later"
                ) from None
            raise ConfigurationError(
                f"the broker rejected the request (HTTP {exc.code}); check broker_url"
            ) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise RemoteUnavailable(
                f"cannot reach the broker at {self.url} ({type(exc).__name__}); check broker_url"
            ) from None
        except ValueError:
            raise RemoteUnavailable("the broker answered with invalid JSON") from None
        token = payload.get("jwt") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            raise RemoteUnavailable("the broker answer has no 'jwt' field")
        return token

    def __repr__(self) -> str:
        return f"BrokerTokenSource(url={self.url!r}, session_jwt=<{len(self.session_jwt)} chars>)"


@attrs.frozen(repr=False)
class StaticTokenSource:
    token: str

    def __call__(self) -> str:
        return self.token

    def __repr__(self) -> str:
        return f"StaticTokenSource(<{len(self.token)} chars>)"


def broker_endpoint(raw: str | None) -> str | None:
    """``broker_url``: https, or plain http on loopback only (tests, a local broker)."""
    if not raw:
        return None
    parts = urlsplit(raw)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ConfigurationError(
            f"cos:// broker_url={raw!r} must be https://... (plain http only on loopback)"
        )
    return raw


def select_token_source(
    explicit: TokenSource | None, params: Mapping[str, str], options: Mapping[str, Any]
) -> TokenSource | None:
    """The token source for a federated store; ``None`` when none is configured."""
    if explicit is not None:
        return explicit
    static = options.get("token")
    if isinstance(static, str) and static:
        return StaticTokenSource(static)
    token_file = params.get("token_file")
    if token_file:
        return FileTokenSource(Path(token_file))
    broker_url = broker_endpoint(params.get("broker_url"))
    if broker_url:
        session = options.get("session_jwt")
        if not isinstance(session, str) or not session:
            session_file = params.get("session_jwt_file")
            session = FileTokenSource(Path(session_file))() if session_file else None
        if not session:
            raise ConfigurationError(
                "cos:// broker_url needs the broker session JWT: pass session_jwt=... (option) "
                "or add session_jwt_file=PATH to the URL"
            )
        ttl = _ttl(params.get("broker_ttl"))
        return BrokerTokenSource(broker_url, session, ttl)
    return None


def _ttl(raw: str | None) -> int:
    if not raw:
        return 300
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"cos:// option broker_ttl={raw!r} must be an integer") from None
    if not 60 <= value <= 3600:
        raise ConfigurationError(f"cos:// option broker_ttl={value} must be between 60 and 3600")
    return value
