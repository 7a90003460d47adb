"""``open_store``: one call from a backend URL and a wallet to a ready ``CredentialStore``.

Defaults are chosen so that nothing configured still works safely: the local backend under the
data home, a root secret created (0600) on first use there, and the outbox for remote
backends only - a local write is already durable on this machine, so parking it in a second
local directory first would add an fsync and nothing else.

A root secret is only ever created for the local backend. For a remote backend a missing secret
means this machine is not set up yet; inventing a new one would seal new credentials under a
key no other machine has, which looks fine until someone else tries to read them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import credcache, envelope, names, paths
from .credcache import CredentialCache
from .driver import ObjectStore
from .errors import ConfigurationError
from .keys import KeySource
from .outbox import Outbox
from .registry import open_object_store, scheme_of
from .store import AuditHook, CredentialStore

ENV_SECRET_FILE = "PORTABLE_CREDS_SECRET_FILE"
DEFAULT_URL = "local:"

Notice = Callable[[str], None]
KeysFactory = Callable[[ObjectStore], KeySource]
"""Builds the key source from the opened backend (e.g. with ``ObjectStore.key_source_for``)."""

_log = logging.getLogger("portable_creds")


def _log_notice(message: str) -> None:
    _log.info("%s", message)


def default_key_source(
    home: paths.PathArg | None = None,
    *,
    create: bool,
    on_notice: Notice | None = None,
) -> KeySource:
    """The ``SecretKeySource`` from ``$PORTABLE_CREDS_SECRET_FILE`` or ``<home>/root.key``.

    ``create=True`` (local backend): a missing ``<home>/root.key`` is generated, 0600, with a
    notice. An explicit ``PORTABLE_CREDS_SECRET_FILE`` is never created: a typo there must not
    silently start a second, un-backed-up secret.
    """
    from .secret_key import SecretKeySource

    explicit = os.environ.get(ENV_SECRET_FILE, "")
    if explicit:
        return SecretKeySource.from_file(os.path.expanduser(explicit))
    path = paths.root_key_path(home)
    if not create:
        if not os.path.lexists(path):
            raise ConfigurationError(
                f"no root secret at {path}: copy the root secret that sealed this backend's "
                f"data there (or set {ENV_SECRET_FILE}); to start afresh create one with "
                f"'(umask 077; head -c 32 /dev/urandom > {path})'"
            )
        return SecretKeySource.from_file(path)
    try:
        paths.ensure_private_dir(path.parent)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create the data home {path.parent}: {exc}; set PORTABLE_CREDS_HOME to a "
            "writable directory"
        ) from None
    source, created = SecretKeySource.load_or_create(path)
    if created:
        (on_notice or _log_notice)(
            f"created a new root secret at {path} (mode 0600); back it up: without it the "
            "stored credentials cannot be read"
        )
    return source


def _with_configured(
    objects: ObjectStore,
    keys: KeySource | None,
    home: paths.PathArg | None,
    is_local: bool,
    on_notice: Notice | None,
) -> KeySource:
    """The key source to use: a KMS key the URL configures seals; ``keys`` (or an existing
    root secret) still opens what was sealed before, so switching custody needs no flag day
    and ``rewrap`` moves old blobs over (docs/aws.md, "Moving custody")."""
    configured = objects.configured_key_source()
    if configured is None:
        return keys or default_key_source(home, create=is_local, on_notice=on_notice)
    from .key_chain import ChainedKeySource

    previous = keys
    if previous is None:
        try:
            previous = default_key_source(home, create=False, on_notice=on_notice)
        except ConfigurationError:
            previous = None
    return configured if previous is None else ChainedKeySource(configured, previous)


def open_store(
    url: str | None = None,
    *,
    wallet: str,
    token: str | Callable[[], str] | None = None,
    keys: KeySource | KeysFactory | None = None,
    home: paths.PathArg | None = None,
    prefix: str | None = None,
    max_payload: int = envelope.DEFAULT_MAX_PAYLOAD,
    outbox: bool | Outbox | None = None,
    on_notice: Notice | None = None,
    audit: AuditHook | None = None,
    credential_cache: bool | CredentialCache | None = None,
    **options: Any,
) -> CredentialStore:
    """Open the credential store of ``wallet`` in the backend ``url`` names.

    ``url``: ``local:`` / ``local:///abs/path`` / ``s3://bucket`` / ``cos://bucket-appid`` ...;
    ``None`` is the local backend under the data home. ``token``: the tenant's OIDC token, or a
    callable returning a fresh one, for federated backends. ``keys``: the key source; ``None``
    uses the root secret (see ``default_key_source``); a URL's ``kms_key=`` seals in front of
    either. A function of the opened ``ObjectStore`` instead: its result is used exactly as
    returned (custody moves build KMS sources signing as the store's identity that way).
    ``home``: the data home (default: ``$PORTABLE_CREDS_HOME``, then XDG). ``outbox``: ``None``
    = on for remote backends, off for local; ``True``/``False`` to force; or an ``Outbox`` to
    use. ``prefix``: the storage layout's top segment(s) (default: the URL's ``?prefix=``, else
    ``bots``). ``on_notice`` receives one-line human notices (the CLI prints them on stderr; the
    default logs at INFO).
    ``credential_cache``: ``True`` shares temporary (STS) credentials with other processes
    through ``<home>/cache/credentials`` (see ``portable_creds.credcache``; the CLI's default),
    or a ``CredentialCache`` to use; ``None``/``False`` (the library's default): off.
    ``PORTABLE_CREDS_NO_CREDENTIAL_CACHE=1`` turns it off whatever is passed. Remaining keyword
    ``options`` go to the driver.
    """
    wallet = names.validate_wallet(wallet)
    envelope.check_max_payload(max_payload)
    url = DEFAULT_URL if url is None or url == "" else url
    is_local = scheme_of(url) == "local"  # also rejects unparseable URLs, typed
    # One prefix for the layout and for the driver (whose policies are rendered for it):
    # the keyword, else the URL's ?prefix=, else "bots".
    url_prefix = dict(parse_qsl(urlsplit(url).query)).get("prefix")
    prefix = names.validate_prefix(prefix or url_prefix or names.DEFAULT_PREFIX)
    options = {**options, "prefix": prefix}
    if is_local and home is not None:
        options = {"home": os.fspath(home), **options}
    if credential_cache and not is_local and not credcache.disabled_by_env():
        cache = (
            credential_cache
            if isinstance(credential_cache, CredentialCache)
            else CredentialCache(credcache.cache_dir(home))
        )
        options = {"credential_cache": cache, **options}

    objects: ObjectStore = open_object_store(url, wallet=wallet, token=token, **options)
    try:
        if keys is not None and not isinstance(keys, KeySource):
            keys = keys(objects)  # a factory: used as built, nothing chained in front
        else:
            keys = _with_configured(objects, keys, home, is_local, on_notice)
        box: Outbox | None
        if isinstance(outbox, Outbox):
            box = outbox
        elif outbox is True or (outbox is None and not is_local):
            box = Outbox(paths.outbox_dir(home))
        else:
            box = None
        return CredentialStore(
            objects, keys, wallet, prefix=prefix, max_payload=max_payload, outbox=box, audit=audit
        )
    except BaseException:
        objects.close()
        raise
