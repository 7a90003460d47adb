"""Where a tenant's OIDC token comes from when the caller gives no ``token=`` callable.

The CLI cannot pass a callable, so a ``cos://`` URL names the source, as the ``s3://`` driver
does: a token file re-read at every credential refresh (the ``AWS_WEB_IDENTITY_TOKEN_FILE``
convention: something else, e.g. a kubelet or an agent, keeps it fresh), or the agentKeys
broker (``POST /v1/mint-oidc-jwt`` with the session JWT as bearer). Precedence: the caller's
callable, the ``token`` option (a fixed string), ``token_file=``, ``broker_url=``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from portable_creds.driver import TokenSource
from portable_creds.errors import ConfigurationError
from portable_creds.params import int_param
from portable_creds.tokens import (
    BrokerTokenSource,
    FileTokenSource,
    StaticTokenSource,
    broker_endpoint,
)

__all__ = [
    "HOW_TO_PROVIDE",
    "BrokerTokenSource",
    "FileTokenSource",
    "StaticTokenSource",
    "broker_endpoint",
    "select_token_source",
]

HOW_TO_PROVIDE = (
    "pass token=<callable returning the JWT> to open_store, or add token_file=PATH (a file "
    "holding the current OIDC JWT, re-read at every refresh) or broker_url=URL with "
    "session_jwt_file=PATH (or the session_jwt option) to the cos:// URL"
)


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
        ttl = int_param(params, "broker_ttl", 300, 60, 3600, scheme="cos")
        return BrokerTokenSource(broker_url, session, ttl)
    return None
