"""The small interfaces a storage backend implements.

Modelled on httpx's transport base classes: a driver is a factory that turns a URL into an
``ObjectStore`` bound to one tenant's identity. The store moves opaque bytes; it never sees
plaintext (sealing happens above it, in ``CredentialStore``). Every driver maps its SDK's
failures into ``portable_creds.errors`` by status and code, never by message text.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qsl, urlsplit

import attrs

from .errors import ConfigurationError, PayloadTooLarge, PortableCredsError
from .keys import KeySource

#: Something that yields a fresh OIDC token each time it is called (re-read a file, ask a broker).
TokenSource = Callable[[], str]

ScopedEnforcement = Literal["cloud", "client", "none"]


@attrs.frozen
class Capabilities:
    """What a store can promise. The conformance suite gates test groups on these."""

    create_only: bool = False
    """``put(..., if_none_match=True)`` is atomic on the server (one winner among racers)."""
    if_match: bool = False
    """``put(..., if_match=etag)`` is atomic compare-and-swap on the server."""
    federation: bool = False
    """Tenant credentials come from an identity service (OIDC -> STS), not static keys."""
    server_side_isolation: bool = False
    """The storage service itself refuses cross-tenant access (not a client-side check)."""
    scoped_credentials: ScopedEnforcement = "none"
    """How ``CredentialStore.scoped`` limits are enforced: by the cloud, by the client, or not."""
    max_object_size: int | None = None
    """Largest object the backend accepts, if it has a limit below the envelope maximum."""


@attrs.frozen
class ObjectInfo:
    """Metadata of one stored object."""

    key: str
    size: int
    etag: str


@attrs.frozen(repr=False)
class StoredObject:
    """An object's bytes and its ETag. The bytes are sealed, but keep them out of reprs anyway."""

    data: bytes
    etag: str

    def __repr__(self) -> str:
        return f"StoredObject(<{len(self.data)} bytes>, etag={self.etag!r})"


def check_object_size(key: str, size: int, max_size: int) -> None:
    """Raise ``PayloadTooLarge`` if an object of ``size`` bytes is above a reader's maximum."""
    if size > max_size:
        raise PayloadTooLarge(
            f"{key}: the stored object is {size} bytes, above the {max_size} bytes this reader "
            "accepts; it was refused without being read (open the store with a larger "
            "max_payload if such secrets are intended)"
        )


def _mask(value: str) -> str:
    return f"<{len(value)} chars>" if value else "''"


@attrs.frozen(repr=False)
class TemporaryCredentials:
    """Short-lived keys from an identity service. ``repr`` never shows the secret parts."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None
    expiration: dt.datetime | None
    """Timezone-aware UTC expiry; ``None`` for static credentials."""

    def expires_within(self, seconds: float, now: dt.datetime | None = None) -> bool:
        if self.expiration is None:
            return False
        now = now or dt.datetime.now(dt.UTC)
        return (self.expiration - now).total_seconds() <= seconds

    def __repr__(self) -> str:
        return (
            f"TemporaryCredentials(access_key_id={self.access_key_id!r}, "
            f"secret_access_key={_mask(self.secret_access_key)}, "
            f"session_token={_mask(self.session_token or '')}, expiration={self.expiration!r})"
        )


class CredentialsProvider(abc.ABC):
    """Federated identity: exchanges the tenant's token for temporary credentials."""

    @abc.abstractmethod
    def credentials(self) -> TemporaryCredentials:
        """Current credentials, refreshed ahead of expiry."""

    def invalidate(self) -> None:  # noqa: B027 - optional hook with a sensible default
        """Forget cached credentials so the next call exchanges the token again."""


