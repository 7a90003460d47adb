"""LegacyClient and LegacyDriver against the local legacy API double (a real HTTP server)."""

from __future__ import annotations

import base64
import json
import urllib.request

import pytest

from portable_creds import errors
from portable_creds.driver import StoreTarget
from portable_creds.keys import Kek, KeySource
from portable_creds.legacy import LegacyClient, LegacyDriver, LegacyObjectStore
from portable_creds.store import CredentialStore
from portable_creds.testing.legacy_server import LegacyServer

from .conftest import TOKEN, TOKEN_A_ONLY, WALLET_A, WALLET_B


def client(srv: LegacyServer, token: str | None = TOKEN, **kw: object) -> LegacyClient:
    return LegacyClient(srv.url, token=token, backoff=0.0, **kw)  # type: ignore[arg-type]


def test_round_trip_is_plaintext_on_the_server(legacy: LegacyServer) -> None:
    c = client(legacy)
    c.store(WALLET_A, "openai", b"sk-\x00\xffraw")
    assert c.read(WALLET_A, "openai") == b"sk-\x00\xffraw"
    # the documented wire format: std base64 of the raw bytes, no encryption at all
    assert legacy.data[(WALLET_A, "openai")] == b"sk-\x00\xffraw"
    c.store(WALLET_A, "openai", b"second")  # upsert
    assert c.read(WALLET_A, "openai") == b"second"


def test_list_sorted_and_per_wallet(legacy: LegacyServer) -> None:
    c = client(legacy)
    for svc in ("zeta", "alpha", "Mid"):
        c.store(WALLET_A, svc, b"x")
    c.store(WALLET_B, "other", b"y")
    assert c.list(WALLET_A) == sorted(["zeta", "alpha", "Mid"])
    assert c.list(WALLET_B) == ["other"]


def test_teardown_removes_only_that_wallet(legacy: LegacyServer) -> None:
    c = client(legacy)
    c.store(WALLET_A, "a", b"1")
    c.store(WALLET_B, "b", b"2")
    c.teardown(WALLET_A)
    assert c.list(WALLET_A) == []
    assert c.read(WALLET_B, "b") == b"2"


def test_wallet_is_canonicalised(legacy: LegacyServer) -> None:
    c = client(legacy)
    c.store(WALLET_A.upper().replace("0X", "0x"), "svc", b"v")
    assert c.read(WALLET_A, "svc") == b"v"


@pytest.mark.parametrize(
    ("token", "wallet", "expected"),
    [
        (None, WALLET_A, errors.CredentialsError),
        ("wrong", WALLET_A, errors.CredentialsError),
        ("old-token", WALLET_A, errors.ExpiredCredentials),
        (TOKEN_A_ONLY, WALLET_B, errors.AccessDenied),
    ],
)
def test_auth_errors_map_to_types(
    legacy: LegacyServer, token: str | None, wallet: str, expected: type[Exception]
) -> None:
    with pytest.raises(expected) as info:
        client(legacy, token).list(wallet)
    assert info.value.request_id  # the server's X-Request-Id is carried along


def test_scoped_token_works_for_its_wallet(legacy: LegacyServer) -> None:
    client(legacy).store(WALLET_A, "s", b"v")
    assert client(legacy, TOKEN_A_ONLY).read(WALLET_A, "s") == b"v"


def test_not_found(legacy: LegacyServer) -> None:
    with pytest.raises(errors.NotFound):
        client(legacy).read(WALLET_A, "missing")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, errors.InvalidName),
        (409, errors.PreconditionFailed),
        (410, errors.ExpiredCredentials),
        (500, errors.RemoteUnavailable),
    ],
)
def test_documented_error_statuses(
    legacy: LegacyServer, status: int, expected: type[Exception]
) -> None:
    legacy.fail_next(1, status)
    with pytest.raises(expected):
        client(legacy, retries=0).list(WALLET_A)


def test_5xx_is_retried_then_succeeds(legacy: LegacyServer) -> None:
    client(legacy).store(WALLET_A, "s", b"v")
    legacy.fail_next(2, 500)
    assert client(legacy, retries=2).read(WALLET_A, "s") == b"v"
    legacy.fail_next(3, 500)
    with pytest.raises(errors.RemoteUnavailable):
        client(legacy, retries=2).read(WALLET_A, "s")


def test_4xx_is_not_retried(legacy: LegacyServer) -> None:
    before = len(legacy.requests)
    with pytest.raises(errors.CredentialsError):
        client(legacy, "wrong", retries=5).list(WALLET_A)
    assert len(legacy.requests) - before == 1


def test_unreachable_is_remote_unavailable() -> None:
    with LegacyServer() as srv:
        url = srv.url
    with pytest.raises(errors.RemoteUnavailable):
        LegacyClient(url, token=TOKEN, retries=1, backoff=0.0).list(WALLET_A)


