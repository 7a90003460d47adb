"""Where a tenant's OIDC token comes from, asked afresh at every credential refresh.

Shared by the federated drivers. The caller's callable (``open_store(token=...)``) wins; the CLI
cannot pass one, so a URL names a source instead: a token file re-read at every refresh (the
``AWS_WEB_IDENTITY_TOKEN_FILE`` convention: something else keeps it fresh), or the agentKeys
broker (``POST /v1/mint-oidc-jwt`` with the session JWT as bearer). Standard library only.
"""

from __future__ import annotations

import json
import urllib.error
from pathlib import Path

import attrs

from .errors import ConfigurationError, CredentialsError, InvalidToken, RemoteUnavailable
from .httpclient import check_service_url, open_url

_MAX_ANSWER = 64 * 1024
"""A minted JWT is a few hundred bytes; anything far larger is not a broker answer."""


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
                "platform keeps refreshed (the AWS_WEB_IDENTITY_TOKEN_FILE convention)"
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
    """Asks the agentKeys broker for a fresh token (ES256, short TTL) at each refresh."""

    url: str
    session_jwt: str
    ttl_seconds: int = 300
    timeout: float = 10.0

    def __call__(self) -> str:
        body = json.dumps({"ttl_seconds": self.ttl_seconds}).encode()
        url = check_service_url(self.url, what="broker_url").rstrip("/") + "/v1/mint-oidc-jwt"
        try:
            with open_url(
                url,
                data=body,
                method="POST",
                headers={
                    "Authorization": f"Bearer {self.session_jwt}",
                    "Content-Type": "application/json",
                },
                timeout=self.timeout,
            ) as resp:
                payload = json.loads(resp.read(_MAX_ANSWER + 1))
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
    return check_service_url(raw, what="broker_url")
