"""Fault injection: a real fault proxy between the real drivers and real HTTP endpoints.

The S3 driver (boto3) talks to a moto server and to Ceph RGW (real OIDC -> STS federation), and
the COS driver (cos-python-sdk-v5 and the Tencent API SDK) to the Tencent double, all through
``FaultProxy``; the proxy resets
connections, answers 503/500 bursts and throttling documents, holds responses past the read
timeout, cuts bodies short or flips a bit. For each fault we show:

* transient faults are retried and the operation succeeds, within a bounded time, and the proxy
  proves the fault really hit the client;
* permanent faults surface as the right typed error within a bounded time;
* no operation ever returns wrong data;
* a put that finally fails leaves the secret in the outbox and a later flush delivers it.

The time bounds are correctness bounds ("does not hang"), not performance thresholds.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

from portable_creds import open_store
from portable_creds.errors import (
    AccessDenied,
    IntegrityError,
    PortableCredsError,
    SecretNotDelivered,
    TransientError,
)
from portable_creds.outbox import Outbox
from portable_creds.secret_key import SecretKeySource
from portable_creds.store import CredentialStore
from portable_creds.testing.faultproxy import Fault, FaultProxy, match

from .conftest import WALLET_A

BOUND = 30.0  # seconds: generous; a hang or an unbounded retry loop is what this catches
READ_TIMEOUT = 1.0
KEYS = SecretKeySource(bytes(range(32)))
SECRET = b"sk-live-" + bytes(range(48, 58)) * 8


@attrs.frozen
class Flavor:
    """The error documents one cloud sends, so each driver sees its own service's faults."""

    slowdown: Callable[[], Fault]
    error: Callable[[int, str], Fault]
    api_throttle: Callable[[], Fault]


S3 = Flavor(Fault.s3_slowdown, Fault.s3_error, Fault.sts_throttle)
COS = Flavor(Fault.cos_slowdown, Fault.cos_error, Fault.tencent_throttle)


@attrs.frozen
class FaultEnv:
    """One backend behind the proxy: a store through the proxy and one talking directly."""

    name: str
    proxy: FaultProxy
    flavor: Flavor
    open_via_proxy: Callable[[], CredentialStore]
    direct: CredentialStore


def _query(params: dict[str, str]) -> str:
    return "&".join(f"{k}={v}" for k, v in params.items())


def _s3_env(request: pytest.FixtureRequest, home: Path) -> Iterator[FaultEnv]:
    pytest.importorskip("portable_creds_aws")
    moto_url: str = request.getfixturevalue("moto_url")
    bucket: str = request.getfixturevalue("moto_bucket")
    host, port = moto_url.removeprefix("http://").split(":")

    def open_at(endpoint: str, where: Path) -> CredentialStore:
        params = {
            "endpoint": endpoint,
            "max_attempts": "4",
            "read_timeout": str(READ_TIMEOUT),
            "connect_timeout": "2",
            "role_arn": "arn:aws:iam::123456789012:role/data",
        }
        return open_store(
            f"s3://{bucket}?{_query(params)}",
            wallet=WALLET_A,
            keys=KEYS,
            home=where,
            outbox=Outbox(where / "outbox"),
            token="header.payload.signature",
        )  # moto's STS accepts any token

    with FaultProxy((host, int(port)), lifetime=300) as proxy:
        direct = open_at(moto_url, home / "direct")
        yield FaultEnv("s3", proxy, S3, lambda: open_at(proxy.url, home), direct)
        direct.close()


