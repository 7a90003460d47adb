"""botocore failures -> ``portable_creds.errors``, by error code and HTTP status only.

Messages from the service are never parsed: codes are the contract, and where a service sends
no parseable error body (Ceph RGW's STS answers a refused token with a bare 403) the HTTP status
decides. The request id is carried over so operators can find the call in the service's logs.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProxyConnectionError,
    ReadTimeoutError,
    SSLError,
)
from botocore.parsers import ResponseParserError

from portable_creds.errors import (
    AccessDenied,
    ConfigurationError,
    CredentialsError,
    ExpiredCredentials,
    InvalidToken,
    NotFound,
    PayloadTooLarge,
    PortableCredsError,
    PreconditionFailed,
    RemoteUnavailable,
    TransientError,
)

#: Codes meaning "these temporary credentials are past their lifetime": refresh and retry once.
EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired"})

_NOT_FOUND = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchVersion"})
_PRECONDITION = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
_ACCESS = frozenset({"AccessDenied", "403", "AllAccessDisabled", "AccountProblem"})
_BAD_CREDENTIALS = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "InvalidSecurity",
        "InvalidClientTokenId",
        "MissingSecurityHeader",
        "AuthorizationHeaderMalformed",
        "RequestTimeTooSkewed",
        "UnrecognizedClientException",
    }
)
_TRANSIENT = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequests",
        "503",
        "500",
        "502",
        "504",
    }
)
_CONFIG = frozenset(
    {
        "NoSuchBucket",
        "InvalidBucketName",
        "PermanentRedirect",
        "IllegalLocationConstraintException",
        "InvalidArgument",
        "InvalidRequest",
        "NotImplemented",
        "MethodNotAllowed",
        "XAmzContentSHA256Mismatch",
    }
)
#: STS ``AssumeRoleWithWebIdentity``: the token (or the role's trust in it) was refused.
_TOKEN_REFUSED = frozenset(
    {
        "InvalidIdentityToken",
        "ExpiredTokenException",
        "IDPRejectedClaim",
        "AccessDenied",
        "AccessDeniedException",
        "InvalidParameterValue",
    }
)
#: STS refused the session policy of a scoped store (not the token).
_POLICY_REFUSED = frozenset({"PackedPolicyTooLarge", "MalformedPolicyDocument"})
_IDP_DOWN = frozenset({"IDPCommunicationError", "IDPCommunicationErrorException"})


def error_code(exc: ClientError) -> str:
    """The service's error code, or ``""`` when the body had none."""
    code = exc.response.get("Error", {}).get("Code")
    return "" if code in (None, "Unknown") else str(code)


def http_status(exc: ClientError) -> int:
    meta: dict[str, Any] = exc.response.get("ResponseMetadata", {})
    return int(meta.get("HTTPStatusCode") or 0)


def request_id(exc: ClientError) -> str | None:
    meta: dict[str, Any] = exc.response.get("ResponseMetadata", {})
    rid = meta.get("RequestId") or meta.get("HTTPHeaders", {}).get("x-amz-request-id")
    return str(rid) if rid else None


def is_expired_credentials(exc: ClientError) -> bool:
    return error_code(exc) in EXPIRED_CODES


def is_rejected_credentials(exc: ClientError) -> bool:
    """The service did not accept the key, signature or session token at all."""
    return error_code(exc) in _BAD_CREDENTIALS


def map_client_error(exc: ClientError, *, what: str) -> PortableCredsError:
    """Map a storage (S3) error. ``what`` names the operation and key for the message."""
    code, status, rid = error_code(exc), http_status(exc), request_id(exc)
    if code in EXPIRED_CODES:
        return ExpiredCredentials(
            f"{what}: temporary credentials expired and one refresh did not help; "
            "check the clock and the token source",
            request_id=rid,
        )
    if code in _NOT_FOUND:
        return NotFound(f"{what}: no such object", request_id=rid)
    if code in _PRECONDITION:
        return PreconditionFailed(
            f"{what}: the object exists or changed meanwhile; re-read and retry", request_id=rid
        )
    if code in _BAD_CREDENTIALS:
        return CredentialsError(
            f"{what}: the service rejected the credentials ({code}); check the access key, "
            "secret, session token and clock",
            request_id=rid,
        )
    if code in _ACCESS:
        return AccessDenied(
            f"{what}: access denied by the storage service; this identity is not allowed here",
            request_id=rid,
        )
    if code == "EntityTooLarge":
        return PayloadTooLarge(
            f"{what}: the object is larger than the service accepts", request_id=rid
        )
    if code == "NoSuchBucket":
        return ConfigurationError(
            f"{what}: the bucket does not exist; create it with `portable-creds admin s3 apply` "
            "or fix the bucket in the URL",
            request_id=rid,
        )
    if code in _CONFIG:
        return ConfigurationError(
            f"{what}: the service refused the request as malformed ({code}); check the "
            "endpoint, region and addressing style in the URL",
            request_id=rid,
        )
    if code in _TRANSIENT:
        return RemoteUnavailable(
            f"{what}: the service kept failing ({code}) after bounded retries; try again later",
            request_id=rid,
        )
    return _by_status(status, what=what, code=code, rid=rid)


