"""The process test_crash.py kills with SIGKILL at random moments.

Usage: ``python crash_child.py MODE STATE_DIR START COUNT``. It writes through the real
``CredentialStore`` / ``LocalObjectStore`` / ``Outbox`` and prints one line per durable step
(``ack <i>`` after the i-th put returned, ``flushed <n>`` after a flush returned). It never
prints secret material: the parent recomputes every value from its index.

MODE ``local``: puts straight into the local backend.
MODE ``outbox``: puts into a "remote" local backend through an outbox (blob lands in the outbox,
then the remote, then the outbox entry is removed).
MODE ``flush``: delivers the outbox the parent prepared, then acks.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from portable_creds.local import LocalObjectStore
from portable_creds.outbox import Outbox
from portable_creds.secret_key import SecretKeySource
from portable_creds.store import CredentialStore

WALLET = "0x" + "5a" * 20
SERVICES = 24


def service_of(i: int) -> str:
    return f"svc-{i % SERVICES:02d}"


def value_of(i: int) -> bytes:
    """Deterministic, distinct per index, large enough that writes take measurable time."""
    return hashlib.sha256(b"crash-%d" % i).hexdigest().encode() * 64


def open_store(state: Path) -> CredentialStore:
    keys = SecretKeySource.from_file(state / "root.key")
    objects = LocalObjectStore(state / "objects", wallet=WALLET)
    return CredentialStore(objects, keys, WALLET, outbox=Outbox(state / "outbox"))


def main(argv: list[str]) -> int:
    mode, state, start, count = argv[1], Path(argv[2]), int(argv[3]), int(argv[4])
    store = open_store(state)
    if mode == "local":
        store.outbox = None
    print("ready", flush=True)
    if mode == "flush":
        delivered = store.flush()
        print(f"flushed {delivered}", flush=True)
        return 0
    for i in range(start, start + count):
        store.put(service_of(i), value_of(i))
        print(f"ack {i}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
