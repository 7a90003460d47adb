"""Finding drivers: backend URL scheme -> entry point in ``portable_creds.drivers`` -> Driver.

Drivers are separate distributions (``portable-creds-aws``, ``portable-creds-tencent``) that
declare an entry point; nothing here imports them until a URL actually needs one, so importing
the core (or running ``portable-creds --help``) never pulls in a cloud SDK. A missing or broken
driver becomes a ``ConfigurationError`` that says which package to install.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import names
from .driver import Driver, ObjectStore, StoreTarget, TokenSource
from .errors import ConfigurationError
from .urls import redact, reject_userinfo

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

GROUP = "portable_creds.drivers"

#: The distribution that provides each well-known scheme, for "pip install ..." hints.
PACKAGE_FOR_SCHEME: dict[str, str] = {
    "local": "portable-creds",
    "s3": "portable-creds-aws",
    "aws": "portable-creds-aws",
    "cos": "portable-creds-tencent",
    "tencent": "portable-creds-tencent",
}


def available_drivers() -> dict[str, EntryPoint]:
    """Installed drivers by name (= URL scheme), without importing any of them.

    If two distributions declare the same name, the first one found on ``sys.path`` wins,
    which is what ``import`` would do with two copies of a module.

    Only distributions whose ``entry_points.txt`` names the group are parsed (and their
    names read): ``importlib.metadata.entry_points()`` parses every installed distribution's
    entry points, which costs a cold CLI process several milliseconds (issue 13).
    """
    from importlib.metadata import distributions

    found: dict[str, EntryPoint] = {}
    seen: set[str] = set()
    marker = f"[{GROUP}]"
    for dist in distributions():
        text = dist.read_text("entry_points.txt")
        if not text or marker not in text:
            continue
        name = _normalized(dist.metadata["Name"] or "")
        if name in seen:  # a second copy of the same distribution further down sys.path
            continue
        seen.add(name)
        for ep in dist.entry_points.select(group=GROUP):
            found.setdefault(ep.name, ep)
    return dict(sorted(found.items()))


def _install_hint(name: str) -> str:
    package = PACKAGE_FOR_SCHEME.get(name)
    if package is None:
        return ""
    return f"; install it with 'pip install {package}'"


def _normalized(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def declared_entry_point(name: str) -> str | None:
    """``module:attr`` that the first distribution on ``sys.path`` declaring ``name`` in
    ``GROUP`` names, read straight from the ``*.dist-info``/``*.egg-info`` directories'
    ``entry_points.txt``, with the precedence of ``available_drivers()``.

    Why not ``importlib.metadata``: importing it (email, zipfile, csv, importlib.resources) and
    walking every distribution costs a cold CLI process ~25 ms, a tenth of a cold ``get``
    (issue 13). ``None`` (not found here, e.g. a zipped install) sends the caller to
    ``available_drivers()``, which also words every error."""
    seen: set[str] = set()
    for entry in sys.path:
        where = entry or "."
        try:
            listing = os.listdir(where)
        except OSError:
            continue
        for info in listing:
            if not info.endswith((".dist-info", ".egg-info")):
                continue
            try:
                with open(os.path.join(where, info, "entry_points.txt"), encoding="utf-8") as f:
                    text = f.read()
            except OSError:
                continue
            if f"[{GROUP}]" not in text:
                continue
            distribution = _normalized(info.rpartition(".")[0].partition("-")[0])
            if distribution in seen:  # a second copy further down sys.path
                continue
            seen.add(distribution)
            value = _entry_in(text, name)
            if value is not None:
                return value
    return None


def _entry_in(text: str, name: str) -> str | None:
    """``name``'s value in the ``GROUP`` section of an ``entry_points.txt`` (INI syntax)."""
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif section == GROUP:
            key, sep, value = line.partition("=")
            if sep and key.strip() == name:
                return value.partition("[")[0].strip()  # without any [extras]
    return None


