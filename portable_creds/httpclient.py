"""The one way portable-creds talks HTTP with the standard library: URL checks and a safe opener.

Every stdlib HTTP client in the tree (the legacy backend, the signer, the agentKeys broker, the
token vendor, JWKS fetches, ``doctor``'s probes) builds its opener here, because urllib's
default redirect handling is unsafe for credentialed requests: it copies ``Authorization`` to
whatever host a 3xx names, and follows https -> http. Here:

- a redirect from https to anything but https is never followed;
- a redirect to another origin (scheme, host, port) is refused if the request carried a
  credential (``Authorization``, ``Proxy-Authorization``, ``Cookie``, any ``*token*`` header)
  or a body; a credential-free GET (a JWKS fetch) may follow it, with nothing sensitive copied;
- same-origin redirects behave as urllib's (which never re-sends a POST body).

Refusing rather than stripping is deliberate: none of these APIs redirects across origins by
design, and a request silently stripped of its token fails later with a misleading 401.

URLs that name a service are checked up front (``check_service_url``, in ``urls``): http(s)
only, https unless the host is loopback, and never ``user:password@`` (a URL is logged, shown
in errors, recorded in the audit log and the outbox; credentials do not belong in it).
"""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping
from http.client import HTTPMessage
from typing import IO, Any
from urllib.parse import urlsplit

from .errors import ConfigurationError
from .urls import check_service_url, has_userinfo, is_loopback, redact, reject_userinfo

__all__ = [
    "RedirectRefused",
    "SafeRedirectHandler",
    "build_opener",
    "check_service_url",
    "has_userinfo",
    "is_loopback",
    "open_url",
    "redact",
    "reject_userinfo",
]

_SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


class RedirectRefused(ConfigurationError):
    """A server redirected a request somewhere this client will not follow it."""


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def _sensitive(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SENSITIVE_HEADERS or "token" in lowered


class SafeRedirectHandler(urllib.request.HTTPRedirectHandler):
    """urllib's redirect handler, minus the credential leaks (see the module docstring)."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        old = _origin(req.full_url)
        try:
            new = _origin(newurl)
        except ValueError:
            new = ("", "", None)
        where = redact(req.full_url)
        if old[0] == "https" and new[0] != "https":
            fp.close()
            raise RedirectRefused(
                f"{where} redirected (HTTP {code}) from https to a non-https URL; not followed: "
                "the request would leave TLS. Point the URL at the final https endpoint"
            )
        if new != old:
            credentialed = req.data is not None or any(
                _sensitive(k) for k in (*req.headers, *req.unredirected_hdrs)
            )
            if credentialed or has_userinfo(newurl):
                fp.close()
                raise RedirectRefused(
                    f"{where} redirected (HTTP {code}) to another origin "
                    f"({new[0]}://{new[1]}:{new[2]}); not followed, so the request's credentials "
                    "stay with the server they were meant for. Point the URL at the server that "
                    "answers directly"
                )
        follow = super().redirect_request(req, fp, code, msg, headers, newurl)
        if follow is not None and new != old:
            for name in [k for k in follow.headers if _sensitive(k)]:
                follow.remove_header(name)
        return follow


def build_opener(url: str, *extra: urllib.request.BaseHandler) -> urllib.request.OpenerDirector:
    """An opener for requests to ``url``'s server: safe redirects, no proxy for loopback."""
    handlers: list[urllib.request.BaseHandler] = [SafeRedirectHandler(), *extra]
    try:
        loopback = is_loopback(urlsplit(url).hostname)
    except ValueError:
        loopback = False
    if loopback:
        handlers.append(urllib.request.ProxyHandler({}))  # never send loopback via a proxy
    return urllib.request.build_opener(*handlers)


def open_url(
    url: str,
    *,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    method: str | None = None,
    timeout: float,
) -> Any:
    """One request through ``build_opener(url)``; returns the response (a context manager)."""
    request = urllib.request.Request(  # noqa: S310 - callers check the scheme
        url, data=data, headers=dict(headers or {}), method=method
    )
    return build_opener(url).open(request, timeout=timeout)
