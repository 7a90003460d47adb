"""Building the STS client and the in-process ``TokenVendor`` from parsed settings.

On its own so that the driver (which may talk to a remote vendor through
``vendor_service.HttpVendor``) and the vendor service's entry point (which builds the vendor it
serves) both use it without importing each other.
"""

from __future__ import annotations

import time
from typing import Any

from portable_creds.errors import ConfigurationError

from .federation import JwksSource, TokenVendor
from .settings import CosSettings, static_keys
from .tcapi import TcApi


def sts_client(settings: CosSettings, keys: Any = None) -> TcApi:
    return api_client("sts", settings, keys)


def api_client(service: str, settings: CosSettings, keys: Any = None) -> TcApi:
    return TcApi.for_settings(service, settings, keys)


def build_vendor(settings: CosSettings, options: dict[str, Any]) -> TokenVendor:
    """A ``TokenVendor`` from URL options plus the vendor's key (options or environment).

    Only for the trusted process that owns the vendor key; see ``federation`` for why.
    """
    # Here, not at module level: a tenant's cold CLI process builds no policy (issue 13).
    from .kms_keys import TenantKeyDirectory
    from .policies import BucketRef

    if not settings.issuer or not settings.audience:
        raise ConfigurationError("token-vendor mode needs issuer= and audience= options")
    jwks = options.get("jwks")
    if jwks is None and settings.jwks_url is None:
        raise ConfigurationError("token-vendor mode needs jwks_url= (or a jwks= option)")
    keys = static_keys(options, what="the token vendor")
    kms_keys = None
    if settings.vendor_kms:
        if not settings.owner_uin:
            raise ConfigurationError("vendor_kms=true needs owner_uin=")
        kms_keys = TenantKeyDirectory(
            api_client("kms", settings, keys),
            region=settings.region,
            owner_uin=settings.owner_uin,
            role_prefix=settings.role_prefix,
        )
    return TokenVendor(
        sts_client(settings, keys),
        role_arn=settings.role_arn_prefix + settings.vendor_role,
        bucket=BucketRef(settings.bucket, settings.appid, settings.region),
        prefix=settings.prefix,
        issuer=settings.issuer,
        audience=settings.audience,
        jwks=JwksSource(jwks, settings.jwks_url),
        wallet_claim=settings.wallet_claim,
        duration=settings.duration,
        clock=options.get("clock") or time.time,
        session_tags=settings.session_tags,
        kms_keys=kms_keys,
    )