def _rgw_env(request: pytest.FixtureRequest, home: Path) -> Iterator[FaultEnv]:
    """Ceph RGW with real OIDC -> STS federation; both STS and S3 traffic cross the proxy."""
    deployment = request.getfixturevalue("rgw_deployment")
    wallet = WALLET_A
    deployment.provisioner.onboard(wallet)
    host, port = deployment.endpoint.host_port.split(":")

    def open_at(endpoint: str, where: Path) -> CredentialStore:
        url = deployment.url(
            endpoint=endpoint, max_attempts="4", read_timeout=str(READ_TIMEOUT), connect_timeout="2"
        )
        return open_store(
            url,
            wallet=wallet,
            keys=KEYS,
            home=where,
            outbox=Outbox(where / "outbox"),
            token=lambda: deployment.issuer.token(wallet),
        )

    with FaultProxy((host, int(port)), lifetime=300) as proxy:
        direct = open_at(deployment.endpoint.url, home / "direct")
        yield FaultEnv("rgw", proxy, S3, lambda: open_at(proxy.url, home), direct)
        direct.close()


def _cos_env(request: pytest.FixtureRequest, home: Path) -> Iterator[FaultEnv]:
    pytest.importorskip("portable_creds_tencent")
    from portable_creds_tencent.testing import TencentDouble, TestIdentityProvider

    from ..tencent.conftest import ISSUER, make_env

    logging.getLogger("qcloud_cos").setLevel(logging.CRITICAL)
    with TencentDouble() as double:
        env = make_env(double, TestIdentityProvider(ISSUER))

        def open_at(port: int, where: Path) -> CredentialStore:
            url = env.url.replace(f"port={double.port}", f"port={port}")
            url += "&mode=role-per-tenant&timeout=1&retries=3"
            return open_store(
                url,
                wallet=WALLET_A,
                keys=KEYS,
                home=where,
                outbox=Outbox(where / "outbox"),
                token=env.token_for(WALLET_A),
            )

        with FaultProxy((double.host, double.port), lifetime=300) as proxy:
            direct = open_at(double.port, home / "direct")
            yield FaultEnv("cos", proxy, COS, lambda: open_at(proxy.port, home), direct)
            direct.close()


@pytest.fixture(params=["s3", pytest.param("rgw", marks=pytest.mark.rgw), "cos"])
def fenv(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FaultEnv]:
    makers = {"s3": _s3_env, "rgw": _rgw_env, "cos": _cos_env}
    yield from makers[request.param](request, tmp_path)


@pytest.fixture
def proxy(fenv: FaultEnv) -> FaultProxy:
    return fenv.proxy


@pytest.fixture
def via_proxy(fenv: FaultEnv) -> Iterator[CredentialStore]:
    store = fenv.open_via_proxy()
    fenv.proxy.reset_records()  # count only what the test itself causes
    yield store
    store.close()


@pytest.fixture
def direct(fenv: FaultEnv) -> CredentialStore:
    """The same bucket without the proxy: the ground truth."""
    return fenv.direct


def _timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.monotonic()
    try:
        return fn(), time.monotonic() - start
    except Exception as exc:
        return exc, time.monotonic() - start


TRANSIENT: dict[str, tuple[Callable[[Flavor], Fault], int]] = {
    "reset": (lambda f: Fault.reset(), 2),
    "503-slowdown": (lambda f: f.slowdown(), 2),
    "500-internal": (lambda f: f.error(500, "InternalError"), 2),
    "503-unavailable": (lambda f: f.error(503, "ServiceUnavailable"), 3),
    "slow-response": (lambda f: Fault.slow(READ_TIMEOUT * 3), 1),
    "body-cut-short": (lambda f: Fault.truncated(), 1),
}


# A PUT response has no body, so cutting it short is only meaningful for GET.
TRANSIENT_CASES = [
    (op, name)
    for op in ("put", "get")
    for name in sorted(TRANSIENT)
    if (op, name) != ("put", "body-cut-short")
]


