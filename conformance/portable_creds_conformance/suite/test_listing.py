"""listing: more than one page of credentials, nothing missing, nothing duplicated."""

from __future__ import annotations

from ..groups import case
from ..run import ConformanceRun
from ._support import key_of, put_many

#: More than S3's 1,000-key page (and COS's), so a driver that forgets the continuation token
#: or repeats a page is caught.
MANY = 1100


@case("listing", "over-one-page")
def test_over_one_page(pc: ConformanceRun) -> None:
    items = {f"svc-{i:05d}": f"v{i}".encode() for i in range(MANY)}
    put_many(pc.a, items)

    listed = pc.a.list()
    assert len(listed) == len(set(listed)), "CredentialStore.list returned duplicates"
    missing = sorted(set(items) - set(listed))
    assert not missing, f"{len(missing)} credentials missing from list(), e.g. {missing[:3]}"
    assert listed == sorted(items)

    raw = [info.key for info in pc.a.objects.list(pc.credentials_prefix(pc.a))]
    dupes = len(raw) - len(set(raw))
    assert dupes == 0, f"ObjectStore.list yielded {dupes} duplicate keys"
    assert raw == sorted(raw), "ObjectStore.list did not yield keys in order"
    assert set(raw) == {key_of(pc.a, s) for s in items}, "raw listing differs from what was put"

    admin = [info.key for info in pc.admin.list(pc.credentials_prefix(pc.a))]
    assert admin == raw, "the admin view lists the tenant's objects differently"


@case("listing", "object-info")
def test_object_info(pc: ConformanceRun) -> None:
    pc.a.put("small", b"x")
    pc.a.put("large", b"y" * 5000)
    infos = {i.key: i for i in pc.a.objects.list(pc.credentials_prefix(pc.a))}
    for service in ("small", "large"):
        key = key_of(pc.a, service)
        stored = pc.admin.get(key)
        assert infos[key].size == len(stored.data), f"listed size of {service} is wrong"
        assert pc.a.objects.head(key).size == len(stored.data), f"head size of {service} is wrong"


@case("listing", "prefix-boundary")
def test_prefix_boundary(pc: ConformanceRun) -> None:
    """A prefix is a string prefix ending in '/', not a directory-name glob."""
    base = pc.credentials_prefix(pc.a)  # ".../<wallet>/credentials/"
    decoys = [base[:-1] + "-old/decoy.enc", base[:-1] + "x.enc", base[:-1] + "2/decoy.enc"]
    for decoy in decoys:
        pc.admin.put(decoy, b"not a credential")
    pc.a.put("real", b"v")
    raw = [info.key for info in pc.a.objects.list(base)]
    assert raw == [key_of(pc.a, "real")], f"listing {base!r} returned {raw}"
    assert pc.a.list() == ["real"]


@case("listing", "empty")
def test_empty(pc: ConformanceRun) -> None:
    assert pc.a.list() == []
    assert list(pc.a.objects.list(pc.credentials_prefix(pc.a))) == []
    pc.b.put("only-b", b"v")
    assert pc.a.list() == [], "tenant A lists tenant B's credential"
