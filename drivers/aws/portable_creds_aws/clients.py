"""botocore clients built once per credential set, with deliberate retry and timeout settings.

Why these settings: ``standard`` retry mode retries throttling, 5xx and connection errors with
jittered backoff and a retry quota; bounded attempts keep a dead endpoint from hanging a caller
for minutes; explicit connect/read timeouts replace botocore's 60 s defaults; a pool large
enough for 16+ worker threads avoids "connection pool is full" churn.
"""

from __future__ import annotations

from typing import Any

import botocore
import botocore.session
from botocore.config import Config
from botocore.credentials import CredentialProvider, CredentialResolver, Credentials

from .settings import S3Settings


class _FixedProvider(CredentialProvider):  # type: ignore[misc]
    """Hands botocore one credentials object (refreshable or static) and nothing else.

    Registered as the session's only credential source, so a federated store can never fall
    back silently to ambient credentials from the environment.
    """

    METHOD = "portable-creds"
    CANONICAL_NAME = "custom-portable-creds"

    def __init__(self, credentials: Credentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> Credentials:
        return self._credentials


def client_config(settings: S3Settings, *, unsigned: bool = False, validate: bool = True) -> Config:
    s3_opts: dict[str, Any] = {}
    if settings.addressing != "auto":
        s3_opts["addressing_style"] = settings.addressing
    elif settings.endpoint is not None:
        # S3-compatible endpoints (RGW, moto, MinIO) rarely have wildcard DNS for buckets.
        s3_opts["addressing_style"] = "path"
    kwargs: dict[str, Any] = {
        "region_name": settings.region,
        "retries": {"mode": "standard", "total_max_attempts": settings.max_attempts},
        "connect_timeout": settings.connect_timeout,
        "read_timeout": settings.read_timeout,
        "max_pool_connections": settings.max_pool,
        "tcp_keepalive": True,
        "parameter_validation": validate,
        "s3": s3_opts,
        # Only send/verify CRC checksums when an operation requires them: RGW 16.2 and some
        # S3-compatible stores reject the newer default trailing checksums.
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
    }
    if unsigned:
        kwargs["signature_version"] = botocore.UNSIGNED
    return Config(**kwargs)


def _session(credentials: Credentials | None) -> botocore.session.Session:
    session = botocore.session.get_session()
    if credentials is not None:
        resolver = CredentialResolver([_FixedProvider(credentials)])
        session.register_component("credential_provider", resolver)
    return session


def s3_client(settings: S3Settings, credentials: Credentials | None) -> Any:
    """An S3 client; ``credentials=None`` uses the default chain (admin on a workstation)."""
    return _session(credentials).create_client(
        "s3",
        region_name=settings.region,
        endpoint_url=settings.endpoint,
        config=client_config(settings),
    )


def sts_client(settings: S3Settings, *, unsigned: bool = True) -> Any:
    """STS client for ``AssumeRoleWithWebIdentity``: unsigned, as the token is the credential.

    Parameter validation is switched off only for sessions shorter than 900 s, which botocore
    refuses client-side although RGW allows them (``rgw_sts_min_session_duration``).
    """
    return _session(None).create_client(
        "sts",
        region_name=settings.region,
        endpoint_url=settings.sts_endpoint,
        config=client_config(settings, unsigned=unsigned, validate=settings.duration >= 900),
    )


def iam_client(settings: S3Settings, credentials: Credentials | None) -> Any:
    return _session(credentials).create_client(
        "iam",
        region_name=settings.region,
        endpoint_url=settings.endpoint,
        config=client_config(settings),
    )


def static_credentials(settings: S3Settings) -> Credentials | None:
    if settings.access_key is None or settings.secret_key is None:
        return None
    return Credentials(settings.access_key, settings.secret_key, settings.session_token)
