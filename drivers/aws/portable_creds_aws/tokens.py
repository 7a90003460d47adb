"""Where the tenant's OIDC token comes from, asked afresh at every credential refresh.

Three sources, in order of precedence: the caller's callable (``open_store(token=...)``), a token
file re-read each time (the ``AWS_WEB_IDENTITY_TOKEN_FILE`` convention: something else keeps it
fresh), and the agentKeys broker (``POST /v1/mint-oidc-jwt`` with the session JWT as bearer).
"""

from __future__ import annotations

from pathlib import Path

from portable_creds.driver import TokenSource
from portable_creds.errors import ConfigurationError
from portable_creds.tokens import BrokerTokenSource, FileTokenSource, StaticTokenSource

from .settings import S3Settings

__all__ = ["BrokerTokenSource", "FileTokenSource", "StaticTokenSource", "select_token_source"]


def select_token_source(
    explicit: TokenSource | None, settings: S3Settings, static: str | None = None
) -> TokenSource | None:
    """Pick the token source for a federated store (``None`` when none is configured)."""
    if explicit is not None:
        return explicit
    if static:
        return StaticTokenSource(static)
    if settings.token_file:
        return FileTokenSource(Path(settings.token_file))
    if settings.broker_url:
        session = settings.session_jwt
        if session is None and settings.session_jwt_file:
            session = FileTokenSource(Path(settings.session_jwt_file))()
        if not session:
            raise ConfigurationError(
                "broker_url needs the broker session JWT: add session_jwt_file=PATH to the "
                "URL (or give the session_jwt option)"
            )
        return BrokerTokenSource(settings.broker_url, session, settings.broker_ttl)
    return None
