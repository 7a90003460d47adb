"""``ObjectStore`` over one S3 bucket through one reused botocore client.

Every call goes through ``_call``: it maps botocore failures into ``portable_creds.errors`` and,
for federated stores, refreshes credentials once and retries once when the service says they
expired (AWS: ``ExpiredToken``; Ceph RGW: a 403 for credentials our clock says are past expiry).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from portable_creds.driver import Capabilities, ObjectInfo, ObjectStore, StoredObject
from portable_creds.errors import AccessDenied, NotFound
from portable_creds.local import tenant_may_access, tenant_may_list

from .errormap import (
    SDK_ERRORS,
    http_status,
    is_expired_credentials,
    map_botocore_error,
    map_client_error,
)
from .federation import WebIdentityCredentialsProvider
from .settings import S3Settings

T = TypeVar("T")
CONTENT_TYPE = "application/octet-stream"


def _etag(raw: str) -> str:
    """ETags travel unquoted inside portable-creds (RGW's If-Match wants them unquoted)."""
    return raw.strip('"')


class S3ObjectStore(ObjectStore):
    def __init__(
        self,
        settings: S3Settings,
        client: Any,
        *,
        provider: WebIdentityCredentialsProvider | None = None,
        wallet: str | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.provider = provider
        self.wallet = wallet
        # Static keys opened for a tenant (allow_static_tenant): nothing on the service side
        # confines them, so the driver refuses keys outside the tenant's area itself.
        self._client_guard = wallet if provider is None else None
        self.capabilities = Capabilities(
            create_only=True,
            if_match=True,
            federation=provider is not None,
            server_side_isolation=provider is not None,
        )

    @property
    def backend_id(self) -> str:
        return self.settings.backend_id

    def __repr__(self) -> str:
        mode = "federated" if self.provider else "static"
        return f"S3ObjectStore({self.settings.backend_id!r}, {mode}, wallet={self.wallet!r})"

    # ------------------------------------------------------------------ plumbing
    def _call(self, what: str, fn: Callable[[], T]) -> T:
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
        if is_expired_credentials(exc):
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

    def _missing_or_denied(self, key: str, denied: AccessDenied) -> Exception:
        """S3 answers a GET/HEAD of a missing key with 403 when the caller lacks an unconditioned
        ``s3:ListBucket`` (tenants only get it for their own prefix). One listing of exactly
        that key tells "absent" (listing allowed, key not there) from "forbidden"."""
        try:
            for info in self.list(key):
                if info.key == key:
                    return denied
                break
        except AccessDenied:
            return denied
        return NotFound(f"{key}: no such object")

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
        self._check_key(key)

        def fetch() -> tuple[bytes, str]:
            resp = self.client.get_object(Bucket=self.settings.bucket, Key=key)
            with resp["Body"] as body:
                return body.read(), resp["ETag"]

        try:
            data, etag = self._call(f"get {key}", fetch)
        except AccessDenied as denied:
            raise self._missing_or_denied(key, denied) from None
        return StoredObject(data=data, etag=_etag(etag))

    def head(self, key: str) -> ObjectInfo:
        self._check_key(key)
        try:
            resp = self._call(
                f"head {key}",
                lambda: self.client.head_object(Bucket=self.settings.bucket, Key=key),
            )
        except AccessDenied as denied:
            raise self._missing_or_denied(key, denied) from None
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

    def close(self) -> None:
        self.client.close()
