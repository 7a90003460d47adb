"""Concurrency stress: 32 threads x 2 tenants x mixed operations, final state checked per object.

One ``CredentialStore`` per tenant is shared by all 32 threads (the store and the driver must be
thread-safe). Each thread owns a disjoint set of services and keeps a model of them, so the
final state is known exactly; reads of other threads' services are allowed to race but must
return either NotFound or a value written for that very tenant and service, never another's.
After the run every object is compared with the models, one by one, and each tenant's listing
must equal its model exactly.

CI runs STRESS_OPS (default 2,000) operations per backend; ``make stress`` sets STRESS=1 for
20,000.
"""

from __future__ import annotations

import os
import random
import secrets
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import attrs
import pytest

from portable_creds.errors import NotFound
from portable_creds.store import CredentialStore

THREADS = 32
SERVICES_PER_THREAD = 3
OPS = int(os.environ.get("STRESS_OPS", "20000" if os.environ.get("STRESS") == "1" else "2000"))


@attrs.frozen
class Backend:
    name: str
    new_tenant: Callable[[], str]
    store_for: Callable[[str], CredentialStore]


def _value(wallet: str, service: str, version: int) -> bytes:
    return f"{wallet}|{service}|{version}|".encode() + secrets.token_hex(16).encode()


def _belongs(value: bytes, wallet: str, service: str) -> bool:
    return value.startswith(f"{wallet}|{service}|".encode())


@attrs.define
class Worker:
    wallet: str
    store: CredentialStore
    services: list[str]
    peers: list[str]
    rng: random.Random
    model: dict[str, bytes] = attrs.Factory(dict)
    version: int = 0
    counts: dict[str, int] = attrs.Factory(dict)

    def step(self) -> None:
        roll = self.rng.random()
        own = self.rng.choice(self.services)
        if roll < 0.30:
            self.version += 1
            value = _value(self.wallet, own, self.version)
            self.store.put(own, value)
            self.model[own] = value
            self._count("put")
        elif roll < 0.50:
            self._expect_own(own)
            self._count("get-own")
        elif roll < 0.70:
            peer = self.rng.choice(self.peers)
            try:
                got = self.store.get(peer).reveal()
            except NotFound:
                self._count("get-peer-missing")
            else:
                assert _belongs(got, self.wallet, peer), "a read returned another key's data"
                self._count("get-peer")
        elif roll < 0.80:
            if own in self.model:
                self.store.delete(own)
                del self.model[own]
            else:
                with pytest.raises(NotFound):
                    self.store.delete(own)
            self._count("delete")
        elif roll < 0.90:
            listed = set(self.store.list())
            assert listed <= set(self.peers) | set(self.services), "foreign names listed"
            assert listed & set(self.services) == set(self.model), "own services mislisted"
            self._count("list")
        else:
            assert self.store.exists(own) == (own in self.model)
            self._count("exists")

    def _expect_own(self, service: str) -> None:
        if service in self.model:
            assert self.store.get(service).reveal() == self.model[service]
        else:
            with pytest.raises(NotFound):
                self.store.get(service)

    def _count(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1


def run_stress(backend: Backend, ops: int = OPS, seed: int = 7) -> dict[str, int]:
    wallets = [backend.new_tenant(), backend.new_tenant()]
    stores = {w: backend.store_for(w) for w in wallets}
    workers: list[Worker] = []
    all_services: dict[str, list[str]] = {w: [] for w in wallets}
    for t in range(THREADS):
        wallet = wallets[t % 2]
        services = [f"t{t:02d}-s{k}" for k in range(SERVICES_PER_THREAD)]
        all_services[wallet].extend(services)
        workers.append(Worker(wallet, stores[wallet], services, [], random.Random(seed * 1000 + t)))
    for worker in workers:
        worker.peers = [s for s in all_services[worker.wallet] if s not in worker.services]
    per_thread = ops // THREADS
    start = threading.Barrier(THREADS)

    def run(worker: Worker) -> None:
        start.wait(timeout=120)
        for _ in range(per_thread):
            worker.step()

    with ThreadPoolExecutor(THREADS) as pool:
        for future in [pool.submit(run, w) for w in workers]:
            future.result()  # re-raises the first assertion or error of any thread

    # Final state, object by object, against the union of the models.
    for wallet in wallets:
        expected = {s: v for w in workers if w.wallet == wallet for s, v in w.model.items()}
        store = stores[wallet]
        assert store.list() == sorted(expected)
        for service in all_services[wallet]:
            if service in expected:
                assert store.get(service).reveal() == expected[service], service
            else:
                assert not store.exists(service), service
    totals: dict[str, int] = {}
    for worker in workers:
        for kind, n in worker.counts.items():
            totals[kind] = totals.get(kind, 0) + n
    assert sum(totals.values()) == per_thread * THREADS
    for store in stores.values():
        store.close()
    return totals


@pytest.fixture(params=[pytest.param("rgw", marks=pytest.mark.rgw), "cos"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "rgw":
        deployment = request.getfixturevalue("rgw_deployment")
        tenant = request.getfixturevalue("tenant")
        yield Backend("rgw", tenant, deployment.store)
    else:
        yield request.getfixturevalue("cos_backend")


def test_32_threads_2_tenants_mixed_operations(backend: Backend) -> None:
    totals = run_stress(backend)
    # Every kind of operation really ran, including racing reads of other threads' keys.
    for kind in ("put", "get-own", "get-peer", "delete", "list", "exists"):
        assert totals.get(kind, 0) > 0, (kind, totals)
    print(f"\n{backend.name}: {OPS} ops, {totals}")
