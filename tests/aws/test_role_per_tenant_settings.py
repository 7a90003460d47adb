"""``role_arn=...-{wallet}``: one fleet-wide URL, each tenant assumes its own role."""

from __future__ import annotations

import pytest
from portable_creds_aws.admin import policies as P
from portable_creds_aws.admin import tenant_roles as TR
from portable_creds_aws.settings import parse_settings

from portable_creds.driver import StoreTarget
from portable_creds.errors import ConfigurationError

W = "0x" + "ab" * 20
URL = "s3://creds?endpoint=http://127.0.0.1:1&role_arn=arn:aws:iam:::role/pc-{wallet}"


def test_wallet_placeholder_is_filled_with_the_canonical_wallet() -> None:
    s = parse_settings(StoreTarget(url=URL, wallet=W.upper().replace("0X", "0x")))
    assert s.role_arn == f"arn:aws:iam:::role/pc-{W}"


def test_placeholder_without_a_wallet_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="wallet"):
        parse_settings(StoreTarget(url=URL, wallet=None))


def test_rendered_store_url_uses_the_template_and_names_fit() -> None:
    d = P.Deployment(
        bucket="creds", issuer="http://127.0.0.1:1", flavor="rgw", strategy="role-per-tenant"
    )
    assert "{wallet}" in d.store_url()
    assert len(TR.role_name(d, W)) <= 64
    assert TR.wallet_of(d, TR.role_name(d, W)) == W
    assert TR.wallet_of(d, d.role_name) is None
    with pytest.raises(ConfigurationError, match="21"):
        P.Deployment(
            bucket="creds",
            issuer="http://127.0.0.1:1",
            flavor="rgw",
            strategy="role-per-tenant",
            role_name="x" * 22,
        )


def test_tenant_trust_policy_pins_one_lower_case_wallet() -> None:
    d = P.Deployment(
        bucket="creds", issuer="http://127.0.0.1:1", flavor="rgw", strategy="role-per-tenant"
    )
    cond = TR.trust_policy(d, W)["Statement"][0]["Condition"]
    tag = f"aws:RequestTag/{P.TAG_KEY}"
    assert cond["ForAllValues:StringEquals"] == {tag: W}
    assert cond["StringEquals"][tag] == W
    assert cond["StringEquals"]["127.0.0.1:1:sub"] == f"agentkeys:agent:{W}"
    text = str(TR.permission_policy(d, W))
    assert "${" not in text and "PrincipalTag" not in text


def test_rgw_render_defaults_to_role_per_tenant() -> None:
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "portable_creds.cli",
            "admin",
            "s3",
            "--bucket",
            "creds",
            "--issuer",
            "http://127.0.0.1:8080",
            "--flavor",
            "rgw",
            "render",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "${" not in out.stdout
    docs = json.loads(out.stdout)
    assert docs["role"] is None  # no shared role
    assert docs["store_url"].endswith("role_arn=arn:aws:iam:::role/agentkeys-data-role-{wallet}")
    template = docs["tenant_role_template"]
    assert template["name"] == "agentkeys-data-role-0x" + "0" * 40
