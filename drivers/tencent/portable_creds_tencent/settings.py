"""What the COS driver reads from a ``cos://`` URL and ``open_store`` options, checked once."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

import attrs

from portable_creds.datakey_cache import KMS_PARAMS
from portable_creds.driver import StoreTarget
from portable_creds.errors import ConfigurationError
from portable_creds.names import validate_prefix
from portable_creds.params import bool_param, int_param
from portable_creds.urls import is_loopback

from .kms_settings import TencentKmsSettings, parse_kms_settings

Mode = Literal["role-per-tenant", "token-vendor", "static"]
CreateOnly = Literal["forbid-overwrite", "if-none-match"]

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]*-(\d+)$")
_REGION_RE = re.compile(r"^[a-z]+(-[a-z0-9]+)+$")


@attrs.frozen(repr=False)
class StaticKeys:
    """A permanent (or externally managed temporary) API key. ``repr`` hides the secret."""

    secret_id: str
    secret_key: str
    token: str | None = None

    def __repr__(self) -> str:
        return f"StaticKeys(secret_id={self.secret_id!r}, secret_key=<hidden>)"


@attrs.frozen
class CosSettings:
    bucket: str
    appid: str
    region: str
    mode: Mode
    prefix: str = "bots"
    owner_uin: str | None = None
    provider: str = "portable-creds"
    role_prefix: str = "portable-creds-"
    vendor_role: str = "portable-creds-vendor"
    scheme: str = "https"
    ip: str | None = None
    port: int | None = None
    api_endpoint: str | None = None
    api_scheme: str = "https"
    duration: int = 3600
    refresh_margin: int = 300
    retries: int = 3
    timeout: int = 10
    max_elapsed: float = 8.0
    create_only: CreateOnly = "forbid-overwrite"
    if_match: bool = False
    session_tags: bool = False
    issuer: str | None = None
    audience: str | None = None
    jwks_url: str | None = None
    vendor_url: str | None = None
    wallet_claim: str = "sub"
    page_size: int = 1000
    vendor_kms: bool = False
    """Token vendor with per-tenant KMS keys: each vended session names its wallet's CMK."""
    sdk_reads: bool = False
    """GET Object through cos-python-sdk-v5 instead of the driver's signed GET (signed_get)."""
    kms: TencentKmsSettings | None = None
    """``kms_key=...``: custody of the data keys in Tencent KMS (kms_settings.py)."""

    @property
    def role_arn_prefix(self) -> str:
        return f"qcs::cam::uin/{self.owner_uin}:roleName/"

    def tenant_role_name(self, wallet: str) -> str:
        return f"{self.role_prefix}{wallet}"

    @property
    def backend_id(self) -> str:
        where = f"&endpoint={self.ip}:{self.port}" if self.ip else ""
        return f"cos://{self.bucket}?region={self.region}{where}"


SECRET_PARAMS = frozenset({"secret_key", "session_token", "session_jwt", "token"})
"""Accepted only as ``open_store`` keyword options: URLs end up in logs and shell history."""

KNOWN_PARAMS = frozenset(
    {
        "region",
        "mode",
        "owner_uin",
        "provider",
        "role_prefix",
        "vendor_role",
        "scheme",
        "ip",
        "port",
        "sts_endpoint",
        "sts_scheme",
        "duration",
        "refresh_margin",
        "retries",
        "timeout",
        "create_only",
        "if_match",
        "issuer",
        "audience",
        "jwks_url",
        "vendor_url",
        "wallet_claim",
        "page_size",
        "prefix",
        "token_file",
        "broker_url",
        "broker_ttl",
        "session_jwt_file",
        "session_tags",
        "vendor_kms",
        "sdk_reads",
    }
    | KMS_PARAMS
)
"""Every ``cos://`` URL parameter; anything else is a typo that would otherwise be ignored."""


def _host_of(endpoint: str) -> str:
    """The host of ``host``, ``host:port`` or ``[v6]:port``."""
    if endpoint.startswith("["):
        return endpoint[1:].partition("]")[0]
    return endpoint.rpartition(":")[0] if endpoint.count(":") == 1 else endpoint


