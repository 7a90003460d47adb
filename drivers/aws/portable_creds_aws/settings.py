"""``s3://BUCKET?...`` URL + options -> one validated, immutable settings value.

Parsing once at the edge means every later layer can trust its inputs, and a typo in the URL is a
``ConfigurationError`` naming the parameter instead of a botocore stack trace later on.
Secrets (static keys, broker session) are accepted only as keyword options, never in the URL:
URLs end up in shell history and logs.

A tenant store also reads the web-identity variables boto3 reads (``AWS_ROLE_ARN``,
``AWS_WEB_IDENTITY_TOKEN_FILE``, ``AWS_ROLE_SESSION_NAME``), which EKS (IRSA) and GitHub's OIDC
actions set; a URL parameter always wins over its variable.
"""

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
from portable_creds.params import float_param, int_param
from portable_creds.urls import reject_userinfo

from .kms_settings import KmsSettings, parse_kms_settings

Addressing = Literal["path", "virtual", "auto"]

_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_ROLE_ARN_RE = re.compile(r"arn:aws[a-z-]*:iam::[0-9]*:role/[\w+=,.@/-]{1,128}")
# STS RoleSessionName (botocore's sts model: roleSessionNameType, 2..64 of [\w+=,.@-]).
_SESSION_NAME_RE = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
ENV_ROLE_ARN = "AWS_ROLE_ARN"
ENV_TOKEN_FILE = "AWS_WEB_IDENTITY_TOKEN_FILE"
ENV_SESSION_NAME = "AWS_ROLE_SESSION_NAME"
SECRET_PARAMS = frozenset({"access_key", "secret_key", "session_token", "session_jwt", "token"})
KNOWN_PARAMS = frozenset(
    {
        "region",
        "endpoint",
        "sts_endpoint",
        "role_arn",
        "addressing",
        "duration",
        "token_file",
        "broker_url",
        "broker_ttl",
        "session_jwt_file",
        "max_attempts",
        "connect_timeout",
        "read_timeout",
        "max_pool",
        "etag",
        "session_name",
    }
    | KMS_PARAMS
)
DEFAULT_REGION = "us-east-1"
DEFAULT_DURATION = 3600


@attrs.frozen(repr=False)
class S3Settings:
    bucket: str
    region: str
    endpoint: str | None
    sts_endpoint: str | None
    role_arn: str | None
    addressing: Addressing
    duration: int
    max_attempts: int
    connect_timeout: float
    read_timeout: float
    max_pool: int
    quote_if_match: bool
    token_file: str | None
    broker_url: str | None
    broker_ttl: int
    session_jwt: str | None
    session_jwt_file: str | None
    access_key: str | None
    secret_key: str | None
    session_token: str | None
    session_name: str | None
    time_fetcher: Callable[[], Any] | None
    refresh_windows: tuple[float, float] | None
    """(advisory, mandatory) seconds before expiry; ``None`` scales them to ``duration``."""
    role_arn_source: str = "role_arn"
    """Where ``role_arn`` came from (the URL parameter or ``AWS_ROLE_ARN``), for messages."""
    kms: KmsSettings | None = None
    """``kms_key=...``: custody of the data keys in AWS KMS (kms_settings.py)."""

    @property
    def federated(self) -> bool:
        return self.role_arn is not None

    @property
    def backend_id(self) -> str:
        return f"s3:{self.endpoint or 'aws'}:{self.region}:{self.bucket}"

    def __repr__(self) -> str:
        return (
            f"S3Settings(bucket={self.bucket!r}, region={self.region!r}, "
            f"endpoint={self.endpoint!r}, role_arn={self.role_arn!r})"
        )


def _endpoint(raw: str | None, name: str) -> str | None:
    if not raw:
        return None
    reject_userinfo(raw, f"s3:// parameter {name}")
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"s3:// parameter {name}={raw!r} must be an http(s)://host[:port] URL"
        )
    return raw.rstrip("/")


