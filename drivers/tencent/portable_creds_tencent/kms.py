"""``TencentKmsKeySource``: data keys made and unwrapped by Tencent KMS, as the tenant itself.

The KMS client signs with the same temporary credentials as the tenant's COS client (the
role-per-tenant web-identity session or the vended session), so CAM authorizes every KMS call
as the tenant. CAM documents no condition key on the KMS encryption context, so isolation is
per-tenant keys: each wallet has its own CMK and only that wallet's role / session policy
allows ``kms:GenerateDataKey``/``kms:Decrypt`` on it (docs/tencent.md, "KMS key custody").
Every call carries the encryption context ``pc_wallet``/``pc_service``/``pc_storage_key``
(docs/format.md §3.2) as canonical JSON, so KMS refuses a blob moved to another path.

Error codes come from the SDK's ``kms/v20190118/errorcodes.py`` (and the common codes):
a ciphertext or context KMS refuses (``InvalidParameterValue.InvalidCiphertext``,
``FailedOperation.DecryptError``/``EncryptionError`` on Decrypt) and a CAM refusal on Decrypt
-> IntegrityError (a reader learns only "this blob does not open for you", docs/format.md §9);
a CAM refusal on GenerateDataKey -> AccessDenied; key state (not found, disabled, pending
deletion, archived, bad KeyId/usage) -> KeySourceError; expired session -> ExpiredCredentials;
InternalError, rate limits, unavailable service, network -> RemoteUnavailable (after bounded
retries). The SDK is imported only when a store configures ``kms_key=``.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Mapping
from typing import Any

from portable_creds.custodian import DEFAULT_READ_CACHE, CachingCustodianKeySource
from portable_creds.datakey_cache import CacheLimits
from portable_creds.driver import CredentialsProvider
from portable_creds.errors import (
    AccessDenied,
    ConfigurationError,
    CredentialsError,
    ExpiredCredentials,
    IntegrityError,
    KeySourceError,
    PortableCredsError,
    RemoteUnavailable,
)
from portable_creds.retry import RetryPolicy
from portable_creds.urls import is_loopback

from .settings import CosSettings

MAX_CONTEXT_CHARS = 1024
"""``EncryptionContext`` of Encrypt/Decrypt: "最大支持1024字符" (kms models.py)."""
DATA_KEY_LEN = 32

_INVALID = frozenset(
    {
        "InvalidParameterValue.InvalidCiphertext",
        "FailedOperation.DecryptError",
        "FailedOperation.EncryptionError",
    }
)
_DENIED = frozenset({"UnauthorizedOperation", "AuthFailure.UnauthorizedOperation"})
_KEY_STATE_PREFIXES = ("ResourceUnavailable.Cmk", "ResourceUnavailable.Key")
_KEY_STATE = frozenset(
    {
        "ResourceUnavailable.NotPurchased",
        "InvalidParameterValue.InvalidKeyId",
        "InvalidParameterValue.InvalidKeyUsage",
        "ResourceNotFound",
        "UnsupportedOperation.UnsupportedKeyUsageInCurrentRegion",
    }
)
_TRANSIENT = frozenset(
    {
        "InternalError",
        "RequestLimitExceeded",
        "ResourceUnavailable",
        "UnsupportedOperation.ServiceTemporaryUnavailable",
        "ClientNetworkError",
        "ServerNetworkError",
    }
)


def encryption_context_json(encryption_context: Mapping[str, str]) -> str:
    """The context as KMS receives it: canonical JSON (sorted keys, compact), so every writer
    and reader sends the same string; refused here if over KMS's documented 1024 characters."""
    text = json.dumps(dict(encryption_context), sort_keys=True, separators=(",", ":"))
    if len(text) > MAX_CONTEXT_CHARS:
        raise ConfigurationError(
            f"the KMS encryption context would be {len(text)} characters, over Tencent KMS's "
            f"{MAX_CONTEXT_CHARS}; use a shorter service name"
        )
    return text


def map_kms_error(
    code: str, request_id: str | None, *, what: str, unwrap: bool = False
) -> PortableCredsError:
    rid = request_id or None
    if code in _INVALID or (unwrap and code in _DENIED):
        return IntegrityError(request_id=rid)
    if code in _DENIED:
        return AccessDenied(
            f"{what}: Tencent KMS denied this identity (a tenant may use only its own "
            "wallet's key)",
            request_id=rid,
        )
    if code == "AuthFailure.TokenFailure" or code == "ResourceUnavailable.TokenExpired":
        return ExpiredCredentials(f"{what}: temporary credentials expired", request_id=rid)
    if code in _TRANSIENT or code.startswith(("InternalError", "RequestLimitExceeded")):
        return RemoteUnavailable(f"{what}: Tencent KMS failed ({code})", request_id=rid)
    if code in _KEY_STATE or code.startswith(_KEY_STATE_PREFIXES):
        return KeySourceError(
            f"{what}: the KMS key cannot be used ({code}); check that kms_key names this "
            "wallet's key and that it is enabled (an offboarded tenant's key is disabled)",
            request_id=rid,
        )
    if code.startswith("AuthFailure"):
        return CredentialsError(
            f"{what}: the credentials or signature were rejected ({code})", request_id=rid
        )
    return RemoteUnavailable(f"{what}: Tencent KMS failed ({code or 'no code'})", request_id=rid)


