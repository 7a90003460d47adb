"""credentials: temporary credentials refresh transparently; bad identity tokens are refused.

Only for drivers that declare ``federation`` (tenant credentials come from an identity service).
The harness provides the two hooks: ``expire_credentials`` and ``store_with_bad_token``. A bad
token must be refused before anything is written: the identity service says no
(``CredentialsError``, or ``AccessDenied`` when the refusal is a trust-policy denial).
"""

from __future__ import annotations

import pytest

from portable_creds.errors import AccessDenied, CredentialsError
from portable_creds.store import CredentialStore

from ..groups import case
from ..harness import BAD_TOKEN_KINDS, BadTokenKind
from ..run import ConformanceRun
from ._support import expect_error, secret, snapshot


@case("credentials", "refresh-after-expiry")
def test_refresh_after_expiry(pc: ConformanceRun) -> None:
    value = secret()
    pc.a.put("svc", value)
    try:
        pc.harness.expire_credentials(pc.a)
    except NotImplementedError as exc:
        pytest.skip(f"harness hook expire_credentials not implemented: {exc}")
    assert pc.a.get("svc").reveal() == value, "read after expiry did not refresh transparently"
    pc.a.put("after", b"x")
    assert pc.a.list() == ["after", "svc"]


@case("credentials", "bad-token")
@pytest.mark.parametrize("kind", BAD_TOKEN_KINDS)
def test_bad_token(pc: ConformanceRun, kind: BadTokenKind) -> None:
    value = secret()
    pc.a.put("svc", value)
    before = snapshot(pc)
    bad: CredentialStore | None
    try:
        bad = pc.harness.store_with_bad_token(pc.wallet_a, prefix=pc.prefix, kind=kind)
    except NotImplementedError as exc:
        pytest.skip(f"harness hook store_with_bad_token not implemented: {exc}")
    except (CredentialsError, AccessDenied):
        bad = None  # refused while opening: fine, as long as nothing was written (below)
    if bad is not None:
        refused = (CredentialsError, AccessDenied)
        try:
            expect_error(refused, lambda: bad.get("svc"), f"read with a {kind} token")
            expect_error(refused, lambda: bad.put("svc", b"x"), f"write with a {kind} token")
            expect_error(refused, lambda: bad.list(), f"list with a {kind} token")
        finally:
            bad.close()
    assert snapshot(pc) == before, f"something changed in the bucket with a {kind} token"
    assert pc.a.get("svc").reveal() == value
