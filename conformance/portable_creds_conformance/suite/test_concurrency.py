"""concurrency: 16 threads of mixed operations on shared and separate services.

Shared services are written by every thread, so any value one of the writers wrote is a
correct read, but a torn, mixed or unreadable blob (IntegrityError) is not. Separate services
have one writer each, so their final value is known exactly. Afterwards every stored object
must open and the listing must be exactly what was written.
"""

from __future__ import annotations

import random
import threading

from portable_creds.errors import NotFound

from ..groups import case
from ..run import ConformanceRun

THREADS = 16
ROUNDS = 12
SHARED = ["shared-0", "shared-1", "shared-2"]


def _value(thread: int, round_: int, service: str) -> bytes:
    # Long enough to span several AES blocks; self-describing so a mix-up is visible.
    return (f"{service}|t{thread}|r{round_}|".encode() * 40)[: 200 + thread * 7 + round_]


@case("concurrency", "mixed-16-threads")
def test_mixed(pc: ConformanceRun) -> None:
    written: dict[str, set[bytes]] = {s: {b"seed"} for s in SHARED}
    for service in SHARED:
        pc.a.put(service, b"seed")
    lock = threading.Lock()
    final: dict[str, bytes | None] = {}
    problems: list[str] = []
    barrier = threading.Barrier(THREADS)

    def worker(t: int) -> None:
        rng = random.Random(t)
        own = f"own-{t:02d}"
        last: bytes | None = None
        barrier.wait()
        try:
            for r in range(ROUNDS):
                op = rng.choice(["put-shared", "get-shared", "put-own", "get-own", "delete-own",
                                 "list"])
                if op == "put-shared":
                    service = rng.choice(SHARED)
                    value = _value(t, r, service)
                    with lock:
                        written[service].add(value)
                    pc.a.put(service, value)
                elif op == "get-shared":
                    service = rng.choice(SHARED)
                    got = pc.a.get(service).reveal()
                    with lock:
                        known = got in written[service]
                    if not known:
                        problems.append(f"{service}: read a value nobody wrote")
                elif op == "put-own":
                    last = _value(t, r, own)
                    pc.a.put(own, last)
                elif op == "get-own":
                    try:
                        got = pc.a.get(own).reveal()
                    except NotFound:
                        got = None
                    if got != last:
                        problems.append(f"{own}: read {got!r:.40} after writing {last!r:.40}")
                elif op == "delete-own":
                    if last is not None:
                        pc.a.delete(own)
                        last = None
                else:
                    listed = pc.a.list()
                    if not set(SHARED) <= set(listed):
                        problems.append("a shared service vanished from the listing")
                    if last is not None and own not in listed:
                        problems.append(f"{own} missing from the listing after its put")
            final[own] = last
        except Exception as exc:
            problems.append(f"thread {t}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not problems, f"{len(problems)} problems, first: {problems[:5]}"

    expected = set(SHARED) | {own for own, value in final.items() if value is not None}
    assert pc.a.list() == sorted(expected), "final listing differs from what was written"
    for own, value in final.items():
        if value is not None:
            assert pc.a.get(own).reveal() == value, f"{own}: final value is not the last write"
    for service in SHARED:
        assert pc.a.get(service).reveal() in written[service], f"{service}: unknown final value"


@case("concurrency", "two-tenants")
def test_two_tenants(pc: ConformanceRun) -> None:
    """Both tenants at once on the same service names: nothing crosses over."""
    problems: list[str] = []
    barrier = threading.Barrier(8)

    def worker(t: int) -> None:
        store, tag = (pc.a, b"A") if t % 2 == 0 else (pc.b, b"B")
        barrier.wait()
        try:
            for r in range(10):
                service = f"svc-{r % 3}"
                store.put(service, tag + f"-{t}-{r}".encode())
                got = store.get(service).reveal()
                if not got.startswith(tag):
                    problems.append(f"tenant {tag!r} read the other tenant's value")
        except Exception as exc:
            problems.append(f"thread {t}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not problems, problems[:5]
    assert pc.a.list() == pc.b.list() == ["svc-0", "svc-1", "svc-2"]
