"""Mapping Tencent failures into ``portable_creds.errors`` by HTTP status and error code.

Never by message text. The original code is kept on the exception (``tencent_code``) so
callers that need finer distinctions (the provisioner) can branch on it too.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from portable_creds.errors import (
    AccessDenied,
    ConfigurationError,
    CredentialsError,
    ExpiredCredentials,
    InvalidToken,
    NotFound,
    PortableCredsError,
    PreconditionFailed,
    TransientError,
)

if TYPE_CHECKING:  # the COS SDK is imported by the store on its first SDK call, not here
    from qcloud_cos.cos_exception import CosClientError, CosServiceError

_TRANSIENT_API = {
    "ClientNetworkError",
    "ServerNetworkError",
    "InternalError",
    "RequestLimitExceeded",
    "RequestLimitExceeded.UinLimitExceeded",
    "RequestLimitExceeded.GlobalRegionUinLimitExceeded",
    "ResourceUnavailable",
}
_TRANSIENT_COS = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"}


def tencent_code(exc: BaseException) -> str | None:
    value = exc.__dict__.get("tencent_code")
    return value if isinstance(value, str) else None


def _tag(err: PortableCredsError, code: str) -> PortableCredsError:
    err.__dict__["tencent_code"] = code
    return err


def api_error(
    service: str, action: str, code: str, message: str, request_id: str | None
) -> PortableCredsError:
    """A Tencent Cloud API 3.0 error (STS/CAM) as a typed error."""
    where = f"Tencent {service} {action} refused ({code})"
    rid = request_id or None
    if code == "InternalError.GetRoleError":
        # What AssumeRoleWithWebIdentity documents for a role that does not exist (its error
        # list has no ResourceNotFound.*): a configuration problem, never worth a retry.
        hint = (
            "onboard this wallet with `portable-creds admin cos onboard WALLET` (its CAM role "
            "does not exist), or check owner_uin/role_prefix"
            if action == "AssumeRoleWithWebIdentity"
            else "the CAM role does not exist; run `portable-creds admin cos apply` or check "
            "owner_uin/vendor_role"
        )
        return _tag(ConfigurationError(f"{where}: {hint}", request_id=rid), code)
    if code == "InvalidParameter.RoleFull":
        return _tag(
            ConfigurationError(
                f"{where}: the account reached its CAM role quota; role-per-tenant needs one "
                "role per wallet - use mode=token-vendor, or raise the quota with Tencent",
                request_id=rid,
            ),
            code,
        )
    if code in _TRANSIENT_API or code.startswith(("InternalError", "RequestLimitExceeded")):
        return _tag(
            TransientError(f"{where}: temporary failure, retry later", request_id=rid), code
        )
    if code == "InvalidParameter.WebIdentityTokenError":
        return _tag(
            InvalidToken(
                f"{where}: the OIDC token was rejected (bad signature, issuer, audience or "
                "expired); obtain a fresh token from your identity provider",
                request_id=rid,
            ),
            code,
        )
    if code == "ResourceNotFound.RoleNotFound":
        return _tag(
            ConfigurationError(
                f"{where}: the CAM role does not exist; onboard the wallet with "
                "`portable-creds admin cos onboard WALLET` or check vendor_role/role_prefix",
                request_id=rid,
            ),
            code,
        )
    if code.startswith("ResourceNotFound"):
        return _tag(NotFound(f"{where}: {message or 'not found'}", request_id=rid), code)
    if code == "AuthFailure.TokenFailure":
        return _tag(
            ExpiredCredentials(
                f"{where}: the temporary credentials are expired or their token is wrong; "
                "refresh them",
                request_id=rid,
            ),
            code,
        )
    if code in ("AuthFailure.UnauthorizedOperation", "UnauthorizedOperation") or code.startswith(
        "UnauthorizedOperation"
    ):
        return _tag(
            AccessDenied(f"{where}: not permitted by CAM policy or role trust", request_id=rid),
            code,
        )
    if code.startswith("AuthFailure"):
        return _tag(
            CredentialsError(
                f"{where}: the API key or signature was rejected; check SecretId/SecretKey "
                "and the system clock",
                request_id=rid,
            ),
            code,
        )
    if code.startswith(("InvalidParameter", "MissingParameter", "UnsupportedOperation")):
        return _tag(
            ConfigurationError(f"{where}: {message or 'invalid parameter'}", request_id=rid), code
        )
    return _tag(
        PortableCredsError(f"{where}: {message or 'unexpected error'}", request_id=rid), code
    )


def cos_sdk_errors() -> tuple[type[Exception], ...]:
    """The COS SDK's exception classes, or ``()`` while the SDK is not imported (then none of
    them can have been raised): ``except cos_sdk_errors()`` never imports the SDK."""
    module = sys.modules.get("qcloud_cos.cos_exception")
    return () if module is None else (module.CosServiceError, module.CosClientError)


def cos_error(
    exc: CosServiceError | CosClientError, operation: str, key: str, *, conditional: bool = False
) -> PortableCredsError:
    """A COS SDK exception as a typed error (``cos_status_error``)."""
    from qcloud_cos.cos_exception import CosServiceError

    if not isinstance(exc, CosServiceError):
        return cos_network_error(operation, key)
    rid = exc.get_request_id()
    return cos_status_error(
        int(exc.get_status_code() or 0),
        str(exc.get_error_code() or "Unknown"),
        rid if rid and rid != "Unknown" else None,
        operation,
        key,
        conditional=conditional,
    )


def cos_network_error(operation: str, key: str) -> PortableCredsError:
    """No answer from COS (refused, reset, timed out, cut short): worth a retry."""
    return _tag(
        TransientError(f"COS {operation} {key!r}: network error talking to COS"), "ClientError"
    )


def cos_status_error(
    status: int,
    code: str,
    rid: str | None,
    operation: str,
    key: str,
    *,
    conditional: bool = False,
) -> PortableCredsError:
    """A COS refusal, by HTTP status and the ``Code`` of its XML body, as a typed error. Retry
    decisions use ``TransientError``.

    ``conditional``: the request carried a precondition (create-only or If-Match), so any 409
    or 412 means the precondition failed, whatever code COS put in the body.
    """
    where = f"COS {operation} {key!r} failed ({status} {code})"
    if code == "NoSuchBucket":
        return _tag(
            ConfigurationError(
                f"{where}: the bucket does not exist; check the cos:// URL", request_id=rid
            ),
            code,
        )
    if status == 404 or code in ("NoSuchKey", "NoSuchResource"):
        return _tag(NotFound(f"{where}: no such object or configuration", request_id=rid), code)
    if (
        code in ("FileAlreadyExists", "PreconditionFailed")
        or (conditional and status in (409, 412))
        or (status in (409, 412) and code in ("Unknown", "ConditionalRequestConflict"))
    ):
        return _tag(
            PreconditionFailed(f"{where}: the object exists or changed meanwhile", request_id=rid),
            code,
        )
    if code == "ExpiredToken":
        return _tag(
            ExpiredCredentials(
                f"{where}: temporary credentials expired; refreshing", request_id=rid
            ),
            code,
        )
    if code in (
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "InvalidSecurityToken",
    ):
        return _tag(
            CredentialsError(
                f"{where}: credentials rejected; check keys, token and clock", request_id=rid
            ),
            code,
        )
    if code == "AccessDenied" or (code == "Unknown" and status == 403):
        return _tag(
            AccessDenied(
                f"{where}: denied by CAM/bucket policy for these credentials", request_id=rid
            ),
            code,
        )
    if status >= 500 or status == 429 or code in _TRANSIENT_COS:
        return _tag(TransientError(f"{where}: temporary failure", request_id=rid), code)
    return _tag(PortableCredsError(f"{where}: unexpected COS error", request_id=rid), code)