def parse_settings(target: StoreTarget) -> S3Settings:
    """Validate ``target`` into ``S3Settings`` or raise ``ConfigurationError``."""
    if target.scheme not in ("s3", "aws"):
        raise ConfigurationError(f"not an s3:// URL: scheme {target.scheme!r}")
    parts = urlsplit(target.url)
    url_params = dict(parse_qsl(parts.query))
    leaked = sorted(SECRET_PARAMS & url_params.keys())
    if leaked:
        raise ConfigurationError(
            f"s3:// URL carries secret parameter(s) {', '.join(leaked)}: pass them as keyword "
            "options instead (URLs end up in logs and shell history)"
        )
    unknown = sorted(url_params.keys() - KNOWN_PARAMS)
    if unknown:
        raise ConfigurationError(
            f"unknown s3:// parameter(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(KNOWN_PARAMS))}"
        )
    params = target.params
    bucket = parts.netloc
    if parts.path not in ("", "/"):
        raise ConfigurationError(
            f"s3:// URL must be s3://BUCKET?..., without a path (got {parts.path!r})"
        )
    if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
        raise ConfigurationError(
            f"invalid bucket name {bucket!r}: 3-63 characters of a-z 0-9 . -, starting and "
            "ending with a letter or digit"
        )
    opts = target.options
    access_key = _opt_str(opts, "access_key")
    secret_key = _opt_str(opts, "secret_key")
    if (access_key is None) != (secret_key is None):
        raise ConfigurationError("pass both access_key and secret_key options, or neither")
    env = _web_identity_env(target, params, static_keys=access_key is not None)
    role_arn = params.get("role_arn") or env.get(ENV_ROLE_ARN)
    role_source = "role_arn" if params.get("role_arn") else ENV_ROLE_ARN
    if role_arn is not None and WALLET_PLACEHOLDER in role_arn:
        role_arn = _per_wallet_role(role_arn, target.wallet)
    if role_arn is not None and SHARD_PLACEHOLDER in role_arn:
        role_arn = _per_shard_role(role_arn, target.wallet)
    if role_arn is not None and not _ROLE_ARN_RE.fullmatch(role_arn):
        raise ConfigurationError(
            f"{role_source}={role_arn!r} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"
        )
    if role_arn is None and env.get(ENV_TOKEN_FILE):
        # What boto3 does too: a token file without a role is a configuration mistake.
        raise ConfigurationError(
            f"{ENV_TOKEN_FILE} is set but no data role is: set {ENV_ROLE_ARN} or add "
            "role_arn=arn:aws:iam::ACCOUNT:role/NAME to the s3:// URL"
        )
    session_name, name_source = (
        (params.get("session_name"), "session_name")
        if params.get("session_name")
        else (env.get(ENV_SESSION_NAME), ENV_SESSION_NAME)
    )
    if session_name and not _SESSION_NAME_RE.fullmatch(session_name):
        raise ConfigurationError(
            f"{name_source}={session_name!r} is not an STS session name (2-64 characters of "
            "letters, digits and _+=,.@-)"
        )
    addressing = params.get("addressing", "auto")
    if addressing not in ("path", "virtual", "auto"):
        raise ConfigurationError("s3:// parameter addressing must be path, virtual or auto")
    etag = params.get("etag", "unquoted")
    if etag not in ("quoted", "unquoted"):
        raise ConfigurationError("s3:// parameter etag must be quoted or unquoted")
    endpoint = _endpoint(params.get("endpoint"), "endpoint")
    sts_endpoint = _endpoint(params.get("sts_endpoint"), "sts_endpoint") or endpoint
    region = (
        params.get("region")
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or DEFAULT_REGION
    )
    windows = opts.get("refresh_windows")
    if windows is not None:
        advisory, mandatory = (float(w) for w in windows)
        windows = (advisory, mandatory)
    fetcher = opts.get("time_fetcher")
    return S3Settings(
        bucket=bucket,
        region=region,
        endpoint=endpoint,
        sts_endpoint=sts_endpoint,
        role_arn=role_arn,
        addressing=addressing,  # type: ignore[arg-type]
        duration=int_param(params, "duration", DEFAULT_DURATION, 1, 43200, scheme="s3"),
        max_attempts=int_param(params, "max_attempts", 3, 1, 10, scheme="s3"),
        connect_timeout=float_param(params, "connect_timeout", 5.0, 600, scheme="s3"),
        read_timeout=float_param(params, "read_timeout", 15.0, 600, scheme="s3"),
        max_pool=int_param(params, "max_pool", 32, 1, 512, scheme="s3"),
        quote_if_match=etag == "quoted",
        token_file=params.get("token_file") or env.get(ENV_TOKEN_FILE) or None,
        broker_url=_endpoint(params.get("broker_url"), "broker_url"),
        broker_ttl=int_param(params, "broker_ttl", 300, 60, 3600, scheme="s3"),
        session_jwt=_opt_str(opts, "session_jwt"),
        session_jwt_file=params.get("session_jwt_file") or None,
        access_key=access_key,
        secret_key=secret_key,
        session_token=_opt_str(opts, "session_token"),
        session_name=session_name or None,
        time_fetcher=fetcher if callable(fetcher) else None,
        refresh_windows=windows,
        role_arn_source=role_source,
        kms=parse_kms_settings(params, _endpoint(params.get("kms_endpoint"), "kms_endpoint")),
    )


