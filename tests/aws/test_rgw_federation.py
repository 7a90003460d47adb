"""Web-identity federation against RGW's real STS: bad tokens, refresh, STS calls per lifetime."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from portable_creds_aws.testing.oidc import SigningKey

import portable_creds
from portable_creds.errors import AccessDenied, CredentialsError, InvalidToken
from portable_creds.names import object_key

from .conftest import RgwDeployment

pytestmark = pytest.mark.rgw


class CountingToken:
    """A token source that counts how often it is asked (= STS exchanges attempted)."""

    def __init__(self, mint: Callable[[], str]) -> None:
        self._mint = mint
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            self.calls += 1
        return self._mint()


@pytest.mark.parametrize(
    "kind", ["forged", "expired", "wrong-audience", "no-tag-claim", "unknown-issuer", "garbage"]
)
def test_bad_tokens_get_no_access(
    rgw_deployment: RgwDeployment, tenant: Callable[[], str], kind: str
) -> None:
    w = tenant()
    good = rgw_deployment.store(w)
    good.put("github", b"real")
    issuer = rgw_deployment.issuer
    bad = {
        "forged": lambda: issuer.token(w, key=SigningKey()),
        "expired": lambda: issuer.token(w, ttl=-120),
        "wrong-audience": lambda: issuer.token(w, audience="someone-else"),
        "no-tag-claim": lambda: issuer.token(w, tags=False),
        "unknown-issuer": lambda: issuer.token(w, issuer="http://127.0.0.1:9/"),
        "garbage": lambda: "not.a.jwt",
    }[kind]
    store = rgw_deployment.store(w, token=bad)
    with pytest.raises(CredentialsError) as info:
        store.get("github")
    assert isinstance(info.value, InvalidToken)
    with pytest.raises(InvalidToken):
        store.put("github", b"overwrite attempt")
    assert good.get("github").reveal() == b"real"


def test_token_for_another_wallet_sees_only_that_wallet(
    rgw_deployment: RgwDeployment, tenant: Callable[[], str]
) -> None:
    """The session's identity is the token's, not the wallet the store was opened for: B's
    token is refused by A's role (role-per-tenant: STS refuses; per-tenant: S3 denies)."""
    a, b = tenant(), tenant()
    rgw_deployment.store(a).put("github", b"A")
    mislabelled = rgw_deployment.store(a, token=lambda: rgw_deployment.issuer.token(b))
    with pytest.raises((AccessDenied, InvalidToken)):
        mislabelled.get("github")


def test_one_sts_call_for_1000_ops_from_16_threads(
    rgw_deployment: RgwDeployment, tenant: Callable[[], str]
) -> None:
    w = tenant()
    rgw_deployment.store(w).put("github", b"shared")
    token = CountingToken(lambda: rgw_deployment.issuer.token(w))
    store = rgw_deployment.store(w, token=token, duration="900")
    barrier = threading.Barrier(16)

    def worker(i: int) -> int:
        barrier.wait()  # all 16 hit the cold credentials at once
        ok = 0
        for _ in range(1000 // 16 + (1 if i < 1000 % 16 else 0)):
            ok += store.get("github").reveal() == b"shared"
        return ok

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(worker, range(16)))
    assert sum(results) == 1000
    provider = store.objects.provider
    assert provider is not None
    print(
        f"\nSTS calls for 1000 ops from 16 threads: {provider.sts_calls} "
        f"(token asked {token.calls}x)"
    )
    assert provider.sts_calls == 1
    assert token.calls == 1


def test_five_second_sessions_refresh_transparently(
    rgw_deployment: RgwDeployment, tenant: Callable[[], str]
) -> None:
    w = tenant()
    token = CountingToken(lambda: rgw_deployment.issuer.token(w))
    store = rgw_deployment.store(w, token=token, duration="5")
    store.put("github", b"v0")
    seen_keys = set()
    deadline = time.monotonic() + 13  # > two full 5 s lifetimes
    i = 0
    while time.monotonic() < deadline:
        i += 1
        store.put("github", f"v{i}".encode())
        assert store.get("github").reveal() == f"v{i}".encode()
        assert store.objects.provider is not None
        seen_keys.add(store.objects.provider.credentials().access_key_id)
        time.sleep(0.4)
    assert len(seen_keys) >= 3  # the credentials really were replaced, more than once
    assert token.calls == len(seen_keys)


def test_expired_on_server_refreshes_once_and_retries_once(
    rgw_deployment: RgwDeployment, tenant: Callable[[], str]
) -> None:
    """Our clock lags the server's by 4 s and refresh-ahead is off, so botocore believes the
    credentials valid when RGW already answers 403: the driver must refresh once and retry."""
    w = tenant()
    token = CountingToken(lambda: rgw_deployment.issuer.token(w))

    def lagging_clock() -> dt.datetime:
        return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=4)

    store = rgw_deployment.store(
        w, token=token, duration="5", refresh_windows=(0, 0), time_fetcher=lagging_clock
    )
    store.put("github", b"before")
    assert token.calls == 1
    time.sleep(6)  # past the real expiry, not past the lagging one
    assert store.get("github").reveal() == b"before"
    assert token.calls == 2


def test_token_file_is_reread_on_every_refresh(
    rgw_deployment: RgwDeployment, tenant: Callable[[], str], tmp_path: Path
) -> None:
    w = tenant()
    token_file = tmp_path / "token"
    token_file.write_text(rgw_deployment.issuer.token(w))
    store = portable_creds.open_store(
        rgw_deployment.url(token_file=str(token_file)),
        wallet=w,
        keys=rgw_deployment.keys,
        home=tmp_path / "home",
    )
    store.put("github", b"via-file")
    # Replace the file with a token that must fail; the next exchange must use it.
    token_file.write_text(rgw_deployment.issuer.token(w, audience="wrong"))
    assert store.objects.provider is not None
    store.objects.provider.invalidate()
    with pytest.raises(InvalidToken):
        store.get("github")
    token_file.write_text(rgw_deployment.issuer.token(w))
    assert store.get("github").reveal() == b"via-file"


def test_broker_token_source(
    rgw_deployment: RgwDeployment, tenant: Callable[[], str], tmp_path: Path
) -> None:
    w = tenant()
    issuer = rgw_deployment.issuer
    session = issuer.open_session(w)
    before = issuer.minted
    store = portable_creds.open_store(
        rgw_deployment.url(broker_url=issuer.iss),
        wallet=w,
        keys=rgw_deployment.keys,
        home=tmp_path / "home",
        session_jwt=session,
    )
    store.put("github", b"via-broker")
    assert store.get("github").reveal() == b"via-broker"
    assert issuer.minted == before + 1
    # The broker session ends: the next exchange is refused by the broker, typed.
    issuer.close_session(session)
    assert store.objects.provider is not None
    store.objects.provider.invalidate()
    with pytest.raises(CredentialsError):
        store.get("github")
    # B's key space stays closed to a broker-minted session too.
    with pytest.raises(AccessDenied):
        rgw_deployment.object_store(w).get(object_key(tenant(), "x"))
