"""Fixtures: a running Tencent double, a test OIDC issuer, and a deployment provisioned on it
by the driver's own provisioner (the same code path as ``portable-creds admin cos apply``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
from portable_creds_tencent.admin import Deployment, Provisioner
from portable_creds_tencent.cos_store import CosObjectStore
from portable_creds_tencent.driver import CosDriver
from portable_creds_tencent.settings import StaticKeys, parse_settings
from portable_creds_tencent.testing import (
    AccessKey,
    TencentDouble,
    TestIdentityProvider,
    contract,
)

from portable_creds.driver import StoreTarget

WALLET_A = "0x" + "a1" * 20
WALLET_B = "0x" + "b2" * 20
ISSUER = "https://oidc.portable-creds.test"
AUDIENCE = "portable-creds-test"

logging.getLogger("qcloud_cos").setLevel(logging.CRITICAL)


@pytest.fixture(scope="session")
def idp() -> TestIdentityProvider:
    return TestIdentityProvider(ISSUER)


def contract_problems(d: TencentDouble) -> list[str]:
    """Every call the double answered during a test, checked against the SDK's models."""
    out: list[str] = []
    for ex in list(d.api.exchanges):
        out += contract.request_violations(ex.service, ex.action, ex.params)
        out += contract.response_violations(ex.service, ex.action, ex.response)
    return out


@pytest.fixture
def double() -> Iterator[TencentDouble]:
    with TencentDouble() as d:
        yield d
        # Whatever a test did, the double's requests and responses stayed within the SDK's
        # models (tests/tencent/test_fidelity_contract.py explains the contract).
        assert contract_problems(d) == []


@pytest.fixture
def double_factory() -> Iterator[Callable[..., TencentDouble]]:
    """Doubles with non-default settings (e.g. a small ``role_quota``), stopped afterwards."""
    started: list[TencentDouble] = []

    def make(**kwargs: Any) -> TencentDouble:
        d = TencentDouble(**kwargs).start()
        started.append(d)
        return d

    yield make
    for d in started:
        d.stop()
    assert [p for d in started for p in contract_problems(d)] == []


@attrs.frozen
class Env:
    double: TencentDouble
    idp: TestIdentityProvider
    bucket: str
    url: str
    vendor: AccessKey
    provisioner: Provisioner
    deployment: Deployment

    def token_for(self, wallet: str, **kw: Any) -> Callable[[], str]:
        return lambda: self.idp.mint(wallet, AUDIENCE, **kw)

    def vendor_url(self) -> str:
        return (
            f"{self.url}&mode=token-vendor&issuer={ISSUER}&audience={AUDIENCE}"
            f"&jwks_url={self.double.jwks_url('portable-creds')}"
        )

    def open(
        self,
        wallet: str,
        mode: str = "role-per-tenant",
        token: Callable[[], str] | None = None,
        url_extra: str = "",
        **options: Any,
    ) -> CosObjectStore:
        if mode == "token-vendor":
            url = self.vendor_url()
            options.setdefault("secret_id", self.vendor.secret_id)
            options.setdefault("secret_key", self.vendor.secret_key)
        else:
            url = f"{self.url}&mode={mode}"
        url += url_extra
        target = StoreTarget(
            url=url, wallet=wallet, token=token or self.token_for(wallet), options=options
        )
        return CosDriver().open_object_store(target)

    def admin(self) -> CosObjectStore:
        target = StoreTarget(
            url=self.url,
            wallet=None,
            options={
                "secret_id": self.double.root.secret_id,
                "secret_key": self.double.root.secret_key,
            },
        )
        return CosDriver().open_object_store(target)


def make_env(double: TencentDouble, idp: TestIdentityProvider) -> Env:
    bucket = double.create_bucket("creds")
    logs = double.create_bucket("logs")
    vendor = double.add_user("token-vendor")
    double.attach_user_policy(
        vendor.uin,
        "vendor-may-assume",
        {
            "version": "2.0",
            "statement": [
                {
                    "effect": "allow",
                    "action": ["name/sts:AssumeRole"],
                    "resource": [
                        f"qcs::cam::uin/{double.owner_uin}:roleName/portable-creds-vendor"
                    ],
                }
            ],
        },
    )
    url = (
        f"cos://{bucket}?region={double.region}&owner_uin={double.owner_uin}"
        f"&scheme=http&ip=127.0.0.1&port={double.port}"
    )
    settings = parse_settings(StoreTarget(url=url, wallet=WALLET_A))
    deployment = Deployment(
        settings=settings,
        issuer=ISSUER,
        audiences=(AUDIENCE,),
        jwks=json.loads(json.dumps(idp.jwks())),
        vendor_principals=(f"qcs::cam::uin/{double.owner_uin}:uin/{vendor.uin}",),
        log_bucket=logs,
        require_tls=False,
        allowed_cidrs=("127.0.0.0/8",),
    )
    prov = Provisioner(deployment, StaticKeys(double.root.secret_id, double.root.secret_key))
    prov.apply()
    prov.onboard(WALLET_A)
    prov.onboard(WALLET_B)
    return Env(double, idp, bucket, url, vendor, prov, deployment)


@pytest.fixture
def env(double: TencentDouble, idp: TestIdentityProvider) -> Env:
    return make_env(double, idp)


def key(wallet: str, service: str = "github") -> str:
    return f"bots/{wallet}/credentials/{service}.enc"