WALLET_PLACEHOLDER = "{wallet}"


def _per_wallet_role(template: str, wallet: str | None) -> str:
    """``role_arn=...:role/NAME-{wallet}`` (the ``role-per-tenant`` strategy: one role per
    wallet), so a whole fleet shares one URL and each tenant assumes its own role."""
    if wallet is None:
        raise ConfigurationError(
            f"role_arn={template!r} names a per-wallet role ({WALLET_PLACEHOLDER}): open the "
            "store with a wallet"
        )
    from portable_creds.names import validate_wallet

    return template.replace(WALLET_PLACEHOLDER, validate_wallet(wallet))


SHARD_PLACEHOLDER = "{shard}"
SHARD_DIGITS = 2
"""Must equal ``admin.revocation.SHARD_DIGITS`` (tests/aws/test_sharded_revocation.py)."""


def _per_shard_role(template: str, wallet: str | None) -> str:
    """``role_arn=...:role/NAME-{shard}`` (``tag-variable`` with sharded revocation): the
    wallet's first two hex digits pick its shard role, the only one its token may assume."""
    if wallet is None:
        raise ConfigurationError(
            f"role_arn={template!r} names a per-shard role ({SHARD_PLACEHOLDER}): open the "
            "store with a wallet"
        )
    from portable_creds.names import validate_wallet

    shard = validate_wallet(wallet)[2 : 2 + SHARD_DIGITS]
    return template.replace(SHARD_PLACEHOLDER, shard)


def _web_identity_env(
    target: StoreTarget, params: Mapping[str, str], *, static_keys: bool
) -> dict[str, str]:
    """The ``AWS_*`` web-identity variables that apply to this store (empty if none do).

    Only a tenant store (a wallet, no static keys, no ``allow_static_tenant``) reads them: the
    administrator's view leaves them to botocore's own default chain, which reads the same
    variables. ``AWS_WEB_IDENTITY_TOKEN_FILE`` is ignored when the URL names another token
    source (``token_file`` or ``broker_url``): URL parameters win.
    """
    if target.wallet is None or static_keys or target.options.get("allow_static_tenant"):
        return {}
    names = [ENV_ROLE_ARN, ENV_SESSION_NAME]
    if not (params.get("token_file") or params.get("broker_url")):
        names.append(ENV_TOKEN_FILE)
    return {n: v for n in names if (v := os.environ.get(n, "").strip())}


def _opt_str(options: Mapping[str, Any], name: str) -> str | None:
    value = options.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"option {name} must be a non-empty string")
    return value
