"""The outbox journal: sequence numbers are monotonic (not wall-clock), and a successful put
pays no fsync while a failed one is durable before it is reported (issues 12 and 13)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from portable_creds import outbox as outbox_module
from portable_creds.errors import SecretNotDelivered
from portable_creds.outbox import Outbox
from portable_creds.store import CredentialStore

from .memstore import MemoryStore
from .test_store import RotatingKeys

WALLET = "0x" + "ab" * 20


@pytest.fixture
def store(tmp_path: Path) -> CredentialStore:
    return CredentialStore(MemoryStore(), RotatingKeys(), WALLET, outbox=Outbox(tmp_path / "ob"))


def test_sequence_is_monotonic_even_when_the_clock_goes_back(
    store: CredentialStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    mem = store.objects
    assert isinstance(mem, MemoryStore)
    clock = iter(range(10**12, 0, -10**9))  # every reading earlier than the last
    monkeypatch.setattr(outbox_module.time, "time_ns", lambda: next(clock))
    monkeypatch.setattr(outbox_module.time, "time", lambda: next(clock) / 1e9)
    mem.fail_puts = 2
    for value in (b"older", b"newer"):
        with pytest.raises(SecretNotDelivered):
            store.put("svc", value)
    assert store.outbox is not None
    first, second = store.outbox.pending()
    assert second.seq > first.seq
    assert store.flush() == 1
    assert store.get("svc").reveal() == b"newer"


def test_success_path_does_not_fsync_and_failure_path_does(
    store: CredentialStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    store.put("svc", b"first")  # creating the outbox directory itself is made durable once
    monkeypatch.setattr(outbox_module.os, "fsync", counting)
    store.put("svc", b"value")
    assert calls == []
    mem = store.objects
    assert isinstance(mem, MemoryStore)
    mem.fail_puts = 1
    with pytest.raises(SecretNotDelivered) as info:
        store.put("svc", b"value-2")
    assert len(calls) == 2  # the entry and its directory, before the failure was raised
    assert Path(info.value.outbox_path).is_file()


def test_files_are_private(store: CredentialStore) -> None:
    mem = store.objects
    assert isinstance(mem, MemoryStore) and store.outbox is not None
    store.put("svc", b"v")
    mem.fail_puts = 1
    with pytest.raises(SecretNotDelivered):
        store.put("svc", b"w")
    directory = store.outbox.directory
    assert directory.stat().st_mode & 0o777 == 0o700
    for path in directory.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path
