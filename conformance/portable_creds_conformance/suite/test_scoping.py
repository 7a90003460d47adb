"""scoping: a scoped store's credentials are limited by the cloud, not by the client.

Runs only where the driver declares ``scoped_credentials == "cloud"`` (issue 8). The refusals
are checked through the harness's unguarded view of the scoped identity, so a client-side
filter cannot make them pass.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from portable_creds.errors import AccessDenied
from portable_creds.store import CredentialStore

from ..groups import case
from ..run import ConformanceRun
from ._support import expect_error, key_of, secret

OUT_OF_SCOPE = ["read", "write", "delete", "list", "write-in-scope-read-only"]


def _scoped(pc: ConformanceRun) -> CredentialStore:
    try:
        return pc.harness.scoped(pc.a, services=["allowed"], read_only=True)
    except NotImplementedError as exc:
        pytest.skip(f"scoped stores not available: {exc}")


@case("scoping", "in-scope-read")
def test_in_scope_read(pc: ConformanceRun) -> None:
    value = secret()
    pc.a.put("allowed", value)
    assert _scoped(pc).get("allowed").reveal() == value


@case("scoping", "out-of-scope")
@pytest.mark.parametrize("op", OUT_OF_SCOPE)
def test_out_of_scope(pc: ConformanceRun, op: str) -> None:
    allowed, denied = secret(), secret()
    pc.a.put("allowed", allowed)
    pc.a.put("denied", denied)
    objs = pc.harness.unguarded_objects(_scoped(pc))
    attacks: dict[str, Callable[[], object]] = {
        "read": lambda: objs.get(key_of(pc.a, "denied")),
        "write": lambda: objs.put(key_of(pc.a, "denied"), b"x"),
        "delete": lambda: objs.delete(key_of(pc.a, "denied")),
        "list": lambda: list(objs.list(pc.credentials_prefix(pc.a))),
        "write-in-scope-read-only": lambda: objs.put(key_of(pc.a, "allowed"), b"x"),
    }
    expect_error(AccessDenied, attacks[op], f"scoped credentials: {op}")
    assert pc.a.get("allowed").reveal() == allowed
    assert pc.a.get("denied").reveal() == denied