def test_not_a_legacy_server_is_a_configuration_error(legacy: LegacyServer) -> None:
    # /audit/query answers JSON, but a wrong base path gives the documented 404 envelope
    with pytest.raises(errors.ConfigurationError):
        LegacyClient("ftp://x", token=TOKEN)


def test_server_error_envelope_is_documented_shape(legacy: LegacyServer) -> None:
    req = urllib.request.Request(f"{legacy.url}/credential/list?agent_id={WALLET_A}")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req)
    assert info.value.code == 401
    doc = json.loads(info.value.read())
    assert doc["error"] == "UNAUTHORIZED" and isinstance(doc["message"], str)


def test_bad_base64_is_rejected_by_server(legacy: LegacyServer) -> None:
    body = json.dumps({"agent_id": WALLET_A, "service": "s", "ciphertext": "***"}).encode()
    req = urllib.request.Request(
        f"{legacy.url}/credential/store",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req)
    assert info.value.code == 400
    assert json.loads(info.value.read())["error"] == "BAD_REQUEST"


def test_audit_query_newest_first(legacy: LegacyServer) -> None:
    c = client(legacy)
    c.store(WALLET_A, "s", b"v")
    c.read(WALLET_A, "s")
    with pytest.raises(errors.NotFound):
        c.read(WALLET_A, "nope")
    events = c.audit_query(agent=WALLET_A)
    assert [(e["action"], e["result"]) for e in events[:3]] == [
        ("read", "NOT_FOUND"),
        ("read", "ok"),
        ("store", "ok"),
    ]


def test_probe_reports_status_and_server_date(legacy: LegacyServer) -> None:
    ok = client(legacy).probe(WALLET_A)
    assert ok.status == 200 and ok.error is None and ok.server_time is not None
    bad = client(legacy, "wrong").probe(WALLET_A)
    assert bad.status == 401 and isinstance(bad.error, errors.CredentialsError)


# -- as a driver under CredentialStore ---------------------------------------------------


class FixedKeys(KeySource):
    def __init__(self) -> None:
        self.kek = Kek("test.v1", b"\x07" * 32)

    def current_kek(self, wallet: str, service: str) -> Kek:
        return self.kek

    def kek_for_id(self, wallet: str, service: str, kek_id: str) -> Kek:
        if kek_id != self.kek.kek_id:
            raise errors.IntegrityError()
        return self.kek


def test_driver_stores_sealed_blobs(legacy: LegacyServer) -> None:
    objects = LegacyDriver().open_object_store(
        StoreTarget(legacy.url, WALLET_A, options={"token": TOKEN})
    )
    store = CredentialStore(objects, FixedKeys(), WALLET_A)
    store.put("openai", b"sk-live-123")
    assert store.get("openai").reveal() == b"sk-live-123"
    assert store.list() == ["openai"]
    raw = legacy.data[(WALLET_A, "openai")]
    assert b"sk-live-123" not in raw and raw.startswith(b"PCE")
    # a plaintext value stored by an upstream caller does not open as a sealed blob
    client(legacy).store(WALLET_A, "upstream-plain", b"plain")
    with pytest.raises(errors.IntegrityError):
        store.get("upstream-plain")


def test_driver_scopes_to_wallet_and_refuses_what_the_api_cannot_do(legacy: LegacyServer) -> None:
    objects = LegacyDriver().open_object_store(
        StoreTarget(legacy.url, WALLET_A, options={"token": TOKEN})
    )
    assert isinstance(objects, LegacyObjectStore)
    assert objects.ENCRYPTS_AT_REST is False
    key_b = f"bots/{WALLET_B}/credentials/x.enc"
    with pytest.raises(errors.AccessDenied):
        objects.get(key_b)
    with pytest.raises(errors.AccessDenied):
        list(objects.list(f"bots/{WALLET_B}/"))
    key_a = f"bots/{WALLET_A}/credentials/x.enc"
    with pytest.raises(errors.ConfigurationError):
        objects.put(key_a, b"x", if_none_match=True)
    with pytest.raises(errors.ConfigurationError):
        objects.delete(key_a)
    with pytest.raises(errors.InvalidName):
        objects.get(f"bots/{WALLET_A}/other/x")
    assert legacy.data == {}


def test_driver_token_from_target_token_source(legacy: LegacyServer) -> None:
    objects = LegacyDriver().open_object_store(
        StoreTarget(legacy.url, WALLET_A, token=lambda: TOKEN)
    )
    objects.put(f"bots/{WALLET_A}/credentials/k.enc", b"blob")
    assert base64.b64encode(legacy.data[(WALLET_A, "k")]) == base64.b64encode(b"blob")
