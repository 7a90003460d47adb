"""teardown: removes every credential of the tenant and nothing of anyone else."""

from __future__ import annotations

from portable_creds import names

from ..groups import case
from ..run import ConformanceRun
from ._support import put_many, secret, snapshot

MANY = 1100


def _neighbours(pc: ConformanceRun) -> dict[str, bytes]:
    """Objects that share a string prefix with tenant A's layout but are not A's credentials."""
    a_tenant = names.tenant_prefix(pc.wallet_a, pc.prefix)  # ".../bots/<A>/"
    keys = [
        a_tenant[:-1] + "-sibling/credentials/x.enc",  # wallet + suffix: another "tenant"
        f"{pc.run_root}/other/{pc.wallet_a}/credentials/same-wallet-other-prefix.enc",
        names.credentials_prefix(pc.wallet_a, pc.prefix)[:-1] + "-old/y.enc",
    ]
    planted = {key: secret(20) for key in keys}
    for key, data in planted.items():
        pc.admin.put(key, data)
    return planted


@case("teardown", "tenant-only")
def test_tenant_only(pc: ConformanceRun) -> None:
    mine = {f"a-{i}": secret() for i in range(25)}
    theirs = {f"b-{i}": secret() for i in range(5)}
    put_many(pc.a, mine)
    put_many(pc.b, theirs)
    planted = _neighbours(pc)

    assert pc.a.teardown() == len(mine)
    assert pc.a.list() == []
    left = [i.key for i in pc.admin.list(pc.credentials_prefix(pc.a))]
    assert left == [], f"teardown left {len(left)} of the tenant's objects"

    assert pc.b.list() == sorted(theirs), "teardown of A changed B's credentials"
    for service, value in theirs.items():
        assert pc.b.get(service).reveal() == value
    for key, data in planted.items():
        assert pc.admin.get(key).data == data, f"teardown of A removed or changed {key}"


@case("teardown", "empty-tenant")
def test_empty_tenant(pc: ConformanceRun) -> None:
    pc.b.put("keep", b"b")
    planted = _neighbours(pc)
    before = snapshot(pc)
    assert pc.a.teardown() == 0
    assert snapshot(pc) == before, "teardown of an empty tenant changed the bucket"
    assert set(planted) <= set(before)


@case("teardown", "over-one-page")
def test_over_one_page(pc: ConformanceRun) -> None:
    items = {f"svc-{i:05d}": b"v" for i in range(MANY)}
    put_many(pc.a, items)
    pc.b.put("keep", b"b")
    assert pc.a.teardown() == MANY
    assert list(pc.admin.list(pc.credentials_prefix(pc.a))) == []
    assert pc.b.get("keep").reveal() == b"b"


@case("teardown", "reuse-after")
def test_reuse_after(pc: ConformanceRun) -> None:
    pc.a.put("old", b"1")
    assert pc.a.teardown() == 1
    assert pc.a.teardown() == 0, "a second teardown found something to delete"
    pc.a.put("new", b"2")
    assert pc.a.list() == ["new"]
    assert pc.a.get("new").reveal() == b"2"
