"""URL checks with no HTTP client behind them: loopback, userinfo, redaction, service URLs.

Split from ``httpclient`` so that code which only *validates* or *shows* a URL (the driver
registry, configuration, the CLI's option checks) does not import ``urllib.request`` and its
``http.client``/``ssl``/``email`` tree: a cold ``portable-creds get`` on the local backend
never makes an HTTP request (issue 13). ``httpclient`` re-exports these names.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit

from .errors import ConfigurationError


def is_loopback(host: str | None) -> bool:
    """``localhost`` or a loopback IP literal (127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def has_userinfo(url: str) -> bool:
    """Whether ``url`` carries ``user[:password]@`` before its host."""
    try:
        return "@" in urlsplit(url).netloc
    except ValueError:
        return False


def redact(url: str) -> str:
    """``url`` without any ``user:password@`` part (for messages)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, "***@" + host, parts.path, parts.query, parts.fragment))


def reject_userinfo(url: str, what: str) -> None:
    """``ConfigurationError`` if ``url`` embeds credentials; the message never repeats them."""
    if has_userinfo(url):
        raise ConfigurationError(
            f"{what} {redact(url)!r} contains a user name or password before the host; "
            "credentials never belong in a URL (URLs end up in logs, error messages, the audit "
            "log and the outbox): remove them and pass the token through its setting instead"
        )


def check_service_url(url: str, *, what: str, hint: str = "") -> str:
    """An http(s) service URL: https unless the host is loopback, no userinfo. Returns ``url``.

    ``what`` names the setting in the error (``"signer URL"``), ``hint`` says where it is set.
    """
    reject_userinfo(url, what)
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise ConfigurationError(
            f"{what} {url!r} is not an http(s):// URL{hint}; use e.g. https://host:port"
        )
    if parts.scheme != "https" and not is_loopback(host):
        raise ConfigurationError(
            f"{what} {url!r} uses plain http to a non-loopback host{hint}: tokens would cross "
            "the network in cleartext; use https:// (plain http is accepted only for "
            "127.0.0.1/localhost/::1, e.g. through an SSH tunnel)"
        )
    return url
