"""The ``s3`` (alias ``aws``) driver: AWS S3 or any S3 + STS + IAM service (Ceph RGW).

A tenant store (``wallet`` set, ``role_arn`` given) signs with temporary credentials of the data
role obtained through OIDC web identity; the role's policies confine them to the tenant's
prefix, so isolation is enforced by the service. Without ``role_arn`` the store uses static keys
(options ``access_key``/``secret_key``) or botocore's default chain: that is the administrator's
view, and it is refused for tenants unless the caller explicitly opts out of federation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from portable_creds.credcache import CredentialCache
from portable_creds.driver import Driver, StoreTarget
from portable_creds.errors import ConfigurationError
from portable_creds.names import validate_wallet

from .clients import s3_client, static_credentials, sts_client
from .federation import WebIdentityCredentialsProvider
from .objectstore import S3ObjectStore
from .settings import ENV_ROLE_ARN, ENV_TOKEN_FILE, parse_settings
from .tokens import select_token_source


class S3Driver(Driver):
    name: ClassVar[str] = "s3"

    def open_object_store(self, target: StoreTarget) -> S3ObjectStore:
        settings = parse_settings(target)
        wallet = validate_wallet(target.wallet) if target.wallet is not None else None
        if settings.role_arn is None:
            if wallet is not None and not target.options.get("allow_static_tenant"):
                raise ConfigurationError(
                    "an s3:// store for a tenant needs the data role (web-identity "
                    "federation): add role_arn=arn:aws:iam::ACCOUNT:role/NAME to the URL, or "
                    f"set {ENV_ROLE_ARN} and {ENV_TOKEN_FILE} as for boto3; static keys are the "
                    "administrator's view (no wallet)"
                )
            client = s3_client(settings, static_credentials(settings))
            return S3ObjectStore(settings, client, wallet=wallet)
        static = target.options.get("token")
        source = select_token_source(
            target.token, settings, static if isinstance(static, str) else None
        )
        if source is None:
            raise ConfigurationError(
                f"{settings.role_arn_source} needs an OIDC token: set {ENV_TOKEN_FILE}, or add "
                "token_file=PATH, or broker_url=URL with session_jwt_file=PATH, to the URL"
            )
        cache = target.options.get("credential_cache")
        provider = WebIdentityCredentialsProvider(
            # Built on the first exchange only: a process reusing a cached session never pays
            # for the STS client.
            sts_factory=lambda: sts_client(settings),
            role_arn=settings.role_arn,
            wallet=wallet,
            token_source=source,
            duration=settings.duration,
            windows=settings.refresh_windows,
            time_fetcher=settings.time_fetcher,
            session_name_override=settings.session_name,
            # Test clocks and injected refresh windows make a process-private provider.
            cache=cache
            if isinstance(cache, CredentialCache) and settings.time_fetcher is None
            else None,
            cache_scope=(
                settings.sts_endpoint or "aws",
                settings.region,
                str(settings.duration),
                settings.session_name or "",
                settings.token_file or settings.broker_url or "",
            ),
        )
        client = s3_client(settings, provider.botocore_credentials)
        return S3ObjectStore(settings, client, provider=provider, wallet=wallet)

    @classmethod
    def admin_main(cls, argv: list[str]) -> int:
        """``portable-creds admin s3 render|apply|verify|onboard WALLET|offboard WALLET``."""
        from .admin.cli import main

        return main(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the provisioner without the core CLI: ``python -m portable_creds_aws.driver``."""
    import sys

    return S3Driver.admin_main(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    raise SystemExit(main())