class ObjectStore(abc.ABC):
    """Opaque-bytes storage bound to one identity.

    Keys are full storage keys (``bots/<wallet>/credentials/<service>.enc``). A store opened for
    a tenant may only touch that tenant's prefix; what enforces it (the cloud's IAM, or the
    driver for local backends) is declared in ``capabilities``.
    """

    capabilities: Capabilities = Capabilities()

    @property
    @abc.abstractmethod
    def backend_id(self) -> str:
        """Stable, secret-free identity of the backend location (used to key the outbox)."""

    @abc.abstractmethod
    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> str:
        """Store ``data`` at ``key`` and return its ETag.

        ``if_none_match=True``: create-only (``PreconditionFailed`` if the key exists).
        ``if_match=etag``: replace only if the current ETag equals ``etag``.
        Raise ``ConfigurationError`` if asked for a condition the store cannot honour.
        """

    @abc.abstractmethod
    def get(self, key: str) -> StoredObject:
        """The whole object; ``NotFound`` if absent."""

    def get_capped(self, key: str, *, max_size: int) -> StoredObject:
        """``get``, refusing (``PayloadTooLarge``) an object larger than ``max_size`` bytes.

        Readers know the largest blob they can open; an object above it is refused instead of
        being downloaded into memory first. This default checks after a plain ``get`` (correct,
        not memory-safe); network drivers override it to check the announced length before
        the body is read and to read at most ``max_size + 1`` bytes.
        """
        stored = self.get(key)
        check_object_size(key, len(stored.data), max_size)
        return stored

    @abc.abstractmethod
    def head(self, key: str) -> ObjectInfo:
        """Metadata only; ``NotFound`` if absent."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``. Deleting an absent key is not an error (S3 semantics)."""

    @abc.abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under ``prefix``, in key order, pagination hidden from the caller."""

    def list_wallets(self, prefix: str) -> Iterator[str]:
        """Wallets with at least one object below ``<prefix>/<wallet>/``, sorted, each once.

        Optional, for administrative views (fleet operations such as ``copy --all-wallets``):
        object stores answer it with one delimited listing (``CommonPrefixes``), not by reading
        every key. Names under the prefix that are not canonical wallets are skipped. Drivers
        whose API cannot enumerate tenants keep this default, which says so.
        """
        raise ConfigurationError(
            f"backend {self.backend_id} cannot list the wallets it holds; name the wallets "
            "explicitly instead of --all-wallets"
        )

    def delete_many(self, keys: Sequence[str]) -> dict[str, PortableCredsError]:
        """Delete ``keys``; returns the keys that could not be deleted, with the error.

        The default deletes one by one. Drivers with a batch API (S3 ``DeleteObjects``, COS
        ``DeleteMultipleObjects``) override it and fall back to this when the service refuses
        the batch call as such (Ceph RGW does for web-identity sessions).
        """
        failed: dict[str, PortableCredsError] = {}
        for key in keys:
            try:
                self.delete(key)
            except PortableCredsError as exc:
                failed[key] = exc
        return failed

    def scoped(self, keys: Sequence[str], *, read_only: bool) -> ObjectStore:
        """A store whose *credentials* allow only ``keys`` (and only reads if ``read_only``).

        Drivers declaring ``scoped_credentials == "cloud"`` override this to ask the identity
        service for narrowed temporary credentials (a session policy), so a holder of those
        credentials cannot exceed the scope even with a bare SDK. Listing is never in scope.
        """
        raise ConfigurationError(
            f"backend {self.backend_id} cannot narrow its credentials in the cloud "
            f"(scoped_credentials={self.capabilities.scoped_credentials!r}); pass "
            "enforcement='client' to accept a limit enforced by this client only"
        )

    def configured_key_source(self) -> KeySource | None:
        """A key source the backend URL configures (a cloud KMS key), else ``None``.

        ``open_store`` uses it when the caller passes no ``keys``, so ``kms_key=...`` in the
        URL is all it takes; a KMS client made here signs with this store's identity.
        """
        return None

    def key_source_for(self, spec: str) -> KeySource | None:
        """The key source a driver-specific spec names (``kms:<key>``), else ``None``.

        For custody moves named on the command line (``rewrap --from-keys kms:...``, ``copy
        --to-keys ...``; see ``portable_creds.key_specs``): the driver builds the cloud's KMS
        key source signing with *this* store's identity. ``None`` means "this driver has no
        such key source" and the caller refuses the spec by name. The spec is the whole
        string (``kms:arn:aws:kms:...``); the key must be named exactly as the URL's
        ``kms_key=`` names it, since the KEK id in each blob is derived from that string.
        """
        return None

    def exported_credentials(self) -> dict[str, str]:
        """The store's current credentials as the cloud's usual environment variables.

        For handing a (scoped) identity to another process, e.g. ``creds export``.
        """
        raise ConfigurationError(
            f"backend {self.backend_id} has no credentials that can be exported"
        )

    def close(self) -> None:  # noqa: B027 - optional hook with a sensible default
        """Release connections. Optional."""

    def __enter__(self) -> ObjectStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@attrs.frozen
class StoreTarget:
    """Everything a driver needs to open a store: the parsed URL and who is asking."""

    url: str
    wallet: str | None
    """Canonical tenant wallet; ``None`` asks for an administrative (unscoped) view."""
    token: TokenSource | None = None
    options: Mapping[str, Any] = attrs.field(factory=dict)
    """Extra keyword options passed to ``open_store`` (endpoint overrides, test hooks...)."""

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def location(self) -> str:
        """Bucket name for cloud URLs, filesystem path for ``local:``."""
        parts = urlsplit(self.url)
        return parts.netloc + parts.path if parts.netloc else parts.path

    @property
    def params(self) -> dict[str, str]:
        """Query parameters, with ``options`` of string value taking precedence."""
        merged = dict(parse_qsl(urlsplit(self.url).query))
        merged.update({k: v for k, v in self.options.items() if isinstance(v, str)})
        return merged

    def require(self, name: str) -> str:
        value = self.params.get(name)
        if not value:
            raise ConfigurationError(
                f"{self.scheme}:// backend needs '{name}': add ?{name}=... to the URL"
            )
        return value


class Driver(abc.ABC):
    """A backend family, registered under the entry-point group ``portable_creds.drivers``."""

    name: ClassVar[str]

    @abc.abstractmethod
    def open_object_store(self, target: StoreTarget) -> ObjectStore:
        """Open a store for ``target.wallet`` (through federation where the driver has it)."""
