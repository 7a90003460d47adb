"""Endpoints for the evidence tests: a moto server (real HTTP) started by the suite itself."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

WALLET_A = "0x" + "a1" * 20
WALLET_B = "0x" + "b2" * 20


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    pytest.importorskip("boto3")
    server_mod = pytest.importorskip("moto.server")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def admin_s3(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard"}),
    )


@pytest.fixture
def moto_bucket(moto_url: str) -> str:
    """A fresh bucket per test (moto state is process-global)."""
    name = f"evidence-{uuid.uuid4().hex[:12]}"
    admin_s3(moto_url).create_bucket(Bucket=name)
    return name


# -- RGW: the session-wide cluster of tests/conftest.py (tests/cloud_fixtures.py) ------------


# -- the Tencent double (the Tencent helper's environment builder) -----------------------------
@pytest.fixture
def cos_backend(tmp_path: Path) -> Iterator[Any]:
    pytest.importorskip("portable_creds_tencent")
    from portable_creds_tencent.testing import TencentDouble, TestIdentityProvider

    from portable_creds import open_store
    from portable_creds.secret_key import SecretKeySource

    from ..tencent.conftest import AUDIENCE, ISSUER, make_env
    from .test_stress import Backend

    logging.getLogger("qcloud_cos").setLevel(logging.CRITICAL)
    keys_ = SecretKeySource(secrets.token_bytes(32))
    with TencentDouble() as double:
        env = make_env(double, TestIdentityProvider(ISSUER))

        def new_tenant() -> str:
            wallet = "0x" + secrets.token_hex(20)
            env.provisioner.onboard(wallet)
            return wallet

        def store_for(wallet: str) -> Any:
            return open_store(
                env.url + "&mode=role-per-tenant",
                wallet=wallet,
                keys=keys_,
                home=tmp_path / wallet,
                outbox=False,
                token=lambda: env.idp.mint(wallet, AUDIENCE),
            )

        yield Backend("cos", new_tenant, store_for)
