"""The AWS tests use the session-wide endpoints of tests/conftest.py; helpers re-exported here."""

from __future__ import annotations

from ..cloud_fixtures import (
    MOTO_KEYS,
    REGION,
    RgwDeployment,
    make_provisioner,
    moto_url,
    random_wallet,
)

__all__ = ["MOTO_KEYS", "REGION", "RgwDeployment", "make_provisioner", "moto_url", "random_wallet"]
