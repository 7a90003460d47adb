"""``ObjectStore`` over cos-python-sdk-v5, with GET Object signed here (``signed_get``).

Decisions forced by the SDK (see docs/tencent.md): credentials are passed as SecretId/SecretKey/
Token and swapped with ``conf.set_credential`` (``CredentialInstance`` never sends the token);
the SDK's own retries are off (they sleep 1+2+3 s per 5xx) and replaced by a bounded loop here;
bodies are read whole from the raw stream (``StreamBody.read(n)`` returns one chunk); list
results are strings. The SDK is imported on the first call that needs it, so a process that
only reads (a cold ``portable-creds get``) never pays for it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.client
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from portable_creds.driver import (
    Capabilities,
    CredentialsProvider,
    ObjectInfo,
    ObjectStore,
    StoredObject,
    TemporaryCredentials,
    check_object_size,
)
from portable_creds.errors import (
    AccessDenied,
    ConfigurationError,
    CredentialsError,
    ExpiredCredentials,
    PortableCredsError,
    PreconditionFailed,
    RemoteUnavailable,
    TransientError,
)
from portable_creds.keys import KeySource
from portable_creds.retry import RetryPolicy

from . import sdklog, signed_get
from .errors import cos_error, cos_sdk_errors, tencent_code
from .federation import Scope, VendedProvider
from .settings import CosSettings

if TYPE_CHECKING:
    from qcloud_cos import CosConfig, CosS3Client

T = TypeVar("T")

sdklog.install()


class _RWLock:
    """Requests share; a credential swap is exclusive, so no request signs with half-new keys."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    def acquire_read(self) -> None:
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1

    def release_read(self) -> None:
        with self._cond:
            self._readers -= 1
            if self._readers == 0:
                self._cond.notify_all()

    def acquire_write(self) -> None:
        with self._cond:
            while self._writer or self._readers:
                self._cond.wait()
            self._writer = True

    def release_write(self) -> None:
        with self._cond:
            self._writer = False
            self._cond.notify_all()


