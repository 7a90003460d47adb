"""The token vendor on a real server stack (issue 12 #9): malformed framing gets a 400 (it used
to raise inside http.server: a traceback and no answer), a stalled body is cut off without
holding a worker thread, sizes are bounded - while real vends keep being served."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from portable_creds_tencent.driver import build_vendor
from portable_creds_tencent.federation import Vendor
from portable_creds_tencent.settings import parse_settings
from portable_creds_tencent.vendor_service import PATH, HttpVendor, VendorServer

from portable_creds.driver import StoreTarget
from portable_creds.wsgi import ServerLimits

from ..rawhttp import connect, exchange, read_until_closed, status_of
from .conftest import WALLET_A, Env


@pytest.fixture
def vendor(env: Env) -> Vendor:
    settings = parse_settings(StoreTarget(url=env.vendor_url(), wallet=WALLET_A))
    return build_vendor(
        settings, {"secret_id": env.vendor.secret_id, "secret_key": env.vendor.secret_key}
    )


@pytest.fixture
def one_worker(vendor: Vendor) -> Iterator[VendorServer]:
    limits = ServerLimits(max_body_bytes=16 * 1024, idle_timeout=1, threads=1)
    with VendorServer(vendor, limits=limits) as server:
        yield server


def _vend_ok(env: Env, server: VendorServer) -> None:
    creds = HttpVendor(server.url).vend(env.token_for(WALLET_A)(), WALLET_A)
    assert creds.access_key_id and creds.session_token


def test_malformed_content_length_gets_a_400(env: Env, one_worker: VendorServer) -> None:
    for value in (b"abc", b"-1", b"99999999999999999999999"):
        answer = exchange(
            one_worker.url,
            b"POST "
            + PATH.encode()
            + b" HTTP/1.1\r\nHost: x\r\nContent-Length: "
            + value
            + b"\r\nConnection: close\r\n\r\n{}",
        )
        assert status_of(answer) in (400, 413), (value, answer[:200])
    _vend_ok(env, one_worker)


def test_oversized_body_is_refused(env: Env, one_worker: VendorServer) -> None:
    answer = exchange(
        one_worker.url,
        b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n"
        b"Connection: close\r\n\r\n" + b"{" * 20000,
    )
    assert answer == b"" or status_of(answer) == 413
    _vend_ok(env, one_worker)


def test_stalled_body_is_cut_off_and_never_holds_the_only_worker(
    env: Env, one_worker: VendorServer
) -> None:
    with connect(one_worker.url) as stalled:
        stalled.sendall(
            b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\n"
            b'Content-Length: 500\r\n\r\n{"wallet": '
        )
        _vend_ok(env, one_worker)  # the single worker thread is not held by the stall
        assert read_until_closed(stalled) == b""  # and the stall is cut off


def test_unknown_path_and_method(one_worker: VendorServer) -> None:
    answer = exchange(
        one_worker.url,
        b"GET " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert status_of(answer) == 405
    answer = exchange(
        one_worker.url,
        b"POST /other HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    assert status_of(answer) == 404


class _HeldVendor(Vendor):
    """Delegates to the real vendor, but holds each vend until released (shutdown tests)."""

    def __init__(self, inner: Vendor) -> None:
        import threading

        self.inner = inner
        self.entered = threading.Event()
        self.release = threading.Event()

    def vend(self, token: str, wallet: str, scope: object = None) -> object:  # type: ignore[override]
        self.entered.set()
        self.release.wait(60)
        return self.inner.vend(token, wallet, scope)  # type: ignore[arg-type]


def test_stop_finishes_a_vend_in_flight_and_refuses_new_connections(
    env: Env, vendor: Vendor
) -> None:
    import threading

    held = _HeldVendor(vendor)
    server = VendorServer(held).start()
    got: dict[str, object] = {}

    def call() -> None:
        got["creds"] = HttpVendor(server.url).vend(env.token_for(WALLET_A)(), WALLET_A)

    caller = threading.Thread(target=call)
    caller.start()
    assert held.entered.wait(60)
    stopper = threading.Thread(target=server.stop)
    stopper.start()  # graceful: waits for the vend in flight
    # Once stopping has begun, no new connection is accepted.
    for _ in range(600):
        try:
            connect(server.url, timeout=5).close()
        except OSError:
            break
        held.entered.wait(0.05)
    else:
        raise AssertionError("the listener stayed open while stopping")
    held.release.set()
    caller.join(60)
    stopper.join(60)
    assert getattr(got.get("creds"), "access_key_id", None)