def parse_settings(target: StoreTarget) -> CosSettings:
    """Validate the URL; errors say which option to fix."""
    leaked = sorted(SECRET_PARAMS & dict(parse_qsl(urlsplit(target.url).query)).keys())
    if leaked:
        raise ConfigurationError(
            f"cos:// URL carries secret parameter(s) {', '.join(leaked)}: pass them as keyword "
            "options instead (URLs end up in logs and shell history), or use token_file=PATH"
        )
    unknown = sorted(dict(parse_qsl(urlsplit(target.url).query)).keys() - KNOWN_PARAMS)
    if unknown:
        raise ConfigurationError(
            f"unknown cos:// parameter(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(KNOWN_PARAMS))}"
        )
    params = target.params
    bucket = target.location.strip("/")
    m = _BUCKET_RE.match(bucket)
    if m is None:
        raise ConfigurationError(
            f"cos:// bucket {bucket!r} must be the full COS name BUCKET-APPID, e.g. "
            "cos://creds-1250000000?region=ap-guangzhou"
        )
    region = target.require("region")
    if not _REGION_RE.match(region):
        raise ConfigurationError(f"cos:// region {region!r} is not a COS region like ap-guangzhou")
    default_mode = "static" if target.wallet is None else "role-per-tenant"
    mode = params.get("mode") or default_mode
    if mode not in ("role-per-tenant", "token-vendor", "static"):
        raise ConfigurationError(
            f"cos:// mode={mode!r}: use role-per-tenant, token-vendor or static"
        )
    if target.wallet is None:
        mode = "static"
    owner = params.get("owner_uin")
    if mode != "static" and not owner:
        raise ConfigurationError(
            f"cos:// mode={mode} needs owner_uin=<account UIN> to build role ARNs"
        )
    if owner is not None and not owner.isdigit():
        raise ConfigurationError("cos:// owner_uin must be the numeric account UIN")
    scheme = params.get("scheme") or "https"
    if scheme not in ("http", "https"):
        raise ConfigurationError("cos:// scheme must be http or https")
    ip = params.get("ip") or None
    port = int_param(params, "port", 0, 1, 65535, scheme="cos") if params.get("port") else None
    api_endpoint = params.get("sts_endpoint") or (f"{ip}:{port}" if ip and port else None)
    # Plain http only to a loopback endpoint (the local double): to anything else the
    # request signatures, session tokens and sealed blobs would cross the network in clear.
    if scheme == "http" and not (ip and is_loopback(ip)):
        raise ConfigurationError(
            "cos:// scheme=http is only allowed with a loopback ip= (a local test double); "
            "use scheme=https (the default)"
        )
    api_scheme = params.get("sts_scheme") or scheme
    if api_scheme not in ("http", "https"):
        raise ConfigurationError("cos:// sts_scheme must be http or https")
    if api_scheme == "http" and not (api_endpoint and is_loopback(_host_of(api_endpoint))):
        raise ConfigurationError(
            "cos:// sts_scheme=http is only allowed with a loopback sts_endpoint/ip= "
            "(a local test double); use https"
        )
    create_only = params.get("create_only") or "forbid-overwrite"
    if create_only not in ("forbid-overwrite", "if-none-match"):
        raise ConfigurationError("cos:// create_only must be forbid-overwrite or if-none-match")
    prefix = validate_prefix(params.get("prefix") or "bots")
    return CosSettings(
        bucket=bucket,
        appid=m.group(1),
        region=region,
        mode=mode,  # type: ignore[arg-type]
        prefix=prefix,
        owner_uin=owner,
        provider=params.get("provider") or "portable-creds",
        role_prefix=params.get("role_prefix") or "portable-creds-",
        vendor_role=params.get("vendor_role") or "portable-creds-vendor",
        scheme=scheme,
        ip=ip,
        port=port,
        api_endpoint=api_endpoint,
        api_scheme=api_scheme,
        duration=int_param(params, "duration", 3600, 60, 43200, scheme="cos"),
        refresh_margin=int_param(params, "refresh_margin", 300, 0, 43200, scheme="cos"),
        retries=int_param(params, "retries", 3, 0, 10, scheme="cos"),
        timeout=int_param(params, "timeout", 10, 1, 300, scheme="cos"),
        create_only=create_only,  # type: ignore[arg-type]
        if_match=bool_param(params, "if_match", False, scheme="cos"),
        session_tags=bool_param(params, "session_tags", False, scheme="cos"),
        issuer=params.get("issuer") or None,
        audience=params.get("audience") or None,
        jwks_url=params.get("jwks_url") or None,
        vendor_url=params.get("vendor_url") or None,
        wallet_claim=params.get("wallet_claim") or "sub",
        page_size=int_param(params, "page_size", 1000, 1, 1000, scheme="cos"),
        vendor_kms=bool_param(params, "vendor_kms", False, scheme="cos"),
        sdk_reads=bool_param(params, "sdk_reads", False, scheme="cos"),
        kms=parse_kms_settings(params),
    )


def static_keys(options: Mapping[str, Any], *, what: str) -> StaticKeys:
    """Permanent keys from ``open_store`` options or the SDK's usual environment variables."""
    sid = options.get("secret_id") or os.environ.get("TENCENTCLOUD_SECRET_ID")
    skey = options.get("secret_key") or os.environ.get("TENCENTCLOUD_SECRET_KEY")
    token = options.get("session_token") or os.environ.get("TENCENTCLOUD_SESSION_TOKEN")
    if not sid or not skey:
        raise ConfigurationError(
            f"{what} needs Tencent API keys: set TENCENTCLOUD_SECRET_ID and "
            "TENCENTCLOUD_SECRET_KEY (or pass secret_id=/secret_key= to open_store)"
        )
    return StaticKeys(str(sid), str(skey), str(token) if token else None)


Clock = Callable[[], float]
