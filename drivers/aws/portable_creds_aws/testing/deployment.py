"""A provisioned deployment on a local RGW, as tests and benchmarks need it.

The provisioner runs with the RGW administrator's static keys, exactly as an operator would run
``portable-creds admin s3 apply`` against an on-premises gateway.
"""

from __future__ import annotations

from portable_creds.driver import StoreTarget

from ..admin.policies import Deployment, Strategy
from ..admin.provisioner import Provisioner
from ..clients import iam_client, s3_client, static_credentials
from ..settings import parse_settings
from .oidc import OidcIssuer
from .rgw import RgwEndpoint


def rgw_deployment(
    bucket: str,
    rgw: RgwEndpoint,
    issuer: OidcIssuer,
    *,
    strategy: Strategy = "role-per-tenant",
    role_name: str = "agentkeys-data-role",
) -> Deployment:
    """An RGW deployment trusting ``issuer``; ``role-per-tenant`` is RGW's default strategy."""
    return Deployment(
        bucket=bucket,
        issuer=issuer.iss,
        flavor="rgw",
        strategy=strategy,
        role_name=role_name,
        admin_principal=f"arn:aws:iam:::user/{rgw.admin_user}",
        thumbprints=(issuer.thumbprint,),
    )


def rgw_per_tenant_deployment(bucket: str, rgw: RgwEndpoint, issuer: OidcIssuer) -> Deployment:
    """The legacy ``per-tenant`` strategy (one shared role), e.g. as a benchmark baseline."""
    return rgw_deployment(bucket, rgw, issuer, strategy="per-tenant")


def admin_provisioner(rgw: RgwEndpoint, deployment: Deployment, region: str) -> Provisioner:
    """A provisioner for ``deployment`` holding the RGW administrator's keys."""
    settings = parse_settings(
        StoreTarget(
            url=f"s3://{deployment.bucket}?region={region}&endpoint={rgw.url}",
            wallet=None,
            options={"access_key": rgw.admin_access_key, "secret_key": rgw.admin_secret_key},
        )
    )
    creds = static_credentials(settings)
    return Provisioner(
        deployment, iam=iam_client(settings, creds), s3=s3_client(settings, creds), region=region
    )
