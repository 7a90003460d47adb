"""Session-wide fixtures shared by every test directory (one moto server, one RGW cluster)."""

from __future__ import annotations

from .cloud_fixtures import (  # noqa: F401 - imported to register the fixtures
    keys,
    moto_bucket,
    moto_endpoint,
    moto_store,
    oidc,
    rgw,
    rgw_deployment,
    tenant,
)
