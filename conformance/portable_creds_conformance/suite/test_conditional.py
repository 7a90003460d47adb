"""conditional: create-only and if-match are atomic where declared, refused where not.

These talk to the tenant's ``ObjectStore`` directly: conditional writes are a storage promise
(``rewrap`` and concurrent writers rely on them), not a CredentialStore feature.
"""

from __future__ import annotations

import threading

import pytest

from portable_creds.errors import ConfigurationError, NotFound, PreconditionFailed

from ..groups import case
from ..run import ConformanceRun
from ._support import expect_error, key_of


def _key(pc: ConformanceRun, name: str) -> str:
    return key_of(pc.a, name)


@case("conditional", "create-only", requires=("create_only",))
def test_create_only(pc: ConformanceRun) -> None:
    objs, key = pc.a.objects, _key(pc, "cond")
    etag = objs.put(key, b"first", if_none_match=True)
    assert etag, "put returned no ETag"
    expect_error(
        PreconditionFailed,
        lambda: objs.put(key, b"second", if_none_match=True),
        "create-only put over an existing object",
    )
    assert objs.get(key).data == b"first", "a refused create-only put changed the object"


@case("conditional", "create-only-race", requires=("create_only",))
def test_create_only_race(pc: ConformanceRun) -> None:
    objs, key = pc.a.objects, _key(pc, "race")
    racers = 8
    barrier = threading.Barrier(racers)
    wins: list[int] = []
    losses: list[int] = []
    other: list[BaseException] = []

    def race(i: int) -> None:
        barrier.wait()
        try:
            objs.put(key, f"racer-{i}".encode(), if_none_match=True)
            wins.append(i)
        except PreconditionFailed:
            losses.append(i)
        except BaseException as exc:  # reported below
            other.append(exc)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not other, f"unexpected errors: {other!r}"
    assert len(wins) == 1, f"{len(wins)} create-only writers won (exactly one must)"
    assert objs.get(key).data == f"racer-{wins[0]}".encode(), "the stored value is not the winner's"


@case("conditional", "if-match", requires=("if_match",))
def test_if_match(pc: ConformanceRun) -> None:
    objs, key = pc.a.objects, _key(pc, "cas")
    first = objs.put(key, b"one")
    assert objs.head(key).etag == first, "head's ETag differs from put's"
    assert objs.get(key).etag == first, "get's ETag differs from put's"
    second = objs.put(key, b"two", if_match=first)
    assert second != first, "the ETag did not change with the content"
    assert objs.get(key).data == b"two"
    expect_error(
        PreconditionFailed,
        lambda: objs.put(key, b"three", if_match=first),
        "if-match put with a stale ETag",
    )
    assert objs.get(key).data == b"two", "a refused if-match put changed the object"


@case("conditional", "if-match-absent", requires=("if_match",))
def test_if_match_absent(pc: ConformanceRun) -> None:
    objs, key = pc.a.objects, _key(pc, "nothing-here")
    expect_error(
        (PreconditionFailed, NotFound),
        lambda: objs.put(key, b"x", if_match='"0123456789abcdef0123456789abcdef"'),
        "if-match put on an absent object",
    )
    expect_error(NotFound, lambda: objs.head(key), "object after a refused if-match put")


@case("conditional", "if-match-race", requires=("if_match",))
def test_if_match_race(pc: ConformanceRun) -> None:
    objs, key = pc.a.objects, _key(pc, "cas-race")
    etag = objs.put(key, b"base")
    racers = 8
    barrier = threading.Barrier(racers)
    wins: list[int] = []
    other: list[BaseException] = []

    def race(i: int) -> None:
        barrier.wait()
        try:
            objs.put(key, f"racer-{i}".encode(), if_match=etag)
            wins.append(i)
        except PreconditionFailed:
            pass
        except BaseException as exc:
            other.append(exc)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not other, f"unexpected errors: {other!r}"
    assert len(wins) == 1, f"{len(wins)} compare-and-swap writers won (exactly one must)"
    assert objs.get(key).data == f"racer-{wins[0]}".encode()


@case("conditional", "undeclared-refused")
def test_undeclared_refused(pc: ConformanceRun) -> None:
    """A condition the store does not declare must be refused, never silently ignored."""
    caps = pc.capabilities
    if caps.create_only and caps.if_match:
        pytest.skip("both conditions are declared: nothing to refuse")
    checks = [c for c in ("create_only", "if_match")
              if not getattr(caps, c) and c not in pc.overrides]
    if not checks:
        pytest.skip("the undeclared conditions were withdrawn by the harness (the store may "
                    "half-support them): nothing to check")
    objs, key = pc.a.objects, _key(pc, "undeclared")
    objs.put(key, b"base")
    if "create_only" in checks:
        expect_error(
            ConfigurationError,
            lambda: objs.put(key, b"over", if_none_match=True),
            "create-only put on a store that does not declare create_only",
        )
    if "if_match" in checks:
        expect_error(
            ConfigurationError,
            lambda: objs.put(key, b"over", if_match="stale"),
            "if-match put on a store that does not declare if_match",
        )
    assert objs.get(key).data == b"base", "a refused conditional put changed the object"
