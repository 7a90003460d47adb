"""Crash safety: SIGKILL a writer at random moments, then check what a reader can see.

A child process (crash_child.py) writes through the real local backend and outbox and prints an
ack after every put that returned. We kill it with SIGKILL after a random delay, many times over
the same state, and after every kill check:

* no partial or corrupt object is visible: every listed object opens (the envelope
  authenticates it) and holds a value that was really written to that service;
* every acknowledged write is readable, and nothing went back in time (a service holds its
  last acknowledged value, or the one in flight when the kill landed);
* the one unacknowledged secret is either stored or still in the outbox (in the killed
  writer's journal slot, which reading the outbox turns into an entry), and a later flush
  delivers it; every outbox file is complete and opens;
* files are 0600, directories 0700.

CI runs CRASH_ITERATIONS (default 10) kills per mode; ``make stress`` sets STRESS=1 for 100.
"""

from __future__ import annotations

import functools
import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from portable_creds import envelope
from portable_creds.local import RESERVED_PREFIX, LocalObjectStore
from portable_creds.outbox import Outbox
from portable_creds.secret_key import SecretKeySource
from portable_creds.store import CredentialStore

from .crash_child import WALLET, open_store, service_of, value_of

CHILD = Path(__file__).with_name("crash_child.py")
ITERATIONS = int(
    os.environ.get("CRASH_ITERATIONS", "100" if os.environ.get("STRESS") == "1" else "10")
)
FLUSH_ENTRIES = 300
READY_TIMEOUT = 60.0


@attrs.define
class ChildRun:
    acks: list[int]
    flushed: int | None
    finished: bool


def _run_and_kill(mode: str, state: Path, start: int, count: int, delay: float) -> ChildRun:
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(repo))
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), mode, str(state), str(start), str(count)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=repo,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    ready = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("ascii", "replace")
            if not line.endswith("\n"):
                break  # a line cut by the kill is not an ack
            lines.append(line.strip())
            if line.strip() == "ready":
                ready.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        assert ready.wait(READY_TIMEOUT), "child never became ready"
        time.sleep(delay)
        finished = proc.poll() is not None
        if not finished:
            os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        thread.join(timeout=30)
    acks = [int(line.split()[1]) for line in lines if line.startswith("ack ")]
    flushed = next((int(line.split()[1]) for line in lines if line.startswith("flushed ")), None)
    assert acks == sorted(acks)
    return ChildRun(acks, flushed, finished)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    SecretKeySource.create_file(tmp_path / "root.key")
    return tmp_path


def _temp_leftovers(state: Path) -> int:
    """Temporary files a kill left behind: proof that the kill landed inside a write."""
    local = sum(1 for p in _walk(state / "objects") if p.name.startswith(RESERVED_PREFIX + "tmp"))
    outbox = sum(1 for p in _walk(state / "outbox") if p.name.startswith(".tmp-"))
    return local + outbox


def _walk(root: Path) -> Iterator[Path]:
    if root.exists():
        yield root
        yield from root.rglob("*")