class CosObjectStore(ObjectStore):
    def __init__(
        self,
        settings: CosSettings,
        provider: CredentialsProvider,
        *,
        federated: bool,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._provider = provider
        self._federated = federated
        self._sleep = sleep
        self._caps = Capabilities(
            create_only=True,
            if_match=settings.if_match,
            federation=federated,
            server_side_isolation=federated,
            scoped_credentials="cloud" if isinstance(provider, VendedProvider) else "none",
            max_object_size=None,
        )
        self._current: TemporaryCredentials = provider.credentials()
        self._conf: CosConfig | None = None
        self._sdk_client: CosS3Client | None = None
        self._sdk_lock = threading.Lock()
        self._reader = signed_get.SignedGet(settings) if signed_get.usable_for(settings) else None
        self._rw = _RWLock()
        self.attempts = 0
        # Only x-cos-forbid-overwrite is reported to be ignored on versioned buckets.
        self._versioning_known = settings.create_only != "forbid-overwrite"
        self.versioned: bool | None = None
        """Whether the bucket has (or had) versioning; None until looked at or if unknown."""

    @property
    def capabilities(self) -> Capabilities:
        """Looks at the bucket's versioning once, lazily (one GET ?versioning per store): on a
        bucket that ever had versioning, create-only writes are not atomic, so ``create_only``
        is not declared there."""
        if not self._versioning_known:
            self._check_versioning()
        return self._caps

    @capabilities.setter
    def capabilities(self, value: Capabilities) -> None:
        self._caps = value

    def _check_versioning(self) -> None:
        bucket = self.settings.bucket
        try:
            got = self._call(
                "GET ?versioning", "", lambda: self._client.get_bucket_versioning(Bucket=bucket)
            )
        except RemoteUnavailable:
            return  # look again next time
        except PortableCredsError:
            # Not allowed to look (a policy rendered before GetBucketVersioning was granted):
            # unknown; `admin cos verify` reports a versioned bucket from the admin side.
            self._versioning_known = True
            return
        status = str(got.get("Status") or "") if isinstance(got, dict) else ""
        self.versioned = status in ("Enabled", "Suspended")
        if self.versioned:
            self._caps = attrs.evolve(self._caps, create_only=False)
        self._versioning_known = True

    @property
    def _client(self) -> CosS3Client:
        """The SDK client, made on first use. Only called inside ``_call`` (under the read
        lock), so it is made with, and then swapped along with, the current credentials."""
        if self._sdk_client is None:
            with self._sdk_lock:
                if self._sdk_client is None:
                    from qcloud_cos import CosConfig, CosS3Client

                    creds = self._current
                    kwargs: dict[str, Any] = {
                        "Region": self.settings.region,
                        "SecretId": creds.access_key_id,
                        "SecretKey": creds.secret_access_key,
                        "Token": creds.session_token,
                        "Scheme": self.settings.scheme,
                        "Timeout": self.settings.timeout,
                    }
                    if self.settings.ip:
                        kwargs["IP"] = self.settings.ip
                        kwargs["Port"] = self.settings.port
                    self._conf = CosConfig(**kwargs)
                    self._sdk_client = CosS3Client(self._conf, retry=0)
        return self._sdk_client

    @property
    def credentials_provider(self) -> CredentialsProvider:
        return self._provider

    @property
    def backend_id(self) -> str:
        return self.settings.backend_id

    # credentials --------------------------------------------------------------------------
    def _refresh(self) -> None:
        creds = self._provider.credentials()
        if creds is self._current:
            return
        self._rw.acquire_write()
        try:
            if self._conf is not None:
                self._conf.set_credential(
                    creds.access_key_id, creds.secret_access_key, creds.session_token
                )
            self._current = creds
        finally:
            self._rw.release_write()

    # the retry loop -----------------------------------------------------------------------
    def _call(
        self, operation: str, key: str, fn: Callable[[], T], *, conditional: bool = False
    ) -> T:
        budget = RetryPolicy(self.settings.retries, max_elapsed=self.settings.max_elapsed).start()
        refreshed = False
        while True:
            self._refresh()
            self._rw.acquire_read()
            self.attempts += 1
            err: PortableCredsError
            try:
                return fn()
            except PortableCredsError as exc:  # typed where it was raised (the signed GET)
                err = exc
            except cos_sdk_errors() as exc:
                err = cos_error(exc, operation, key, conditional=conditional)
            finally:
                self._rw.release_read()
            if (
                isinstance(err, ExpiredCredentials | CredentialsError)
                and self._federated
                and not refreshed
                and tencent_code(err) in ("ExpiredToken", "InvalidToken")
            ):
                refreshed = True
                self._provider.invalidate()
                continue
            if not isinstance(err, TransientError):
                raise err
            delay = budget.next_delay()
            if delay is None:
                raise RemoteUnavailable(
                    f"{err.message}; gave up after {budget.attempts} attempts in "
                    f"{budget.elapsed():.1f}s",
                    request_id=err.request_id,
                ) from err
            self._sleep(delay)

    # ObjectStore --------------------------------------------------------------------------
    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> str:
        digest = hashlib.md5(data).digest()
        # Content-MD5 (computed once, not again by the SDK): COS refuses a corrupted upload
        # instead of storing it; the envelope's AEAD would only notice at the next read.
        kwargs: dict[str, Any] = {"ContentMD5": base64.b64encode(digest).decode()}
        if if_match is not None:
            if not self.settings.if_match:
                raise ConfigurationError(
                    "this cos:// store was not opened with if_match=true: COS If-Match on PUT "
                    "is not documented; enable it only for endpoints known to honour it"
                )
            kwargs["IfMatch"] = if_match
        if if_none_match:
            if not self.capabilities.create_only:
                raise ConfigurationError(
                    f"bucket {self.settings.bucket} has (or had) versioning: COS ignores "
                    "x-cos-forbid-overwrite there, so a create-only put could silently "
                    "overwrite; use a bucket that never had versioning"
                )
            if self.settings.create_only == "if-none-match":
                kwargs["IfNoneMatch"] = "*"
            else:
                kwargs["Metadata"] = {"x-cos-forbid-overwrite": "true"}
        expected = '"' + digest.hex() + '"'
        bucket = self.settings.bucket

        sent = 0

        def once() -> str:
            nonlocal sent
            sent += 1
            resp = self._client.put_object(Bucket=bucket, Body=data, Key=key, **kwargs)
            return str(resp.get("ETag") or expected)

        try:
            return self._call("PUT", key, once, conditional=if_none_match or if_match is not None)
        except PreconditionFailed:
            if if_none_match and sent > 1:
                # An earlier attempt may have landed before the connection dropped.
                info = self.head(key)
                if info.etag == expected:
                    return info.etag
            raise

    def get(self, key: str) -> StoredObject:
        return self._get(key, None)

    def get_capped(self, key: str, *, max_size: int) -> StoredObject:
        """Refuse an object above ``max_size`` by its Content-Length, before reading the body."""
        return self._get(key, max_size)

    def _get(self, key: str, max_size: int | None) -> StoredObject:
        reader = self._reader
        if reader is not None:
            return self._call("GET", key, lambda: reader.get(key, self._current, max_size=max_size))
        bucket = self.settings.bucket

        def once() -> StoredObject:
            import urllib3.exceptions
            from qcloud_cos.cos_exception import CosClientError

            resp = self._client.get_object(Bucket=bucket, Key=key)
            raw = resp["Body"].get_raw_stream()
            length = resp.get("Content-Length")
            if max_size is not None and length is not None and int(length) > max_size:
                raw.close()  # refused on the announced length: the body is never read
                check_object_size(key, int(length), max_size)
            try:
                data = raw.read() if max_size is None else raw.read(max_size + 1)
            except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
                # The SDK returned after the headers; the body is read from the raw urllib3
                # stream, outside its error handling. A connection closed mid-body is a
                # network fault like any other: retry the whole GET (bounded, in ``_call``).
                raw.close()
                raise CosClientError(f"body cut short ({type(exc).__name__})") from None
            if max_size is not None and len(data) > max_size:
                raw.close()  # more than announced (or unannounced): stop at the cap
                check_object_size(key, len(data), max_size)
            if length is not None and int(length) != len(data):
                raise CosClientError("truncated body")
            return StoredObject(data=data, etag=str(resp.get("ETag") or ""))

        return self._call("GET", key, once)

    def head(self, key: str) -> ObjectInfo:
        bucket = self.settings.bucket

        def once() -> ObjectInfo:
            resp = self._client.head_object(Bucket=bucket, Key=key)
            return ObjectInfo(
                key=key, size=int(resp.get("Content-Length") or 0), etag=str(resp.get("ETag") or "")
            )

        return self._call("HEAD", key, once)

    def delete(self, key: str) -> None:
        bucket = self.settings.bucket
        self._call("DELETE", key, lambda: self._client.delete_object(Bucket=bucket, Key=key))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        bucket = self.settings.bucket
        marker = ""
        while True:
            page: dict[str, Any] = self._call(
                "LIST",
                prefix,
                lambda m=marker: self._client.list_objects(  # type: ignore[misc]
                    Bucket=bucket, Prefix=prefix, Marker=m, MaxKeys=self.settings.page_size
                ),
            )
            contents = page.get("Contents") or []
            for item in contents:
                yield ObjectInfo(
                    key=str(item["Key"]),
                    size=int(item.get("Size") or 0),
                    etag=str(item.get("ETag") or ""),
                )
            if str(page.get("IsTruncated", "false")).lower() != "true":
                return
            next_marker = page.get("NextMarker") or (contents[-1]["Key"] if contents else None)
            if not next_marker or next_marker == marker:
                return
            marker = str(next_marker)

    def list_wallets(self, prefix: str) -> Iterator[str]:
        """One delimited GET Bucket walk of ``<prefix>/``: its ``CommonPrefixes`` are wallets."""
        from portable_creds.fleet import wallet_of_common_prefix

        bucket = self.settings.bucket
        base = prefix.rstrip("/") + "/"
        marker = ""
        while True:
            page: dict[str, Any] = self._call(
                "LIST",
                base,
                lambda m=marker: self._client.list_objects(  # type: ignore[misc]
                    Bucket=bucket,
                    Prefix=base,
                    Delimiter="/",
                    Marker=m,
                    MaxKeys=self.settings.page_size,
                ),
            )
            commons = page.get("CommonPrefixes") or []
            if isinstance(commons, dict):  # one entry, if the SDK did not listify it
                commons = [commons]
            for common in commons:
                wallet = wallet_of_common_prefix(str(common.get("Prefix") or ""), prefix)
                if wallet is not None:
                    yield wallet
            if str(page.get("IsTruncated", "false")).lower() != "true":
                return
            next_marker = str(page.get("NextMarker") or "")
            if not next_marker or next_marker == marker:
                return
            marker = next_marker

    def delete_many(self, keys: Sequence[str]) -> dict[str, PortableCredsError]:
        """``DeleteMultipleObjects`` (``POST ?delete``) in batches of 1000, quiet mode.

        A batch refused as a whole falls back to single deletes; per-key refusals come back
        in the response's ``Error`` entries and are reported, not raised.
        """
        bucket = self.settings.bucket
        failed: dict[str, PortableCredsError] = {}
        wanted = list(dict.fromkeys(keys))
        for start in range(0, len(wanted), 1000):
            batch = wanted[start : start + 1000]
            body = {"Quiet": "true", "Object": [{"Key": k} for k in batch]}
            try:
                resp: dict[str, Any] = self._call(
                    "DELETE",
                    batch[0],
                    lambda b=body: self._client.delete_objects(  # type: ignore[misc]
                        Bucket=bucket, Delete=b
                    ),
                )
            except (AccessDenied, ConfigurationError):
                failed.update(super().delete_many(batch))
                continue
            errors = resp.get("Error") or []
            if isinstance(errors, dict):
                errors = [errors]
            for error in errors:
                key = str(error.get("Key") or "")
                message = f"DELETE {key}: {error.get('Code')} {error.get('Message') or ''}"
                failed[key] = (
                    AccessDenied(message)
                    if error.get("Code") == "AccessDenied"
                    else TransientError(message)
                )
        return failed

    def scoped(self, keys: Sequence[str], *, read_only: bool) -> ObjectStore:
        """Credentials narrowed by the vendor's session policy to exactly ``keys``.

        Only in token-vendor mode: ``AssumeRoleWithWebIdentity`` takes no ``Policy``, so a
        role-per-tenant session cannot be narrowed in the cloud.
        """
        if not isinstance(self._provider, VendedProvider):
            return super().scoped(keys, read_only=read_only)
        provider = self._provider.narrowed(Scope(tuple(keys), read_only))
        return CosObjectStore(self.settings, provider, federated=True, sleep=self._sleep)

    def configured_key_source(self) -> KeySource | None:
        """``kms_key=...``: Tencent KMS signing as this store's identity (the tenant's session).

        The KMS module (and the SDK it wraps) is imported only here, so a store without
        ``kms_key=`` never loads it."""
        if self.settings.kms is None:
            return None
        if not self._federated:  # administrative keys: never seal a wallet with another's CMK
            return self.key_source_for(f"kms:{self.settings.kms.key_id}")
        from .kms import key_source_for

        return key_source_for(self.settings, self._provider)

    def key_source_for(self, spec: str) -> KeySource | None:
        """``kms:<KeyId>``: that Tencent KMS key, signing as this store's identity (the tenant's
        session, or the administrator's keys in the administrative view, where a tenant's own
        key refuses to seal another wallet); ``kms:per-wallet`` (administrative view): each
        wallet's own key by the provisioner's alias. See ``kms_custody``; imported only here."""
        if not spec.startswith("kms:"):
            return None
        from .kms_custody import spec_key_source

        return spec_key_source(
            self.settings, self._provider, spec[len("kms:") :], admin=not self._federated
        )

    def exported_credentials(self) -> dict[str, str]:
        """The current (refreshed) session as environment variables for another process.

        ``TENCENTCLOUD_SECRET_ID``/``_SECRET_KEY`` are the Tencent SDKs' own names; the token,
        expiry, region, bucket and (only when the URL overrides it) the endpoint have no SDK
        convention, so a child maps them to ``CosConfig(Token=, Region=, Scheme=, IP=, Port=)``
        itself. Static API keys are never exported: they do not expire and cannot be scoped.
        """
        if not self._federated:
            raise ConfigurationError(
                f"backend {self.backend_id} uses static API keys; they are never exported (they "
                "do not expire and cannot be scoped): open the store with a wallet and "
                "mode=token-vendor"
            )
        creds = self._provider.credentials()
        out = {
            "TENCENTCLOUD_SECRET_ID": creds.access_key_id,
            "TENCENTCLOUD_SECRET_KEY": creds.secret_access_key,
            "COS_REGION": self.settings.region,
            "COS_BUCKET": self.settings.bucket,
        }
        if creds.session_token:
            out["TENCENTCLOUD_SESSION_TOKEN"] = creds.session_token
        if creds.expiration is not None:
            expiry = creds.expiration.astimezone(dt.UTC)
            out["TENCENTCLOUD_EXPIRATION"] = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
        if self.settings.ip:
            port = f":{self.settings.port}" if self.settings.port else ""
            out["COS_ENDPOINT_URL"] = f"{self.settings.scheme}://{self.settings.ip}{port}"
        return out

    def close(self) -> None:
        """Closes this thread's GET connection (other threads' close when their thread ends);
        the SDK shares one pooled session per process, nothing of ours to release there."""
        if self._reader is not None:
            self._reader.close()