def _by_status(status: int, *, what: str, code: str, rid: str | None) -> PortableCredsError:
    shown = code or f"HTTP {status}"
    if status == 404:
        return NotFound(f"{what}: no such object", request_id=rid)
    if status == 412:
        return PreconditionFailed(f"{what}: the condition on the write failed", request_id=rid)
    if status == 401:
        return CredentialsError(f"{what}: the service rejected the credentials", request_id=rid)
    if status == 403:
        return AccessDenied(f"{what}: access denied by the storage service", request_id=rid)
    if status == 413:
        return PayloadTooLarge(
            f"{what}: the object is larger than the service accepts", request_id=rid
        )
    if status == 429 or status >= 500:
        return RemoteUnavailable(
            f"{what}: the service kept failing ({shown}) after bounded retries; try again later",
            request_id=rid,
        )
    if 400 <= status < 500:
        return ConfigurationError(
            f"{what}: the service refused the request ({shown}); check the URL parameters",
            request_id=rid,
        )
    return PortableCredsError(f"{what}: unexpected response ({shown})", request_id=rid)


def map_sts_error(exc: ClientError) -> PortableCredsError:
    """Map an ``AssumeRoleWithWebIdentity`` failure."""
    code, status, rid = error_code(exc), http_status(exc), request_id(exc)
    if code in _IDP_DOWN:
        return RemoteUnavailable(
            "the identity service could not reach the OIDC issuer; try again later",
            request_id=rid,
        )
    if code in _TRANSIENT or status == 429 or status >= 500:
        return RemoteUnavailable(
            f"STS kept failing ({code or status}) after bounded retries; try again later",
            request_id=rid,
        )
    if code in _POLICY_REFUSED:
        return ConfigurationError(
            f"the identity service refused the session policy of a scoped store ({code}); "
            "scope fewer services per credential",
            request_id=rid,
        )
    if code in _TOKEN_REFUSED or status in (400, 401, 403):
        return InvalidToken(
            "the identity service refused the OIDC token (forged, expired, wrong audience or "
            "issuer, missing tag claim, or the role does not trust it); get a fresh token from "
            "the broker and check the provisioned trust policy",
            request_id=rid,
        )
    return _by_status(status, what="AssumeRoleWithWebIdentity", code=code, rid=rid)


#: Failures that are neither an HTTP error response nor a botocore client-side error.
SDK_ERRORS: tuple[type[Exception], ...] = (BotoCoreError, ResponseParserError)


def map_botocore_error(exc: Exception, *, what: str) -> PortableCredsError:
    """Map a failure that never produced an HTTP response (or a client-side refusal)."""
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
        return RemoteUnavailable(
            f"{what}: timed out talking to the endpoint after bounded retries; check the "
            "endpoint and network, or raise connect_timeout/read_timeout"
        )
    if isinstance(
        exc, EndpointConnectionError | ConnectionClosedError | ProxyConnectionError | SSLError
    ):
        return RemoteUnavailable(
            f"{what}: could not reach the endpoint after bounded retries; check the endpoint "
            "URL and that the service is up"
        )
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return CredentialsError(
            f"{what}: no credentials found; pass role_arn (with a token) for a tenant, or "
            "access_key/secret_key (or the AWS default chain) for the administrator"
        )
    if isinstance(exc, CredentialRetrievalError):
        return CredentialsError(
            f"{what}: could not obtain credentials from {exc.kwargs.get('provider')}"
        )
    if isinstance(exc, NoRegionError):
        return ConfigurationError(f"{what}: no region; add ?region=... to the URL")
    if isinstance(exc, ParamValidationError):
        return ConfigurationError(
            f"{what}: the AWS SDK refused the request parameters; check the URL options"
        )
    if isinstance(exc, ResponseParserError):
        return RemoteUnavailable(
            f"{what}: the endpoint sent a response the AWS SDK cannot parse; check that the "
            "endpoint is an S3/STS/IAM service"
        )
    return TransientError(f"{what}: the AWS SDK failed ({type(exc).__name__}); try again")
