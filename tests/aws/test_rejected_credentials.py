"""Federated credentials the service rejects are exchanged again once, then the call is retried.

A session can be rejected before its expiry (revoked server-side, or an STS answer garbled on a
plain-HTTP link); the store must recover with one re-exchange instead of failing until the
session would have expired. On RGW, through the fault proxy, with the real STS flow.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from portable_creds.errors import CredentialsError
from portable_creds.testing.faultproxy import Fault, FaultProxy, match

from ..cloud_fixtures import RgwDeployment

pytestmark = pytest.mark.rgw


def _sts_calls(proxy: FaultProxy) -> int:
    return sum(1 for r in proxy.records if r.request.method == "POST")


@pytest.mark.parametrize("code", ["InvalidAccessKeyId", "SignatureDoesNotMatch"])
def test_rejected_session_is_exchanged_once_and_the_call_retried(
    rgw_deployment: RgwDeployment, tenant: Callable[[], str], code: str
) -> None:
    wallet = tenant()
    host, port = rgw_deployment.endpoint.host_port.split(":")
    with FaultProxy((host, int(port))) as proxy:
        store = rgw_deployment.store(wallet, endpoint=proxy.url)
        store.put("svc", b"value")
        assert _sts_calls(proxy) == 1
        proxy.inject(Fault.s3_error(403, code, "rejected"), times=1, when=match(method="GET"))
        assert store.get("svc").reveal() == b"value"
        assert _sts_calls(proxy) == 2  # exactly one re-exchange
        assert store.get("svc").reveal() == b"value"
        assert _sts_calls(proxy) == 2  # and the new session is kept


def test_a_session_rejected_again_after_the_re_exchange_is_a_credentials_error(
    rgw_deployment: RgwDeployment, tenant: Callable[[], str]
) -> None:
    wallet = tenant()
    host, port = rgw_deployment.endpoint.host_port.split(":")
    with FaultProxy((host, int(port))) as proxy:
        store = rgw_deployment.store(wallet, endpoint=proxy.url)
        store.put("svc", b"value")
        proxy.inject(
            Fault.s3_error(403, "InvalidAccessKeyId", "rejected"), times=2, when=match(method="GET")
        )
        with pytest.raises(CredentialsError):
            store.get("svc")
        assert _sts_calls(proxy) == 2  # one re-exchange, never a loop