@pytest.mark.parametrize(("op", "name"), TRANSIENT_CASES)
def test_transient_fault_is_retried(
    name: str, op: str, fenv: FaultEnv, via_proxy: CredentialStore, direct: CredentialStore
) -> None:
    proxy = fenv.proxy
    factory, times = TRANSIENT[name]
    if op == "get":
        direct.put("svc", SECRET)
    fault = factory(fenv.flavor)
    proxy.inject(fault, times=times, when=match(method="PUT" if op == "put" else "GET"))
    if op == "put":
        result, elapsed = _timed(lambda: via_proxy.put("svc", SECRET))
        assert result is None, f"put failed: {result!r}"
        assert direct.get("svc").reveal() == SECRET
        assert via_proxy.outbox is not None and via_proxy.outbox.pending() == []
    else:
        result, elapsed = _timed(lambda: via_proxy.get("svc").reveal())
        assert result == SECRET, f"get returned {result!r}"
    assert proxy.count(fault.kind) == times, "the fault did not reach the client"
    assert elapsed < BOUND


PERMANENT: dict[str, Callable[[Flavor], Fault]] = {
    "reset": lambda f: Fault.reset(),
    "503-slowdown": lambda f: f.slowdown(),
    "500-internal": lambda f: f.error(500, "InternalError"),
    "slow-response": lambda f: Fault.slow(READ_TIMEOUT * 3),
    "body-cut-short": lambda f: Fault.truncated(),
}


@pytest.mark.parametrize("name", sorted(set(PERMANENT) - {"body-cut-short"}))
def test_permanent_fault_on_put_keeps_the_secret_in_the_outbox(
    name: str, fenv: FaultEnv, via_proxy: CredentialStore, direct: CredentialStore
) -> None:
    proxy = fenv.proxy
    # Start from "absent": a value left by an earlier case was not written through this
    # store's outbox, so a flush would rightly refuse to overwrite it (issue 12).
    if "svc" in direct.list():
        direct.delete("svc")
    proxy.inject(PERMANENT[name](fenv.flavor), times=None, when=match(method="PUT"))
    result, elapsed = _timed(lambda: via_proxy.put("svc", SECRET))
    assert elapsed < BOUND
    assert isinstance(result, SecretNotDelivered), repr(result)
    assert isinstance(result.cause, TransientError), repr(result.cause)
    assert result.exit_code == TransientError.exit_code
    outbox = via_proxy.outbox
    assert outbox is not None
    [entry] = outbox.pending()
    assert entry.service == "svc" and entry.wallet == WALLET_A
    assert Path(result.outbox_path) == entry.path
    # Once the endpoint recovers, a flush delivers exactly the sealed secret.
    proxy.clear()
    assert via_proxy.flush() == 1
    assert outbox.pending() == []
    assert direct.get("svc").reveal() == SECRET


@pytest.mark.parametrize("name", sorted(PERMANENT))
def test_permanent_fault_on_get_is_a_typed_transient_error(
    name: str, fenv: FaultEnv, via_proxy: CredentialStore, direct: CredentialStore
) -> None:
    proxy = fenv.proxy
    direct.put("svc", SECRET)
    fault = PERMANENT[name](fenv.flavor)
    proxy.inject(fault, times=None, when=match(method="GET"))
    result, elapsed = _timed(lambda: via_proxy.get("svc"))
    assert elapsed < BOUND
    assert isinstance(result, TransientError), repr(result)
    assert proxy.count(fault.kind) >= 2, "a transient failure should have been retried"
    proxy.clear()
    assert via_proxy.get("svc").reveal() == SECRET


def test_access_denied_is_not_retried_and_keeps_the_secret(
    fenv: FaultEnv, via_proxy: CredentialStore, direct: CredentialStore
) -> None:
    proxy = fenv.proxy
    if "svc" in direct.list():  # start from "absent", as above: a flush must not overwrite
        direct.delete("svc")  # a value this store's outbox never wrote (issue 12)
    proxy.inject(fenv.flavor.error(403, "AccessDenied"), times=None, when=match(method="PUT"))
    result, elapsed = _timed(lambda: via_proxy.put("svc", SECRET))
    assert isinstance(result, SecretNotDelivered) and isinstance(result.cause, AccessDenied)
    assert result.exit_code == AccessDenied.exit_code
    assert proxy.count("status") == 1, "a 403 must not be retried"
    assert elapsed < BOUND
    proxy.clear()
    assert via_proxy.flush() == 1
    assert direct.get("svc").reveal() == SECRET


