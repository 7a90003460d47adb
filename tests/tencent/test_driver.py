"""``CosDriver`` / ``CosObjectStore`` against the double, in both federation modes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from portable_creds_tencent.driver import CosDriver
from portable_creds_tencent.testing import TencentDouble, TestIdentityProvider

from portable_creds.driver import StoreTarget
from portable_creds.errors import (
    AccessDenied,
    ConfigurationError,
    InvalidToken,
    NotFound,
    PreconditionFailed,
    RemoteUnavailable,
)

from . import sdk
from .conftest import AUDIENCE, WALLET_A, WALLET_B, Env, key, make_env

MODES = ["role-per-tenant", "token-vendor"]


@pytest.mark.parametrize("mode", MODES)
def test_round_trip(env: Env, mode: str) -> None:
    store = env.open(WALLET_A, mode)
    k = key(WALLET_A)
    etag = store.put(k, b"\x00sealed\xff", if_none_match=True)
    got = store.get(k)
    assert (got.data, got.etag) == (b"\x00sealed\xff", etag)
    info = store.head(k)
    assert (info.key, info.size, info.etag) == (k, 8, etag)
    assert [i.key for i in store.list(f"bots/{WALLET_A}/")] == [k]
    store.delete(k)
    store.delete(k)
    with pytest.raises(NotFound):
        store.get(k)
    with pytest.raises(NotFound):
        store.head(k)
    assert list(store.list(f"bots/{WALLET_A}/")) == []
    assert store.capabilities.federation and store.capabilities.server_side_isolation
    assert store.capabilities.create_only
    assert "secret" not in store.backend_id.lower()


@pytest.mark.parametrize("mode", MODES)
def test_isolation_is_enforced_by_the_doubles_cam(env: Env, mode: str) -> None:
    b_store = env.open(WALLET_B, mode)
    b_store.put(key(WALLET_B), b"b-secret")
    a_store = env.open(WALLET_A, mode)
    a_store.put(key(WALLET_A), b"a-secret")
    with pytest.raises(AccessDenied):
        a_store.get(key(WALLET_B))
    with pytest.raises(AccessDenied):
        a_store.head(key(WALLET_B))
    with pytest.raises(AccessDenied):
        a_store.put(key(WALLET_B), b"overwrite")
    with pytest.raises(AccessDenied):
        a_store.delete(key(WALLET_B))
    with pytest.raises(AccessDenied):
        list(a_store.list(f"bots/{WALLET_B}/"))
    with pytest.raises(AccessDenied):
        list(a_store.list("bots/"))
    # B's object is untouched, seen through the administrative view.
    assert env.admin().get(key(WALLET_B)).data == b"b-secret"
    assert env.double.object_keys(env.bucket) == sorted([key(WALLET_A), key(WALLET_B)])


def test_token_vendor_scopes_each_session_without_tags_by_default(env: Env) -> None:
    env.open(WALLET_A, "token-vendor").put(key(WALLET_A), b"x")
    session = env.double.issued_sessions[-1]
    assert session.via == "AssumeRole"
    assert session.role.name == "portable-creds-vendor"
    assert session.tags == ()
    assert f"bots/{WALLET_A}/*" in (session.session_policy_text or "")
    assert WALLET_B not in (session.session_policy_text or "")


def test_token_vendor_refuses_a_token_for_another_wallet(env: Env) -> None:
    with pytest.raises(AccessDenied):
        env.open(WALLET_A, "token-vendor", token=env.token_for(WALLET_B))


@pytest.mark.parametrize("mode", MODES)
def test_bad_tokens_map_to_invalid_token(env: Env, mode: str) -> None:
    forged = TestIdentityProvider(env.idp.issuer, kid=env.idp.kid)
    for token in (
        lambda: forged.mint(WALLET_A, AUDIENCE),
        env.token_for(WALLET_A, lifetime=-1),
        lambda: env.idp.mint(WALLET_A, "wrong-audience"),
        lambda: "not-a-jwt",
    ):
        with pytest.raises(InvalidToken):
            env.open(WALLET_A, mode, token=token)


def test_error_envelope_is_checked_even_with_a_charset() -> None:
    idp = TestIdentityProvider("https://oidc.portable-creds.test")
    with TencentDouble(json_content_type="application/json; charset=utf-8") as d:
        env = make_env(d, idp)
        with pytest.raises(InvalidToken):
            env.open(WALLET_A, token=env.token_for(WALLET_A, lifetime=-1))
        assert env.open(WALLET_A).put(key(WALLET_A), b"x")


def test_configuration_errors(env: Env) -> None:
    with pytest.raises(ConfigurationError):  # wallet never onboarded: no role
        env.open("0x" + "c3" * 20, token=env.token_for("0x" + "c3" * 20))
    with pytest.raises(ConfigurationError):
        CosDriver().open_object_store(
            StoreTarget(url="cos://nobucket?region=ap-guangzhou", wallet=WALLET_A)
        )
    with pytest.raises(ConfigurationError):
        CosDriver().open_object_store(
            StoreTarget(
                url=f"cos://{env.bucket}?region=ap-guangzhou", wallet=WALLET_A, token=lambda: "t"
            )
        )
    with pytest.raises(ConfigurationError):  # no token source
        CosDriver().open_object_store(
            StoreTarget(url=env.url + "&mode=role-per-tenant", wallet=WALLET_A)
        )
    missing = env.url.replace(env.bucket, "missing-" + env.double.appid)
    admin = CosDriver().open_object_store(
        StoreTarget(
            url=missing,
            wallet=None,
            options={
                "secret_id": env.double.root.secret_id,
                "secret_key": env.double.root.secret_key,
            },
        )
    )
    with pytest.raises(ConfigurationError):
        admin.get("k")


def test_create_only_and_if_match(env: Env) -> None:
    for mechanism in ("forbid-overwrite", "if-none-match"):
        store = env.open(WALLET_A, create_only=mechanism)
        k = key(WALLET_A, mechanism)
        store.put(k, b"v1", if_none_match=True)
        with pytest.raises(PreconditionFailed):
            store.put(k, b"v2", if_none_match=True)
        assert store.get(k).data == b"v1"
    store = env.open(WALLET_A)
    with pytest.raises(ConfigurationError):
        store.put(key(WALLET_A), b"x", if_match='"abc"')
    cas = env.open(WALLET_A, if_match="true")
    assert cas.capabilities.if_match
    k = key(WALLET_A, "cas")
    e1 = cas.put(k, b"1")
    e2 = cas.put(k, b"2", if_match=e1)
    with pytest.raises(PreconditionFailed):
        cas.put(k, b"3", if_match=e1)
    assert cas.get(k).etag == e2


def test_pagination_is_hidden(env: Env) -> None:
    store = env.open(WALLET_A, page_size="2")
    keys = [key(WALLET_A, f"svc{i}") for i in range(5)]
    for k in keys:
        store.put(k, b"x")
    before = env.double.stats["cos"]
    assert [i.key for i in store.list(f"bots/{WALLET_A}/credentials/")] == sorted(keys)
    assert env.double.stats["cos"] - before == 3


class FakeClock:
    def __init__(self, start: float) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize("mode", MODES)
def test_credentials_are_refreshed_ahead_of_expiry(env: Env, mode: str) -> None:
    clock = FakeClock(env.double.now())
    store = env.open(
        WALLET_A,
        mode,
        clock=clock,
        duration="900",
        refresh_margin="120",
        token=lambda: env.idp.mint(WALLET_A, AUDIENCE, now=clock.t),
    )
    store.put(key(WALLET_A), b"x")
    issued = len(env.double.issued_sessions)
    clock.t += 700  # still 200 s of validity left: no exchange
    store.get(key(WALLET_A))
    assert len(env.double.issued_sessions) == issued
    clock.t += 100  # inside the refresh margin
    store.get(key(WALLET_A))
    assert len(env.double.issued_sessions) == issued + 1
    assert env.double.issued_sessions[-1].secret_id != env.double.issued_sessions[-2].secret_id


def test_expired_credentials_are_refreshed_on_refusal(env: Env) -> None:
    d = env.double
    store = env.open(
        WALLET_A, token=lambda: env.idp.mint(WALLET_A, AUDIENCE, now=d.now()), duration="900"
    )
    store.put(key(WALLET_A), b"x")
    first = d.issued_sessions[-1]
    d.advance(1000)  # the double now refuses the cached credentials with ExpiredToken
    assert store.get(key(WALLET_A)).data == b"x"
    assert d.issued_sessions[-1] is not first


@pytest.fixture
def store(env: Env) -> Iterator[object]:
    s = env.open(WALLET_A, retries="3")
    s.put(key(WALLET_A), b"payload")
    yield s


def test_transient_failures_are_retried(env: Env, store: object) -> None:
    d = env.double
    d.faults.fail_next(2, status=503)
    before = d.stats["cos"]
    assert store.get(key(WALLET_A)).data == b"payload"  # type: ignore[attr-defined]
    assert d.stats["cos"] - before == 3
    d.faults.drop_next(1)
    assert store.get(key(WALLET_A)).data == b"payload"  # type: ignore[attr-defined]
    d.faults.fail_next(1, status=500, body="empty")  # SDK reports code "Unknown"
    assert store.head(key(WALLET_A)).size == 7  # type: ignore[attr-defined]


def test_persistent_failure_gives_up_after_bounded_attempts(env: Env, store: object) -> None:
    d = env.double
    d.faults.fail_next(50, status=503)
    before = d.stats["cos"]
    with pytest.raises(RemoteUnavailable):
        store.get(key(WALLET_A))  # type: ignore[attr-defined]
    assert d.stats["cos"] - before == 4  # 1 + retries=3, never the SDK's own retries
    d.faults.clear()


def test_body_cut_short_is_retried(env: Env, store: object) -> None:
    d = env.double
    d.faults.cut_body_next(1)
    before = d.stats["cos"]
    assert store.get(key(WALLET_A)).data == b"payload"  # type: ignore[attr-defined]
    assert d.stats["cos"] - before == 2
    assert d.faults.injected >= 1


def test_body_always_cut_short_gives_up_with_a_typed_error(env: Env, store: object) -> None:
    d = env.double
    d.faults.cut_body_next(50)
    before = d.stats["cos"]
    with pytest.raises(RemoteUnavailable) as info:
        store.get(key(WALLET_A))  # type: ignore[attr-defined]
    assert d.stats["cos"] - before == 4  # 1 + retries=3
    assert "gave up" in info.value.message
    d.faults.clear()


def test_slow_responses_time_out_and_are_retried(env: Env) -> None:
    s = env.open(WALLET_A, timeout="1")
    s.put(key(WALLET_A), b"x")
    env.double.faults.delay_next(1, seconds=1.5)
    before = env.double.stats["cos"]
    assert s.get(key(WALLET_A)).data == b"x"
    assert env.double.stats["cos"] - before == 2


def test_sts_failures_are_retried_too(env: Env) -> None:
    env.double.faults.fail_next(1, status=502, target="api")
    env.double.faults.drop_next(1, target="api")
    assert env.open(WALLET_A).put(key(WALLET_A), b"x")


def test_unknown_error_codes_map_by_status(env: Env, store: object) -> None:
    env.double.faults.fail_next(1, status=403, body="empty")
    with pytest.raises(AccessDenied):
        store.get(key(WALLET_A))  # type: ignore[attr-defined]
    env.double.faults.fail_next(1, status=404, body="empty")
    with pytest.raises(NotFound):
        store.get(key(WALLET_A))  # type: ignore[attr-defined]


def test_static_admin_view_sees_everything(env: Env) -> None:
    env.open(WALLET_A).put(key(WALLET_A), b"a")
    env.open(WALLET_B).put(key(WALLET_B), b"b")
    admin = env.admin()
    assert not admin.capabilities.federation
    assert [i.key for i in admin.list("bots/")] == sorted([key(WALLET_A), key(WALLET_B)])
    root_client = sdk.root_cos(env.double)
    assert (
        root_client.get_object(Bucket=env.bucket, Key=key(WALLET_A))["Body"].get_raw_stream().read()
        == b"a"
    )


def test_create_only_put_whose_response_was_lost_is_not_reported_as_a_conflict(env: Env) -> None:
    s = env.open(WALLET_A)
    env.double.faults.drop_next(1, after=True)  # stored, but the client never hears back
    etag = s.put(key(WALLET_A), b"mine", if_none_match=True)
    assert s.get(key(WALLET_A)).etag == etag
    other = env.open(WALLET_A)
    env.double.faults.drop_next(1, after=True)
    with pytest.raises(PreconditionFailed):  # a different body already there: a real conflict
        other.put(key(WALLET_A), b"theirs", if_none_match=True)
    assert s.get(key(WALLET_A)).data == b"mine"


def test_sdk_debug_logging_does_not_leak_credentials(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    store = env.open(WALLET_A)
    store.put(key(WALLET_A), b"x")
    store.get(key(WALLET_A))
    session = env.double.issued_sessions[-1]
    text = "\n".join(r.getMessage() for r in caplog.records)
    for secret_part in (session.secret_key, session.token):
        assert secret_part not in text
    assert "x-cos-security-token" not in text.lower()
