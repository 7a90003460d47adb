"""Shared endpoints, started once per test session by tests/conftest.py: moto (storage
semantics) and a Ceph RGW with a local OIDC issuer (identity and isolation: RGW really enforces
them, moto does not). One RGW cluster serves every directory's tests (aws, legacy, evidence).

Without the Ceph binaries the RGW tests skip with one line saying how to enable them, except
under CI (``CI=true``), where a skipped isolation proof is a failure.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import boto3
import pytest
from portable_creds_aws.admin.policies import Deployment
from portable_creds_aws.admin.provisioner import Provisioner
from portable_creds_aws.driver import S3Driver
from portable_creds_aws.objectstore import S3ObjectStore
from portable_creds_aws.testing.deployment import admin_provisioner
from portable_creds_aws.testing.deployment import rgw_deployment as make_rgw_deployment
from portable_creds_aws.testing.oidc import OidcIssuer
from portable_creds_aws.testing.rgw import INSTALL_HINT, RgwCluster, RgwEndpoint, missing_binaries

from portable_creds.driver import StoreTarget
from portable_creds.secret_key import SecretKeySource
from portable_creds.store import CredentialStore

REGION = "us-east-1"
MOTO_KEYS = {"access_key": "testing", "secret_key": "testing"}


def random_wallet() -> str:
    return "0x" + secrets.token_hex(20)


# --------------------------------------------------------------------------- moto
@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def moto_bucket(moto_endpoint: str) -> str:
    name = f"pc-{secrets.token_hex(6)}"
    boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=name)
    return name


def moto_url(endpoint: str, bucket: str, **params: str) -> str:
    query = "&".join(
        f"{k}={v}" for k, v in {"region": REGION, "endpoint": endpoint, **params}.items()
    )
    return f"s3://{bucket}?{query}"


@pytest.fixture
def moto_store(moto_endpoint: str, moto_bucket: str) -> Iterator[S3ObjectStore]:
    store = S3Driver().open_object_store(
        StoreTarget(url=moto_url(moto_endpoint, moto_bucket), wallet=None, options=MOTO_KEYS)
    )
    yield store
    store.close()


@pytest.fixture(scope="session")
def keys() -> SecretKeySource:
    return SecretKeySource(secrets.token_bytes(32))


# --------------------------------------------------------------------------- RGW
@pytest.fixture(scope="session")
def rgw() -> Iterator[RgwEndpoint]:
    missing = missing_binaries()
    if missing:
        message = f"Ceph RGW tests need {', '.join(missing)}: {INSTALL_HINT}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but the RGW isolation tests cannot run. " + message)
        pytest.skip("RGW TESTS SKIPPED (isolation NOT proven). " + message)
    cluster = RgwCluster()
    endpoint = cluster.start()
    try:
        yield endpoint
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def oidc() -> Iterator[OidcIssuer]:
    with OidcIssuer() as issuer:
        yield issuer


@attrs.frozen
class RgwDeployment:
    """A provisioned RGW: bucket, OIDC provider, one role per tenant (RGW's default)."""

    endpoint: RgwEndpoint
    issuer: OidcIssuer
    deployment: Deployment
    provisioner: Provisioner
    keys: SecretKeySource

    @property
    def bucket(self) -> str:
        return self.deployment.bucket

    def admin_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            AWS_ACCESS_KEY_ID=self.endpoint.admin_access_key,
            AWS_SECRET_ACCESS_KEY=self.endpoint.admin_secret_key,
        )
        env.pop("AWS_PROFILE", None)
        return env

    def admin_args(self) -> list[str]:
        d = self.deployment
        return [
            "--bucket",
            d.bucket,
            "--issuer",
            d.issuer,
            "--flavor",
            "rgw",
            "--strategy",
            d.strategy,
            "--admin-principal",
            d.admin_principal or "",
            "--thumbprint",
            d.thumbprints[0],
            "--endpoint",
            self.endpoint.url,
            "--region",
            REGION,
        ]

    def url(self, **params: str) -> str:
        base = {
            "region": REGION,
            "endpoint": self.endpoint.url,
            "role_arn": self.deployment.role_arn,
        }
        base.update(params)
        return f"s3://{self.bucket}?" + "&".join(f"{k}={v}" for k, v in base.items())

    def object_store(
        self, wallet: str, token: Callable[[], str] | None = None, **options: Any
    ) -> S3ObjectStore:
        params = {k: v for k, v in options.items() if isinstance(v, str)}
        others = {k: v for k, v in options.items() if not isinstance(v, str)}
        source = token if token is not None else (lambda: self.issuer.token(wallet))
        return S3Driver().open_object_store(
            StoreTarget(url=self.url(**params), wallet=wallet, token=source, options=others)
        )

    def store(
        self, wallet: str, token: Callable[[], str] | None = None, **options: Any
    ) -> CredentialStore:
        return CredentialStore(self.object_store(wallet, token, **options), self.keys, wallet)

    def admin_store(self) -> S3ObjectStore:
        return S3Driver().open_object_store(
            StoreTarget(
                url=f"s3://{self.bucket}?region={REGION}&endpoint={self.endpoint.url}",
                wallet=None,
                options={
                    "access_key": self.endpoint.admin_access_key,
                    "secret_key": self.endpoint.admin_secret_key,
                },
            )
        )


def make_provisioner(endpoint: RgwEndpoint, deployment: Deployment) -> Provisioner:
    return admin_provisioner(endpoint, deployment, REGION)


@pytest.fixture(scope="session")
def rgw_deployment(rgw: RgwEndpoint, oidc: OidcIssuer, keys: SecretKeySource) -> RgwDeployment:
    deployment = make_rgw_deployment("pc-creds", rgw, oidc)
    provisioner = make_provisioner(rgw, deployment)
    provisioner.apply()
    return RgwDeployment(rgw, oidc, deployment, provisioner, keys)


@pytest.fixture
def tenant(rgw_deployment: RgwDeployment) -> Callable[[], str]:
    """Onboards a fresh wallet per call (its own role)."""

    def make() -> str:
        wallet = random_wallet()
        rgw_deployment.provisioner.onboard(wallet)
        return wallet

    return make