@pytest.mark.parametrize("times", [1, None])
def test_bit_flip_on_the_wire_is_an_integrity_error_never_wrong_data(
    times: int | None, proxy: FaultProxy, via_proxy: CredentialStore, direct: CredentialStore
) -> None:
    """S3 GETs carry no end-to-end checksum here and COS's is not checked on read: the envelope's
    authentication is what stands between a flipped bit and wrong data."""
    direct.put("svc", SECRET)
    proxy.inject(Fault.corrupt(), times=times, when=match(method="GET"))
    result, elapsed = _timed(lambda: via_proxy.get("svc"))
    assert isinstance(result, IntegrityError), repr(result)
    assert elapsed < BOUND
    proxy.clear()
    assert via_proxy.get("svc").reveal() == SECRET


def test_identity_service_throttling_is_retried(fenv: FaultEnv, direct: CredentialStore) -> None:
    """The OIDC -> STS exchange itself is throttled twice (S3: STS ``Throttling``; Tencent:
    ``RequestLimitExceeded``), then succeeds."""
    direct.put("svc", SECRET)
    proxy = fenv.proxy
    proxy.inject(fenv.flavor.api_throttle(), times=2, when=match(method="POST"))
    start = time.monotonic()
    store = fenv.open_via_proxy()
    assert store.get("svc").reveal() == SECRET
    assert proxy.count("status") == 2
    assert time.monotonic() - start < BOUND
    store.close()


def test_random_faults_never_return_wrong_data(
    fenv: FaultEnv, via_proxy: CredentialStore, direct: CredentialStore
) -> None:
    """A seeded storm of mixed faults over puts and gets of a few services.

    A get may fail (typed) but must return either the last acknowledged value of the service or
    one attempted after it (a timed-out put may still have landed); after the storm one flush
    makes every service hold the newest value ever attempted.
    """
    proxy = fenv.proxy
    rng = random.Random(20261128)
    faults: list[Callable[[], Fault]] = [
        Fault.reset,
        fenv.flavor.slowdown,
        lambda: fenv.flavor.error(500, "InternalError"),
        lambda: Fault.slow(READ_TIMEOUT * 2),
        Fault.truncated,
        Fault.corrupt,
    ]
    services = ["alpha", "beta", "gamma"]
    acked: dict[str, bytes] = {}
    attempted: dict[str, list[bytes]] = {s: [] for s in services}
    outcomes = {"ok": 0, "typed-error": 0}
    start = time.monotonic()
    for step in range(36):
        proxy.clear()
        if rng.random() < 0.7:
            fault = rng.choice(faults)()
            # Bit flips only on object reads: identity-service responses travel over TLS in
            # production, which rules corruption out; object bytes are what the envelope guards.
            when = match(method="GET") if fault.kind == "corrupt" else None
            proxy.inject(fault, times=rng.choice([1, 2, 3, 8]), when=when)
        service = rng.choice(services)
        if rng.random() < 0.5 or service not in acked:
            value = f"{service}-v{step}".encode() * 4
            attempted[service].append(value)
            try:
                via_proxy.put(service, value)
            except SecretNotDelivered as exc:
                assert isinstance(exc.cause, PortableCredsError)
                outcomes["typed-error"] += 1
            else:
                acked[service] = value
                attempted[service] = [value]
                outcomes["ok"] += 1
        else:
            try:
                got = via_proxy.get(service).reveal()
            except (TransientError, IntegrityError):
                outcomes["typed-error"] += 1
            else:
                assert got == acked[service] or got in attempted[service], "wrong data"
                outcomes["ok"] += 1
    proxy.clear()
    via_proxy.flush()
    for service in services:
        if attempted[service]:
            assert direct.get(service).reveal() == attempted[service][-1]
    assert outcomes["ok"] > 0 and outcomes["typed-error"] > 0, outcomes
    assert time.monotonic() - start < 36 * BOUND
