"""The ``cos`` / ``tencent`` driver: URL -> federated credentials -> ``CosObjectStore``."""

from __future__ import annotations

import time
from typing import ClassVar

from portable_creds.credcache import CredentialCache
from portable_creds.driver import CredentialsProvider, Driver, StoreTarget
from portable_creds.errors import ConfigurationError
from portable_creds.names import validate_wallet

from .cos_store import CosObjectStore
from .federation import (
    RefreshingProvider,
    StaticProvider,
    VendedProvider,
    Vendor,
    WebIdentityProvider,
)
from .settings import CosSettings, parse_settings, static_keys
from .tokens import HOW_TO_PROVIDE, select_token_source
from .vendor_factory import build_vendor, sts_client

__all__ = ["CosDriver", "build_vendor", "sts_client"]


class CosDriver(Driver):
    """Tencent COS with CAM/STS federation. URL: ``cos://BUCKET-APPID?region=...&mode=...``."""

    name: ClassVar[str] = "cos"

    def provider_for(self, target: StoreTarget, settings: CosSettings) -> CredentialsProvider:
        options = dict(target.options)
        clock = options.get("clock") or time.time
        if settings.mode == "static":
            return StaticProvider(static_keys(options, what="the administrative cos:// view"))
        assert target.wallet is not None
        wallet = validate_wallet(target.wallet)
        token = select_token_source(target.token, target.params, options)
        if token is None:
            raise ConfigurationError(
                f"cos:// mode={settings.mode} needs the tenant's OIDC token: {HOW_TO_PROVIDE}"
            )
        cache = options.get("credential_cache")
        if not isinstance(cache, CredentialCache) or options.get("clock") is not None:
            cache = None  # a test clock makes a process-private provider
        common = (settings.api_endpoint or "tencentcloud", settings.region, wallet,
                  settings.bucket, settings.prefix, settings.duration)
        if settings.mode == "role-per-tenant":
            provider: RefreshingProvider = WebIdentityProvider(
                sts_client(settings),
                provider_id=settings.provider,
                role_arn=settings.role_arn_prefix + settings.tenant_role_name(wallet),
                token=token,
                session_name=f"pc-{wallet}",
                duration=settings.duration,
                margin=settings.refresh_margin,
                clock=clock,
            )
            if cache is not None:
                role = settings.role_arn_prefix + settings.tenant_role_name(wallet)
                provider.use_cache(cache, *common, settings.provider, role)
            return provider
        vendor = options.get("vendor")
        if vendor is None and settings.vendor_url:
            from .vendor_service import HttpVendor

            vendor = HttpVendor(settings.vendor_url, timeout=settings.timeout)
        if vendor is None:
            # In-process vendor: this process holds the vendor key and is the trusted party.
            vendor = build_vendor(settings, options)
        if not isinstance(vendor, Vendor):
            raise ConfigurationError("the vendor= option must be a portable_creds_tencent Vendor")
        provider = VendedProvider(
            vendor, wallet=wallet, token=token, margin=settings.refresh_margin, clock=clock
        )
        if cache is not None and settings.vendor_url:
            # Only a remote vendor's sessions: an in-process vendor object may be anything.
            provider.use_cache(cache, *common, "vendor", settings.vendor_url)
        return provider

    def open_object_store(self, target: StoreTarget) -> CosObjectStore:
        settings = parse_settings(target)
        provider = self.provider_for(target, settings)
        return CosObjectStore(settings, provider, federated=settings.mode != "static")

    @classmethod
    def admin_main(cls, argv: list[str]) -> int:
        from .admin import main

        return main(argv)
