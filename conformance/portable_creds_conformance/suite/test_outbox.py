"""outbox: a remote put that fails keeps the sealed blob locally; flush delivers it.

The harness's ``failing_objects`` hook (``FlakyStore`` by default) makes the remote write fail
before it lands, or after it landed (a lost response). The secret must survive either way: the
put raises ``SecretNotDelivered`` naming the local file, that file holds only sealed bytes
(0600, in a 0700 directory), and a later ``flush`` - from a fresh store, as in a new process -
delivers it, exactly once, without ever moving a credential backwards in time.
"""

from __future__ import annotations

import secrets
import stat
from pathlib import Path

import pytest

from portable_creds.errors import NotFound, PortableCredsError, SecretNotDelivered
from portable_creds.outbox import Outbox
from portable_creds.store import CredentialStore

from ..groups import case
from ..run import ConformanceRun
from ._support import expect_error, key_of, leaks, secret


def _outbox(pc: ConformanceRun) -> Outbox:
    return Outbox(pc.workdir / f"outbox-{secrets.token_hex(4)}")


def _failing(pc: ConformanceRun, outbox: Outbox, *, fail_puts: int, after_write: bool
             ) -> CredentialStore:
    objects = pc.harness.failing_objects(pc.a, fail_puts=fail_puts, after_write=after_write)
    return pc.harness.rebuild(pc.a, objects=objects, outbox=outbox)


def _failed_put(store: CredentialStore, service: str, value: bytes) -> SecretNotDelivered:
    exc = expect_error(
        SecretNotDelivered, lambda: store.put(service, value), "put to a failing store"
    )
    assert isinstance(exc, SecretNotDelivered)
    assert isinstance(exc.cause, PortableCredsError), "the cause is not a typed error"
    assert not leaks(str(exc) + repr(exc), value), "the error shows the plaintext"
    return exc


def _check_kept(exc: SecretNotDelivered, value: bytes) -> None:
    path = Path(exc.outbox_path)
    assert path.is_file(), "the outbox file named in the error does not exist"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, "outbox file is not 0600"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700, "outbox directory is not 0700"
    assert not leaks(path.read_bytes().decode("latin-1"), value), "outbox file holds plaintext"


@case("outbox", "fail-then-flush")
@pytest.mark.parametrize("after_write", [False, True], ids=["before-write", "lost-response"])
def test_fail_then_flush(pc: ConformanceRun, after_write: bool) -> None:
    outbox = _outbox(pc)
    value = secret()
    exc = _failed_put(_failing(pc, outbox, fail_puts=1, after_write=after_write), "svc", value)
    _check_kept(exc, value)
    if not after_write:
        expect_error(NotFound, lambda: pc.admin.head(key_of(pc.a, "svc")), "object before flush")
    assert len(outbox.pending(wallet=pc.wallet_a)) == 1

    fresh = pc.harness.rebuild(pc.a, outbox=Outbox(outbox.directory))  # "a new process"
    assert fresh.flush() == 1, "flush did not deliver the pending write"
    assert pc.a.get("svc").reveal() == value
    assert outbox.pending() == [], "the delivered entry is still pending"
    assert fresh.flush() == 0, "a second flush delivered again"


@case("outbox", "flush-failure-keeps-entry")
def test_flush_failure_keeps_entry(pc: ConformanceRun) -> None:
    outbox = _outbox(pc)
    value = secret()
    failing = _failing(pc, outbox, fail_puts=2, after_write=False)
    _failed_put(failing, "svc", value)
    with pytest.raises(PortableCredsError):
        failing.flush()  # the second injected failure
    assert len(outbox.pending()) == 1, "a failed flush lost the pending entry"
    assert failing.flush() == 1
    assert pc.a.get("svc").reveal() == value


@case("outbox", "newer-write-wins")
def test_newer_write_wins(pc: ConformanceRun) -> None:
    """A stale pending write is never delivered over a newer successful one."""
    outbox = _outbox(pc)
    old, new = secret(), secret()
    _failed_put(_failing(pc, outbox, fail_puts=1, after_write=False), "svc", old)
    healthy = pc.harness.rebuild(pc.a, outbox=Outbox(outbox.directory))
    healthy.put("svc", new)
    healthy.flush()
    assert pc.a.get("svc").reveal() == new, "flush moved the credential back to an older value"


@case("outbox", "success-leaves-nothing")
def test_success_leaves_nothing(pc: ConformanceRun) -> None:
    outbox = _outbox(pc)
    store = pc.harness.rebuild(pc.a, outbox=outbox)
    store.put("svc", b"value")
    assert outbox.pending() == [], "a successful put left an outbox entry"
    assert pc.a.get("svc").reveal() == b"value"
