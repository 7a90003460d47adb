"""Issue 12 item 1, tenant side of the token vendor: the OIDC JWT never follows a redirect."""

from __future__ import annotations

import pytest
from portable_creds_tencent.federation import JwksSource
from portable_creds_tencent.vendor_service import HttpVendor

from portable_creds.errors import ConfigurationError
from portable_creds.httpclient import RedirectRefused

from ..redirects import redirect_pair

WALLET = "0x" + "a1" * 20
JWT = "eyJhbGciOiJSUzI1NiJ9.tenant-oidc-jwt.signature"


@pytest.mark.parametrize("code", [302, 307, 308])
def test_http_vendor_never_sends_the_jwt_to_another_origin(code: int) -> None:
    with (
        redirect_pair(code) as (redirector, target),
        pytest.raises(RedirectRefused, match="another origin"),
    ):
        HttpVendor(redirector.url).vend(JWT, WALLET)
    assert target.requests == []
    assert not target.saw(JWT)


def test_jwks_and_vendor_urls_refuse_userinfo_and_plain_http() -> None:
    for bad in ("https://u:pw-secret@issuer.example/jwks", "http://issuer.example/jwks"):
        with pytest.raises(ConfigurationError) as exc:
            JwksSource(url=bad)
        assert "pw-secret" not in str(exc.value)
        with pytest.raises(ConfigurationError):
            HttpVendor(bad)
