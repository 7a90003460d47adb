"""isolation-handle and isolation-storage: tenant A's identity against tenant B's objects.

The same seven operations run twice. ``isolation-handle`` uses A's handle as the driver gives
it: whichever layer refuses (the cloud, or the driver's own check for local backends), A must
get ``AccessDenied``. ``isolation-storage`` runs only where the driver declares
``server_side_isolation``, with the harness's *unguarded* view of A's identity (no client-side
check left), so the refusal provably comes from the storage service. Either way B's data must
be intact afterwards, and a refusal must not reveal whether B's object exists (no NotFound).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from portable_creds import names
from portable_creds.driver import ObjectStore
from portable_creds.errors import AccessDenied, NotFound, SecretNotDelivered

from ..groups import case
from ..run import ConformanceRun
from ._support import expect_error, key_of, secret

OPS = ["get", "get-absent", "head", "put-new", "overwrite", "delete", "list", "list-parent",
       "store-get", "store-put", "store-list", "store-delete"]


def _unwrapped(fn: Callable[[], object]) -> object:
    """A store with an outbox reports a refused write as SecretNotDelivered(cause=...)."""
    try:
        return fn()
    except SecretNotDelivered as exc:
        raise exc.cause from exc


def _attack(pc: ConformanceRun, objs: ObjectStore, op: str) -> None:
    victim_value, other_value = secret(), secret()
    pc.b.put("victim", victim_value)
    pc.b.put("other", other_value)
    b_creds = pc.credentials_prefix(pc.b)
    victim, planted = key_of(pc.b, "victim"), key_of(pc.b, "planted")
    a_blob = pc.a.seal("victim", b"attacker's value")  # a valid blob, only for the wrong tenant
    as_b = pc.harness.rebuild(pc.a, objects=objs, wallet=pc.wallet_b)
    what = f"tenant A: {op} on tenant B's objects"

    attacks: dict[str, Callable[[], object]] = {
        "get": lambda: objs.get(victim),
        "get-absent": lambda: objs.get(key_of(pc.b, "never-written")),
        "head": lambda: objs.head(victim),
        "put-new": lambda: objs.put(planted, a_blob),
        "overwrite": lambda: objs.put(victim, a_blob),
        "delete": lambda: objs.delete(victim),
        "list": lambda: list(objs.list(b_creds)),
        "store-get": lambda: as_b.get("victim"),
        "store-put": lambda: _unwrapped(lambda: as_b.put("victim", b"attacker's value")),
        "store-list": lambda: as_b.list(),
        "store-delete": lambda: as_b.delete("victim"),
    }
    if op == "list-parent":
        # Listing the whole layout prefix: refused, or limited to A's own objects.
        a_tenant = names.tenant_prefix(pc.wallet_a, pc.prefix)
        try:
            seen = [info.key for info in objs.list(pc.prefix + "/")]
        except AccessDenied:
            seen = []
        foreign = [k for k in seen if not k.startswith(a_tenant)]
        assert not foreign, f"{what}: listing the layout prefix showed {len(foreign)} foreign keys"
    else:
        expect_error(AccessDenied, attacks[op], what)

    assert pc.b.list() == ["other", "victim"], f"{what}: B's listing changed"
    assert pc.b.get("victim").reveal() == victim_value, f"{what}: B's credential changed"
    assert pc.b.get("other").reveal() == other_value
    if op == "put-new":
        expect_error(NotFound, lambda: pc.admin.head(planted), f"{what}: the planted object")


@case("isolation-handle", "cross-tenant")
@pytest.mark.parametrize("op", OPS)
def test_handle(pc: ConformanceRun, op: str) -> None:
    _attack(pc, pc.a.objects, op)


@case("isolation-storage", "cross-tenant")
@pytest.mark.parametrize("op", OPS)
def test_storage(pc: ConformanceRun, op: str) -> None:
    _attack(pc, pc.harness.unguarded_objects(pc.a), op)


@case("isolation-handle", "own-tenant-allowed")
def test_own_tenant_allowed(pc: ConformanceRun) -> None:
    """Control: the same operations on A's own objects work (so the refusals above mean
    isolation, not a broken handle)."""
    objs = pc.a.objects
    pc.a.put("mine", b"v")
    key = key_of(pc.a, "mine")
    assert objs.head(key).size == len(objs.get(key).data)
    assert [i.key for i in objs.list(pc.credentials_prefix(pc.a))] == [key]
    objs.delete(key)
    assert pc.a.list() == []
