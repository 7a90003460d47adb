"""The token vendor as an HTTP service: tenants hold only their OIDC token, never the key."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from portable_creds_tencent.driver import CosDriver, build_vendor
from portable_creds_tencent.settings import parse_settings
from portable_creds_tencent.vendor_service import HttpVendor, VendorServer

from portable_creds.driver import StoreTarget
from portable_creds.errors import AccessDenied, ConfigurationError, InvalidToken

from .conftest import AUDIENCE, WALLET_A, WALLET_B, Env, key


@pytest.fixture
def vendor_server(env: Env) -> Iterator[VendorServer]:
    settings = parse_settings(StoreTarget(url=env.vendor_url(), wallet=WALLET_A))
    vendor = build_vendor(
        settings, {"secret_id": env.vendor.secret_id, "secret_key": env.vendor.secret_key}
    )
    with VendorServer(vendor) as server:
        yield server


def tenant(env: Env, server: VendorServer, wallet: str, token: object = None):  # type: ignore[no-untyped-def]
    url = f"{env.url}&mode=token-vendor&vendor_url={server.url}"
    target = StoreTarget(url=url, wallet=wallet, token=token or env.token_for(wallet))  # type: ignore[arg-type]
    return CosDriver().open_object_store(target)


def test_tenants_get_scoped_credentials_over_http(env: Env, vendor_server: VendorServer) -> None:
    a = tenant(env, vendor_server, WALLET_A)
    b = tenant(env, vendor_server, WALLET_B)
    a.put(key(WALLET_A), b"a")
    b.put(key(WALLET_B), b"b")
    with pytest.raises(AccessDenied):
        a.get(key(WALLET_B))
    with pytest.raises(AccessDenied):
        list(a.list("bots/"))
    assert a.get(key(WALLET_A)).data == b"a"
    assert env.double.issued_sessions[-1].tags == ()  # session_tags is off by default


def test_vendor_service_refusals_are_typed(env: Env, vendor_server: VendorServer) -> None:
    with pytest.raises(InvalidToken):
        tenant(env, vendor_server, WALLET_A, token=env.token_for(WALLET_A, lifetime=-1))
    with pytest.raises(InvalidToken):
        tenant(env, vendor_server, WALLET_A, token=lambda: env.idp.mint(WALLET_A, "other-aud"))
    with pytest.raises(AccessDenied):  # a valid token, but for another wallet
        tenant(env, vendor_server, WALLET_A, token=env.token_for(WALLET_B))
    req = urllib.request.Request(
        vendor_server.url + "/v1/credentials",
        data=b'{"wallet": "0x1"}',
        method="POST",
        headers={"Authorization": "Bearer " + env.idp.mint(WALLET_A, AUDIENCE)},
    )
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=10)
    assert exc.value.code == 400
    assert json.loads(exc.value.read())["error"] == "InvalidName"


def test_vendor_url_must_be_https_off_loopback() -> None:
    with pytest.raises(ConfigurationError):
        HttpVendor("http://vendor.example.com")
    assert HttpVendor("https://vendor.example.com").url.endswith("/v1/credentials")


def test_a_scope_too_large_for_one_session_is_a_configuration_error_over_http(
    env: Env, vendor_server: VendorServer
) -> None:
    """Refused by the vendor before STS, and reported as such (not retried as a 5xx)."""
    store = tenant(env, vendor_server, WALLET_A)
    many = [key(WALLET_A, f"service-number-{i:02d}") for i in range(40)]
    api_calls = env.double.stats["api"]
    with pytest.raises(ConfigurationError, match="safe bound"):
        store.scoped(many, read_only=True).get(many[0])
    assert env.double.stats["api"] == api_calls
