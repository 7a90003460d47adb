"""``AwsKmsKeySource``: data keys made and unwrapped by AWS KMS, as the tenant's own identity.

The KMS client signs with the same credentials as the tenant's S3 client (the web-identity
session, so KMS and CloudTrail see the tenant, and the key policy can condition on its
``agentkeys_user_wallet`` principal tag). Every call carries the encryption context
``pc_wallet``/``pc_service``/``pc_storage_key`` (docs/format.md §3.2): KMS binds it, so a blob
moved to another tenant or path is refused by KMS itself (``InvalidCiphertextException``).

Error codes come from botocore's KMS model (Decrypt/GenerateDataKey error shapes):
InvalidCiphertextException and IncorrectKeyException mean "this ciphertext does not open
with this key and context" -> IntegrityError. AccessDeniedException is AccessDenied on
GenerateDataKey (a put: the identity may not use the key) but IntegrityError on Decrypt: a
ciphertext naming a key that does not exist or is not ours is refused that way (moto does so
where AWS documents IncorrectKeyException for a KeyId mismatch), and a reader must not learn
more than "this blob does not open for you" (docs/format.md §9);
NotFound/Disabled/KMSInvalidState/InvalidKeyUsage/KeyUnavailable -> KeySourceError;
KMSInternal/DependencyTimeout/throttling/connection failures -> RemoteUnavailable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError

from portable_creds.custodian import DEFAULT_READ_CACHE, CachingCustodianKeySource
from portable_creds.datakey_cache import CacheLimits
from portable_creds.errors import (
    AccessDenied,
    ExpiredCredentials,
    IntegrityError,
    KeySourceError,
    PortableCredsError,
    RemoteUnavailable,
)

from .clients import _session, client_config
from .errormap import EXPIRED_CODES, error_code, request_id
from .settings import S3Settings

_INVALID = frozenset({"InvalidCiphertextException", "IncorrectKeyException"})
_KEY_STATE = frozenset(
    {
        "NotFoundException",
        "DisabledException",
        "KMSInvalidStateException",
        "InvalidKeyUsageException",
        "KeyUnavailableException",
        "InvalidGrantTokenException",
    }
)


def kms_client(settings: S3Settings, credentials: Credentials | None) -> Any:
    """A KMS client for ``kms_endpoint`` (default: the S3 endpoint, e.g. moto)."""
    endpoint = settings.kms.endpoint if settings.kms is not None else None
    return _session(credentials).create_client(
        "kms",
        region_name=settings.region,
        endpoint_url=endpoint or settings.endpoint,
        config=client_config(settings),
    )


def map_kms_error(exc: Exception, *, what: str, unwrap: bool = False) -> PortableCredsError:
    if not isinstance(exc, ClientError):
        return RemoteUnavailable(f"{what}: AWS KMS unreachable ({type(exc).__name__})")
    code, rid = error_code(exc), request_id(exc)
    if code in _INVALID or (unwrap and code == "AccessDeniedException"):
        return IntegrityError(request_id=rid)
    if code == "AccessDeniedException":
        return AccessDenied(
            f"{what}: AWS KMS denied this identity (the key policy allows a tenant only its "
            "own wallet's encryption context)",
            request_id=rid,
        )
    if code in EXPIRED_CODES:
        return ExpiredCredentials(f"{what}: temporary credentials expired", request_id=rid)
    if code in _KEY_STATE:
        return KeySourceError(
            f"{what}: the KMS key cannot be used ({code}); check that it exists, is enabled "
            "and is a symmetric ENCRYPT_DECRYPT key",
            request_id=rid,
        )
    return RemoteUnavailable(f"{what}: AWS KMS failed ({code or 'no code'})", request_id=rid)


def key_source_for(settings: S3Settings, credentials: Credentials | None) -> AwsKmsKeySource | None:
    """The key source an ``s3://...&kms_key=...`` URL configures, signing as ``credentials``."""
    kms = settings.kms
    if kms is None:
        return None
    return AwsKmsKeySource(
        kms.key_id,
        kms_client(settings, credentials),
        read_cache=kms.read_cache,
        write_cache=kms.write_cache,
    )


class AwsKmsKeySource(CachingCustodianKeySource):
    """One AWS KMS key (ARN or key id) for every wallet and service of a store."""

    scheme = "awskms"

    def __init__(
        self,
        key_id: str,
        client: Any,
        *,
        read_cache: CacheLimits | None = DEFAULT_READ_CACHE,
        write_cache: CacheLimits | None = None,
    ) -> None:
        super().__init__(key_id, read_cache=read_cache, write_cache=write_cache)
        self.client = client

    def __repr__(self) -> str:
        return f"AwsKmsKeySource(key_id={self.key_id!r}, kek_id={self.kek_id!r})"

    def _generate(self, encryption_context: Mapping[str, str]) -> tuple[bytes, bytes]:
        try:
            reply = self.client.generate_data_key(
                KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=dict(encryption_context)
            )
        except (ClientError, BotoCoreError) as exc:
            raise map_kms_error(exc, what="KMS GenerateDataKey") from None
        return bytes(reply["Plaintext"]), bytes(reply["CiphertextBlob"])

    def _decrypt(self, wrapped: bytes, encryption_context: Mapping[str, str]) -> bytes:
        try:
            reply = self.client.decrypt(
                CiphertextBlob=wrapped,
                KeyId=self.key_id,
                EncryptionContext=dict(encryption_context),
            )
        except (ClientError, BotoCoreError) as exc:
            raise map_kms_error(exc, what="KMS Decrypt", unwrap=True) from None
        return bytes(reply["Plaintext"])