def _import_entry_point(value: str) -> Any:
    module, _, attr = value.partition(":")
    loaded: Any = importlib.import_module(module.strip())
    for part in attr.strip().split(".") if attr.strip() else ():
        loaded = getattr(loaded, part)
    return loaded


def load_driver_class(name: str) -> type[Driver]:
    """Import and return the driver class registered as ``name``."""
    key = name.lower() if isinstance(name, str) else name
    declared = declared_entry_point(key) if isinstance(key, str) else None
    if declared is not None:
        try:
            fast: Any = _import_entry_point(declared)
        except (ImportError, AttributeError):
            fast = None  # reported below, with the declaring distribution's name
        if isinstance(fast, type) and issubclass(fast, Driver):
            return fast
    drivers = available_drivers()
    ep = drivers.get(key)
    if ep is None:
        installed = ", ".join(drivers) or "none"
        hint = _install_hint(key)
        if not hint:
            hint = (
                "; use one of the installed schemes, or install the package that provides "
                f"{key!r} (it registers an entry point in {GROUP!r})"
            )
        raise ConfigurationError(
            f"no storage driver for {key!r} is installed (installed: {installed}){hint}"
        )
    try:
        loaded: Any = ep.load()
    except ImportError as exc:
        dist = ep.dist.name if ep.dist is not None else "its package"
        raise ConfigurationError(
            f"storage driver {key!r} (declared by {dist}) cannot be imported: "
            f"{type(exc).__name__}: {exc}; reinstall it"
            + (_install_hint(key) or f" ('pip install --force-reinstall {dist}')")
        ) from exc
    if not (isinstance(loaded, type) and issubclass(loaded, Driver)):
        raise ConfigurationError(
            f"entry point {ep.name} = {ep.value!r} in {GROUP!r} is not a "
            "portable_creds.driver.Driver subclass; fix or uninstall the package declaring it"
        )
    return loaded


def load_driver(name: str) -> Driver:
    """An instance of the driver registered as ``name`` (``local``, ``s3``, ``cos``...)."""
    return load_driver_class(name)()


def scheme_of(url: str) -> str:
    """The driver name a backend URL selects (its scheme, lowercased)."""
    if not isinstance(url, str) or not url:
        raise ConfigurationError(
            "no backend URL given; use e.g. local:///path, s3://bucket or cos://bucket-appid"
        )
    # Before anything echoes the URL: credentials in it would reach logs, errors, the audit
    # log and the outbox's backend id.
    reject_userinfo(url, "backend URL")
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError as exc:
        raise ConfigurationError(
            f"backend URL {redact(url)!r} is not a valid URL ({exc}); use e.g. local:///path, "
            "s3://bucket or cos://bucket-appid"
        ) from None
    if not scheme:
        raise ConfigurationError(
            f"backend URL {url!r} has no scheme; use e.g. local:///path, s3://bucket or "
            "cos://bucket-appid"
        )
    return _SCHEME_ALIASES.get(scheme, scheme)


#: URL schemes served by a driver registered under another name.
_SCHEME_ALIASES = {"https": "http"}


def token_source(token: str | TokenSource | None) -> TokenSource | None:
    """A fixed token string becomes a source that always returns it."""
    if token is None or callable(token):
        return token
    if isinstance(token, str):
        if not token:
            raise ConfigurationError("the identity token is empty; pass a token or leave it out")
        fixed = token

        def fixed_token() -> str:
            return fixed

        return fixed_token
    raise ConfigurationError("token must be a string or a callable returning the current token")


def open_object_store(
    url: str,
    *,
    wallet: str | None,
    token: str | Callable[[], str] | None = None,
    **options: Any,
) -> ObjectStore:
    """Open the object store a URL names, for ``wallet`` (``None``: administrative view)."""
    driver = load_driver(scheme_of(url))
    target = StoreTarget(
        url=url,
        wallet=None if wallet is None else names.validate_wallet(wallet),
        token=token_source(token),
        options=dict(options),
    )
    return driver.open_object_store(target)
