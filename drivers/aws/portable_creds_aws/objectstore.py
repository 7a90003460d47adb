"""``ObjectStore`` over one S3 bucket through one reused botocore client.

Every call goes through ``_call``: it maps botocore failures into ``portable_creds.errors`` and,
for federated stores, refreshes credentials once and retries once when the service says they
expired (AWS: ``ExpiredToken``; Ceph RGW: a 403 for credentials our clock says are past expiry).

A federated store can be *scoped* (``scoped``): a second store whose own web-identity sessions
carry a session policy naming exact objects and actions, so the service itself refuses
everything else, whoever holds the credentials (``exported_credentials`` hands them out).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import attrs
from botocore.exceptions import ClientError, IncompleteReadError, ResponseStreamingError
from urllib3.exceptions import ProtocolError

from portable_creds.driver import (
    Capabilities,
    ObjectInfo,
    ObjectStore,
    StoredObject,
    check_object_size,
)
from portable_creds.errors import (
    AccessDenied,
    ConfigurationError,
    NotFound,
    PortableCredsError,
    TransientError,
)
from portable_creds.keys import KeySource
from portable_creds.local import tenant_may_access, tenant_may_list

from .clients import s3_client
from .errormap import (
    SDK_ERRORS,
    http_status,
    is_expired_credentials,
    is_rejected_credentials,
    map_botocore_error,
    map_client_error,
)
from .federation import WebIdentityCredentialsProvider
from .scoping import session_policy
from .settings import S3Settings

T = TypeVar("T")
CONTENT_TYPE = "application/octet-stream"
#: GET attempts when the response body is cut short (botocore retries requests, never bodies).
BODY_ATTEMPTS = 3
#: Keys per ``DeleteObjects`` request (the S3 API's maximum).
DELETE_BATCH = 1000


class _BodyCutShort(Exception):
    """The connection died while the body was read; the whole GET is worth repeating."""


def _etag(raw: str) -> str:
    """ETags travel unquoted inside portable-creds (RGW's If-Match wants them unquoted)."""
    return raw.strip('"')


@attrs.frozen
class KeyScope:
    """What a scoped store's session policy allows: these keys, and writes unless read-only."""

    keys: frozenset[str]
    read_only: bool

    def describe(self) -> str:
        mode = "read-only" if self.read_only else "read-write"
        return f"{mode} scope of {len(self.keys)} object(s)"


def _utc_text(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class S3ObjectStore(ObjectStore):
    def __init__(
        self,
        settings: S3Settings,
        client: Any,
        *,
        provider: WebIdentityCredentialsProvider | None = None,
        wallet: str | None = None,
        scope: KeyScope | None = None,
        parent: S3ObjectStore | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.provider = provider
        self.wallet = wallet
        self.scope = scope
        """Set on scoped stores: the limits their session policy carries."""
        self._parent = parent
        """The unscoped store a scoped one was made from (only to tell absent from forbidden)."""
        # Static keys opened for a tenant (allow_static_tenant): nothing on the service side
        # confines them, so the driver refuses keys outside the tenant's area itself.
        self._client_guard = wallet if provider is None else None
        self.capabilities = Capabilities(
            create_only=True,
            if_match=True,
            federation=provider is not None,
            server_side_isolation=provider is not None,
            # Only web-identity sessions can carry a session policy; static keys cannot be
            # narrowed (the caller may still opt into a client-side scope in the core).
            scoped_credentials="cloud" if provider is not None else "none",
        )

    @property
    def backend_id(self) -> str:
        return self.settings.backend_id

    def __repr__(self) -> str:
        mode = "federated" if self.provider else "static"
        scope = f", {self.scope.describe()}" if self.scope is not None else ""
        return f"S3ObjectStore({self.settings.backend_id!r}, {mode}, wallet={self.wallet!r}{scope})"

    # ------------------------------------------------------------------ plumbing
    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return self._call_mapped(what, fn)
        except AccessDenied as exc:
            if self.scope is None:
                raise
            raise AccessDenied(
                f"{exc.message} (these are scoped credentials: {self.scope.describe()}; "
                "open an unscoped store or widen the scope)",
                request_id=exc.request_id,
            ) from None

    def _call_mapped(self, what: str, fn: Callable[[], T]) -> T:
        used = self.provider.current_access_key() if self.provider is not None else None
        try:
            return fn()
        except ClientError as exc:
            if self.provider is None or not self._expired(exc, used):
                raise map_client_error(exc, what=what) from None
        except SDK_ERRORS as exc:
            raise map_botocore_error(exc, what=what) from None
        # Expired: refresh once (under botocore's lock) and retry once.
        self.provider.invalidate_if_current(used)
        try:
            return fn()
        except ClientError as exc:
            raise map_client_error(exc, what=what) from None
        except SDK_ERRORS as exc:
            raise map_botocore_error(exc, what=what) from None

    def _expired(self, exc: ClientError, used: str | None) -> bool:
        # Rejected federated credentials (a session revoked server-side, an STS answer
        # garbled in transit on plain HTTP) are treated like expired ones: one re-exchange.
        if is_expired_credentials(exc) or is_rejected_credentials(exc):
            return True
        assert self.provider is not None
        return http_status(exc) == 403 and self.provider.looks_expired(used)

    def _check_key(self, key: str) -> None:
        if self._client_guard is not None and not tenant_may_access(
            key.split("/"), self._client_guard
        ):
            raise AccessDenied(
                f"access denied to {key!r}: a static-key store opened for wallet "
                f"{self._client_guard} may only use keys below '<prefix>/{self._client_guard}/'"
            )

    def _check_prefix(self, prefix: str) -> None:
        if self._client_guard is not None and not tenant_may_list(
            prefix.split("/")[:-1], self._client_guard
        ):
            raise AccessDenied(
                f"access denied to list {prefix!r}: a static-key store opened for wallet "
                f"{self._client_guard} may only list below '<prefix>/{self._client_guard}/'"
            )

    def _listed(self, key: str) -> bool | None:
        """Whether ``key`` exists, by one listing of exactly that key; ``None``: cannot tell.

        S3 answers a GET/HEAD of a missing key with 403 when the caller lacks an unconditioned
        ``s3:ListBucket`` (tenants only get it for their own prefix; scoped credentials never
        get it). A scoped store asks its parent, and only about keys inside its scope, so the
        probe reveals nothing a read of that key would not.
        """
        if self.scope is not None:
            if key not in self.scope.keys or self._parent is None:
                return None
            return self._parent._listed(key)
        try:
            for info in self.list(key):
                return info.key == key  # the key itself sorts first among keys it prefixes
        except AccessDenied:
            return None
        return False

    def _read(self, what: str, key: str, fn: Callable[[], T]) -> T:
        """A GET/HEAD whose 403 is resolved into NotFound (absent) or AccessDenied.

        If the probe finds the key, the read is retried once: a concurrent writer of the same
        tenant may have deleted and re-created it between the read and the probe.
        """
        for attempt in range(2):
            try:
                return self._call(what, fn)
            except AccessDenied as denied:
                listed = self._listed(key)
                if listed is False:
                    raise NotFound(f"{key}: no such object") from None
                if listed is None or attempt == 1:
                    raise denied from None
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ ObjectStore
    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> str:
        self._check_key(key)
        kwargs: dict[str, Any] = {
            "Bucket": self.settings.bucket,
            "Key": key,
            "Body": data,
            "ContentType": CONTENT_TYPE,
        }
        if if_none_match:
            kwargs["IfNoneMatch"] = "*"
        if if_match is not None:
            bare = _etag(if_match)
            kwargs["IfMatch"] = f'"{bare}"' if self.settings.quote_if_match else bare
        resp = self._call(f"put {key}", lambda: self.client.put_object(**kwargs))
        return _etag(resp["ETag"])

    def get(self, key: str) -> StoredObject:
        return self._get(key, None)

    def get_capped(self, key: str, *, max_size: int) -> StoredObject:
        """Refuse an object above ``max_size`` by its Content-Length, before reading the body."""
        return self._get(key, max_size)

    def _get(self, key: str, max_size: int | None) -> StoredObject:
        self._check_key(key)

        def fetch() -> tuple[bytes, str]:
            resp = self.client.get_object(Bucket=self.settings.bucket, Key=key)
            # Not ``with body``: StreamingBody.__enter__ returns the raw urllib3 stream, whose
            # read() would bypass botocore's length check and error wrapping.
            body = resp["Body"]
            try:
                if max_size is None:
                    return body.read(), resp["ETag"]
                announced = resp.get("ContentLength")
                if announced is not None:
                    check_object_size(key, int(announced), max_size)
                # Capped read: a body longer than announced (or unannounced) costs at most the
                # cap. botocore only checks the length on a read to EOF, so compare it here.
                data = body.read(max_size + 1)
                check_object_size(key, len(data), max_size)
                if announced is not None and len(data) != int(announced):
                    raise _BodyCutShort
                return data, resp["ETag"]
            except (ResponseStreamingError, IncompleteReadError, ProtocolError):
                raise _BodyCutShort from None
            finally:
                body.close()

        for _ in range(BODY_ATTEMPTS):
            try:
                data, etag = self._read(f"get {key}", key, fetch)
            except _BodyCutShort:
                continue
            return StoredObject(data=data, etag=_etag(etag))
        raise TransientError(
            f"get {key}: the response body was cut short {BODY_ATTEMPTS} times (the connection "
            "dropped mid-transfer); check the network path to the endpoint and try again"
        )

    def head(self, key: str) -> ObjectInfo:
        self._check_key(key)
        resp = self._read(
            f"head {key}",
            key,
            lambda: self.client.head_object(Bucket=self.settings.bucket, Key=key),
        )
        return ObjectInfo(key=key, size=int(resp["ContentLength"]), etag=_etag(resp["ETag"]))

    def delete(self, key: str) -> None:
        self._check_key(key)
        self._call(
            f"delete {key}",
            lambda: self.client.delete_object(Bucket=self.settings.bucket, Key=key),
        )

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        self._check_prefix(prefix)
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.settings.bucket, "Prefix": prefix}
            if token is not None:
                kwargs["ContinuationToken"] = token
            page: dict[str, Any] = self._call(
                f"list {prefix}", functools.partial(self.client.list_objects_v2, **kwargs)
            )
            for item in page.get("Contents", ()):
                yield ObjectInfo(key=item["Key"], size=int(item["Size"]), etag=_etag(item["ETag"]))
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")
            if not token:
                return

    def list_wallets(self, prefix: str) -> Iterator[str]:
        """One delimited ListObjectsV2 walk of ``<prefix>/``: its ``CommonPrefixes`` are wallets."""
        from portable_creds.fleet import wallet_of_common_prefix

        base = prefix.rstrip("/") + "/"
        self._check_prefix(base)
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "Bucket": self.settings.bucket,
                "Prefix": base,
                "Delimiter": "/",
            }
            if token is not None:
                kwargs["ContinuationToken"] = token
            page: dict[str, Any] = self._call(
                f"list wallets {base}", functools.partial(self.client.list_objects_v2, **kwargs)
            )
            for common in page.get("CommonPrefixes", ()):
                wallet = wallet_of_common_prefix(common["Prefix"], prefix)
                if wallet is not None:
                    yield wallet
            token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
            if not token:
                return

    def delete_many(self, keys: Sequence[str]) -> dict[str, PortableCredsError]:
        """``DeleteObjects`` in batches of 1000 (the API's limit), quiet mode.

        Ceph RGW answers the batch call itself with 403 for web-identity sessions whose policy
        allows ``s3:DeleteObject`` only on object ARNs (docs/ceph.md); a batch refused as a
        whole falls back to one ``DeleteObject`` per key, so the caller's permissions decide
        per key as they would for single deletes.
        """
        failed: dict[str, PortableCredsError] = {}
        wanted = list(dict.fromkeys(keys))
        for key in wanted:
            self._check_key(key)
        for start in range(0, len(wanted), DELETE_BATCH):
            batch = wanted[start : start + DELETE_BATCH]
            request = {"Objects": [{"Key": k} for k in batch], "Quiet": True}
            try:
                resp: dict[str, Any] = self._call(
                    f"delete {len(batch)} objects",
                    lambda r=request: self.client.delete_objects(  # type: ignore[misc]
                        Bucket=self.settings.bucket, Delete=r
                    ),
                )
            except (AccessDenied, ConfigurationError):
                # Refused as a whole (403, or NotImplemented on a service without the API).
                failed.update(super().delete_many(batch))
                continue
            for error in resp.get("Errors", ()):
                code = str(error.get("Code") or "")
                message = f"delete {error.get('Key')}: {code} {error.get('Message') or ''}"
                exc: PortableCredsError = (
                    AccessDenied(message) if code == "AccessDenied" else TransientError(message)
                )
                failed[str(error.get("Key"))] = exc
        return failed

    def copy(self, source_key: str, dest_key: str) -> str:
        """Server-side copy inside the bucket (used by the isolation tests and migrations)."""
        self._check_key(source_key)
        self._check_key(dest_key)
        resp = self._call(
            f"copy {source_key} -> {dest_key}",
            lambda: self.client.copy_object(
                Bucket=self.settings.bucket,
                Key=dest_key,
                CopySource={"Bucket": self.settings.bucket, "Key": source_key},
            ),
        )
        return _etag(resp["CopyObjectResult"]["ETag"])

    # ------------------------------------------------------------------ scoping
    def scoped(self, keys: Sequence[str], *, read_only: bool) -> S3ObjectStore:
        """A store whose own STS sessions carry a session policy allowing exactly ``keys``.

        Actions: ``s3:GetObject``, plus ``s3:PutObject``/``s3:DeleteObject`` unless
        ``read_only``; never ``s3:ListBucket``. The service grants the intersection with the
        data role's policy, so the scope can only narrow the tenant's access. Scoping a scoped
        store narrows further (a subset of its keys, never back to read-write).
        """
        if self.provider is None:
            raise ConfigurationError(
                f"backend {self.backend_id} uses static keys, which cannot be narrowed by the "
                "service (scoped_credentials='none'); open it with role_arn=... (web-identity "
                "federation), or pass enforcement='client' to accept a limit enforced by this "
                "client only"
            )
        wanted = list(dict.fromkeys(keys))
        if self.scope is not None:
            outside = sorted(set(wanted) - self.scope.keys)
            if outside:
                raise AccessDenied(
                    f"cannot widen a scoped store to {', '.join(outside)}: it is limited to a "
                    f"{self.scope.describe()}"
                )
            if self.scope.read_only and not read_only:
                raise AccessDenied("cannot make a read-only scoped store writable")
        policy = session_policy(self.settings.bucket, wanted, read_only=read_only)
        provider = self.provider.narrowed(policy)
        return S3ObjectStore(
            self.settings,
            s3_client(self.settings, provider.botocore_credentials),
            provider=provider,
            wallet=self.wallet,
            scope=KeyScope(frozenset(wanted), read_only),
            parent=self if self.scope is None else self._parent,
        )

    def configured_key_source(self) -> KeySource | None:
        """``kms_key=...``: AWS KMS signing as this store's identity (the tenant's session)."""
        if self.settings.kms is None:
            return None  # before importing the KMS module: a cold `get` need not pay for it
        from .clients import static_credentials
        from .kms import key_source_for

        if self.provider is not None:
            return key_source_for(self.settings, self.provider.botocore_credentials)
        return key_source_for(self.settings, static_credentials(self.settings))

    def key_source_for(self, spec: str) -> KeySource | None:
        """``kms:<key ARN>``: AWS KMS with that key, signing as this store's identity.

        The KMS endpoint and cache bounds are the URL's ``kms_*`` parameters when it has them,
        else the defaults (the S3 endpoint; read caching on)."""
        if not spec.startswith("kms:"):
            return None
        from .clients import static_credentials
        from .kms import AwsKmsKeySource, kms_client
        from .kms_settings import parse_kms_settings

        configured = self.settings.kms
        kms = parse_kms_settings({"kms_key": spec[len("kms:") :]}, None)
        assert kms is not None
        creds = (
            self.provider.botocore_credentials
            if self.provider is not None
            else static_credentials(self.settings)
        )
        return AwsKmsKeySource(
            kms.key_id,
            kms_client(self.settings, creds),
            read_cache=configured.read_cache if configured is not None else kms.read_cache,
            write_cache=configured.write_cache if configured is not None else None,
        )

    def exported_credentials(self) -> dict[str, str]:
        """The current (refreshed) session as the AWS SDKs' standard environment variables.

        Static keys are never exported: they do not expire and cannot carry a scope.
        """
        if self.provider is None:
            raise ConfigurationError(
                f"backend {self.backend_id} uses static keys; they are never exported (they "
                "do not expire and cannot be scoped): open the store with role_arn=... "
                "(web-identity federation)"
            )
        creds = self.provider.credentials()
        env = {
            "AWS_ACCESS_KEY_ID": creds.access_key_id,
            "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
        }
        if creds.session_token:
            env["AWS_SESSION_TOKEN"] = creds.session_token
        if creds.expiration is not None:
            env["AWS_CREDENTIAL_EXPIRATION"] = _utc_text(creds.expiration)
        if self.settings.endpoint is not None:
            env["AWS_ENDPOINT_URL_S3"] = self.settings.endpoint
        if self.settings.region:
            env["AWS_REGION"] = self.settings.region
        return env

    def close(self) -> None:
        self.client.close()