class _ProviderCredential:
    """The SDK's credential protocol (``get_credential_info``) over a refreshing provider, so
    every KMS request signs with the tenant's current temporary credentials."""

    def __init__(self, provider: CredentialsProvider) -> None:
        self._provider = provider

    def get_credential_info(self) -> tuple[str, str, str | None]:
        creds = self._provider.credentials()
        return creds.access_key_id, creds.secret_access_key, creds.session_token

    def invalidate(self) -> None:
        self._provider.invalidate()


class KmsApi:
    """Tencent KMS (2019-01-18) through ``tencentcloud-sdk-python-kms``, with bounded retries."""

    def __init__(self, settings: CosSettings, provider: CredentialsProvider) -> None:
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.kms.v20190118 import kms_client

        kms = settings.kms
        endpoint = (kms.endpoint if kms is not None else None) or settings.api_endpoint
        scheme = settings.api_scheme
        if scheme == "http" and not (endpoint and is_loopback(_host(endpoint))):
            raise ConfigurationError(
                "cos:// KMS over plain http is only allowed to a loopback kms_endpoint "
                "(a local test double)"
            )
        profile = ClientProfile(
            httpProfile=HttpProfile(
                protocol=scheme, endpoint=endpoint, reqTimeout=settings.timeout
            ),
            disable_region_breaker=True,
        )
        self._cred = _ProviderCredential(provider)
        self._client = kms_client.KmsClient(self._cred, settings.region, profile)
        self._retries = settings.retries
        self._max_elapsed = settings.max_elapsed

    def call(self, action: str, params: dict[str, Any], *, unwrap: bool = False) -> Any:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
            TencentCloudSDKException,
        )
        from tencentcloud.kms.v20190118 import models

        what = f"Tencent KMS {action}"
        request = getattr(models, f"{action}Request")()
        request.from_json_string(json.dumps(params))
        budget = RetryPolicy(self._retries, max_elapsed=self._max_elapsed).start()
        refreshed = False
        while True:
            try:
                return getattr(self._client, action)(request)
            except TencentCloudSDKException as exc:
                err = map_kms_error(
                    str(exc.get_code() or ""), exc.get_request_id(), what=what, unwrap=unwrap
                )
            except PortableCredsError:
                raise
            except (OSError, ValueError) as exc:
                err = RemoteUnavailable(f"{what}: unreachable ({type(exc).__name__})")
            if isinstance(err, ExpiredCredentials) and not refreshed:
                refreshed = True
                self._cred.invalidate()
                continue
            if not isinstance(err, RemoteUnavailable):
                raise err
            delay = budget.next_delay()
            if delay is None:
                raise err
            time.sleep(delay)


def _host(endpoint: str) -> str:
    if endpoint.startswith("["):
        return endpoint[1:].partition("]")[0]
    return endpoint.rpartition(":")[0] if endpoint.count(":") == 1 else endpoint


def key_source_for(
    settings: CosSettings, provider: CredentialsProvider
) -> TencentKmsKeySource | None:
    """The key source a ``cos://...&kms_key=...`` URL configures, signing as ``provider``."""
    kms = settings.kms
    if kms is None:
        return None
    return TencentKmsKeySource(
        kms.key_id,
        KmsApi(settings, provider),
        read_cache=kms.read_cache,
        write_cache=kms.write_cache,
    )


def _b64(value: Any, what: str) -> bytes:
    """A base64 field of a KMS answer (``Plaintext``; ``CiphertextBlob``, documented as base64
    for Encrypt, taken to be the same for GenerateDataKey: if not, puts fail here, closed)."""
    if not isinstance(value, str):
        raise RemoteUnavailable(f"Tencent KMS {what}: the answer lacks a field")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise RemoteUnavailable(f"Tencent KMS {what}: the answer is not base64") from None


class TencentKmsKeySource(CachingCustodianKeySource):
    """One Tencent KMS CMK (KeyId): the per-tenant key of the wallet the store is opened for."""

    scheme = "tckms"

    def __init__(
        self,
        key_id: str,
        api: KmsApi,
        *,
        read_cache: CacheLimits | None = DEFAULT_READ_CACHE,
        write_cache: CacheLimits | None = None,
    ) -> None:
        super().__init__(key_id, read_cache=read_cache, write_cache=write_cache)
        self.api = api

    def __repr__(self) -> str:
        return f"TencentKmsKeySource(key_id={self.key_id!r}, kek_id={self.kek_id!r})"

    def _generate(self, encryption_context: Mapping[str, str]) -> tuple[bytes, bytes]:
        reply = self.api.call(
            "GenerateDataKey",
            {
                "KeyId": self.key_id,
                "KeySpec": "AES_256",
                "EncryptionContext": encryption_context_json(encryption_context),
            },
        )
        dek = _b64(reply.Plaintext, "GenerateDataKey")
        # Stored decoded: base64 has slack bits (a flipped low bit of the last character can
        # decode to the same bytes), so the envelope keeps the exact bytes KMS authenticates
        # and every bit of the stored wrapped key reaches KMS.
        wrapped = _b64(reply.CiphertextBlob, "GenerateDataKey")
        if len(dek) != DATA_KEY_LEN or not wrapped:
            raise RemoteUnavailable("Tencent KMS GenerateDataKey: unexpected answer")
        return dek, wrapped

    def _decrypt(self, wrapped: bytes, encryption_context: Mapping[str, str]) -> bytes:
        reply = self.api.call(
            "Decrypt",
            {
                "CiphertextBlob": base64.b64encode(wrapped).decode("ascii"),
                "EncryptionContext": encryption_context_json(encryption_context),
            },
            unwrap=True,
        )
        dek = _b64(reply.Plaintext, "Decrypt")
        if len(dek) != DATA_KEY_LEN:
            raise IntegrityError()
        return dek