def _check_modes(state: Path) -> None:
    for path in [*_walk(state / "objects"), *_walk(state / "outbox")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_dir():
            assert mode == 0o700, f"{path} is {mode:o}"
        else:
            assert mode == 0o600, f"{path} is {mode:o}"


def _visible(state: Path, store: CredentialStore) -> dict[str, bytes]:
    """Everything a reader can see, each object opened (so authenticated) through the store."""
    admin = LocalObjectStore(state / "objects")
    seen: dict[str, bytes] = {}
    for info in admin.list(""):
        prefix = f"bots/{WALLET}/credentials/"
        assert info.key.startswith(prefix) and info.key.endswith(".enc"), info.key
        service = info.key[len(prefix) : -len(".enc")]
        seen[service] = store.get(service).reveal()  # IntegrityError here = corrupt/partial
    # Leftovers of killed writes are reserved-name temp files, never listed as objects.
    for path in _walk(state / "objects"):
        if path.is_file() and not path.name.startswith(RESERVED_PREFIX):
            rel = path.relative_to(state / "objects").as_posix()
            assert rel in {f"bots/{WALLET}/credentials/{s}.enc" for s in seen}, rel
    return seen


def _outbox_contents(state: Path, store: CredentialStore) -> dict[str, list[bytes]]:
    """Every outbox file is complete JSON whose blob opens under its recorded context."""
    outbox = Outbox(state / "outbox")
    # First: a killed writer's in-flight entry waits in its journal slot; reading the outbox
    # turns it into an ordinary entry file (Outbox.recover), which is then counted too.
    entries = outbox.pending()
    files = sorted((state / "outbox").glob("*.json")) if (state / "outbox").exists() else []
    assert len(entries) == len(files), "an outbox file is unreadable (partial write?)"
    found: dict[str, list[bytes]] = {}
    for entry in entries:
        assert entry.wallet == WALLET and entry.key == store.key_for(entry.service)
        blob = outbox.read_blob(entry)
        plaintext = envelope.open_blob(
            blob,
            context=envelope.Context(WALLET, entry.service, entry.key),
            resolve_kek=functools.partial(store.keys.kek_for_id, WALLET, entry.service),
        )
        found.setdefault(entry.service, []).append(plaintext)
    return found


def _value_index(service: str, value: bytes, upto: int) -> int:
    for i in range(upto, -1, -1):
        if service_of(i) == service and value_of(i) == value:
            return i
    raise AssertionError(f"{service} holds a value that was never written to it")


@pytest.mark.parametrize("mode", ["local", "outbox"])
def test_kill_during_puts(state: Path, mode: str) -> None:
    rng = random.Random(int(os.environ.get("CRASH_SEED", "0")) or None)
    last_acked: dict[str, int] = {}
    next_index = 0
    in_outbox_only = mid_run_kills = mid_write_kills = seen_leftovers = 0
    for _ in range(ITERATIONS):
        run = _run_and_kill(mode, state, next_index, 100_000, rng.uniform(0.0, 0.5))
        mid_run_kills += not run.finished
        leftovers = _temp_leftovers(state)
        mid_write_kills += leftovers > seen_leftovers
        seen_leftovers = leftovers
        for i in run.acks:
            last_acked[service_of(i)] = i
        inflight = (run.acks[-1] + 1) if run.acks else next_index
        store = open_store(state)
        seen = _visible(state, store)
        # Every acknowledged write is readable and nothing went back in time.
        for service, acked in last_acked.items():
            assert service in seen, f"acknowledged write to {service} is missing"
            index = _value_index(service, seen[service], inflight)
            allowed = {acked} | ({inflight} if service_of(inflight) == service else set())
            assert index in allowed, f"{service}: holds write #{index}, expected one of {allowed}"
        assert set(seen) <= set(last_acked) | {service_of(inflight)}
        if mode == "outbox":
            pending = _outbox_contents(state, store)
            assert set(pending) <= {service_of(inflight)}
            unacked = value_of(inflight)
            stored_now = seen.get(service_of(inflight)) == unacked
            queued = unacked in pending.get(service_of(inflight), [])
            in_outbox_only += queued and not stored_now
            # A later flush delivers whatever the outbox kept, and empties it.
            store.flush()
            assert Outbox(state / "outbox").pending() == []
            final = (
                store.get(service_of(inflight)).reveal()
                if (stored_now or queued or service_of(inflight) in last_acked)
                else None
            )
            if stored_now or queued:
                assert final == unacked
                last_acked[service_of(inflight)] = inflight
        elif seen.get(service_of(inflight)) == value_of(inflight):
            last_acked[service_of(inflight)] = inflight
        _check_modes(state)
        next_index = inflight + 1
    assert mid_run_kills == ITERATIONS, "every kill should land while the child is writing"
    assert len(last_acked) > 0
    print(
        f"\n{mode}: {ITERATIONS} kills, {next_index} writes, "
        f"{mid_write_kills} landed inside a file write (temp file left behind), "
        f"{in_outbox_only} unacked secrets recovered only from the outbox"
    )


def test_kill_during_flush(state: Path) -> None:
    rng = random.Random(int(os.environ.get("CRASH_SEED", "0")) or None)
    partial_flushes = 0
    current: dict[str, bytes] = {}
    base = 1_000
    for iteration in range(ITERATIONS):
        store = open_store(state)
        remote = store.objects
        assert isinstance(remote, LocalObjectStore)
        # Prepare: FLUSH_ENTRIES pending writes (newer values for every service, several
        # generations each) that have not reached the remote yet.
        outbox = Outbox(state / "outbox")
        wanted: dict[str, bytes] = {}
        for k in range(FLUSH_ENTRIES):
            i = base + iteration * FLUSH_ENTRIES + k
            # Mostly distinct services (each needs its own remote write); every tenth entry is
            # a newer generation of an earlier one, which flush must deliver instead of it.
            service = f"flush-{(k - 1 if k % 10 == 9 else k):03d}"
            blob = store.seal(service, value_of(i))
            outbox.add(
                backend_id=remote.backend_id,
                wallet=WALLET,
                service=service,
                key=store.key_for(service),
                blob=blob,
            )
            wanted[service] = value_of(i)
        run = _run_and_kill("flush", state, 0, 0, rng.uniform(0.0, 0.5))
        seen = _visible(state, store)
        pending = _outbox_contents(state, store)
        delivered = 0
        for service, value in wanted.items():
            if seen.get(service) == value:
                delivered += 1
                continue
            # Not delivered yet: the previous value (or nothing) is stored, the new one waits.
            assert seen.get(service) == current.get(service), f"{service} went wrong"
            assert value in pending.get(service, []), f"{service}: newest secret lost"
        if run.flushed is not None:
            assert delivered == len(wanted) and pending == {}
        partial_flushes += 0 < delivered < len(wanted)
        # The next flush completes the job.
        store.flush()
        assert Outbox(state / "outbox").pending() == []
        for service, value in wanted.items():
            assert store.get(service).reveal() == value
        current.update(wanted)
        _check_modes(state)
    assert len(current) == FLUSH_ENTRIES - FLUSH_ENTRIES // 10
    print(f"\nflush: {ITERATIONS} kills, {partial_flushes} landed mid-flush")
