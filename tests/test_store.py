"""CredentialStore behaviour: sealing at the edge, outbox durability, listing, rewrap, hygiene."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from portable_creds import envelope
from portable_creds.errors import (
    IntegrityError,
    InvalidName,
    NotFound,
    PayloadTooLarge,
    RemoteUnavailable,
    SecretNotDelivered,
)
from portable_creds.keys import Kek, KeySource
from portable_creds.outbox import Outbox
from portable_creds.store import CredentialStore, Secret

from .memstore import MemoryStore

WALLET_A = "0x" + "Ab" * 20
WALLET_B = "0x" + "cd" * 20


class RotatingKeys(KeySource):
    """Per-version random KEKs; ``version`` selects the one used for sealing."""

    def __init__(self) -> None:
        self.version = 1
        self._keys: dict[int, bytes] = {}

    def _kek(self, version: int) -> Kek:
        key = self._keys.setdefault(version, os.urandom(32))
        return Kek(f"test.v{version}", key)

    def current_kek(self, wallet: str, service: str) -> Kek:
        return self._kek(self.version)

    def kek_for_id(self, wallet: str, service: str, kek_id: str) -> Kek:
        if not kek_id.startswith("test.v") or int(kek_id[6:]) not in self._keys:
            raise IntegrityError()
        return self._kek(int(kek_id[6:]))


@pytest.fixture
def mem() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def keys() -> RotatingKeys:
    return RotatingKeys()


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "outbox")


def make(
    mem: MemoryStore, keys: KeySource, outbox: Outbox | None = None, wallet: str = WALLET_A
) -> CredentialStore:
    return CredentialStore(mem, keys, wallet, outbox=outbox)


def test_put_get_roundtrip_and_layout(mem: MemoryStore, keys: RotatingKeys) -> None:
    store = make(mem, keys)
    store.put("openrouter", "sk-or-v1-abc")
    key = f"bots/{WALLET_A.lower()}/credentials/openrouter.enc"
    assert list(mem.objects) == [key]
    assert b"sk-or-v1-abc" not in mem.objects[key]
    assert store.get("openrouter").reveal() == b"sk-or-v1-abc"


def test_wallet_is_lowercased_and_service_case_preserved(
    mem: MemoryStore, keys: RotatingKeys
) -> None:
    store = make(mem, keys)
    store.put("GitHub.Token", b"x")
    assert store.wallet == WALLET_A.lower()
    assert store.list() == ["GitHub.Token"]


def test_secret_repr_is_masked() -> None:
    secret = Secret(b"sk-live-123456")
    assert "sk-live" not in repr(secret) and "sk-live" not in str(secret)
    assert repr(secret) == "Secret(<14 bytes>)"
    assert secret == Secret(b"sk-live-123456") and secret != Secret(b"other")


@pytest.mark.parametrize("service", ["", ".hidden", "a/b", "../x", "a..b", "x" * 65, "sp ace", "é"])
def test_bad_service_names_rejected_and_nothing_written(
    mem: MemoryStore, keys: RotatingKeys, service: str
) -> None:
    store = make(mem, keys)
    with pytest.raises(InvalidName):
        store.put(service, b"x")
    assert mem.objects == {}


@pytest.mark.parametrize(
    "wallet", ["", "0x123", "0x" + "g" * 40, "ab" * 21, "0x" + "a" * 41, "../0x" + "a" * 40]
)
def test_bad_wallets_rejected(mem: MemoryStore, keys: RotatingKeys, wallet: str) -> None:
    with pytest.raises(InvalidName):
        make(mem, keys, wallet=wallet)


def test_oversize_payload_rejected_and_nothing_written(
    mem: MemoryStore, keys: RotatingKeys
) -> None:
    store = make(mem, keys)
    with pytest.raises(PayloadTooLarge):
        store.put("big", b"\0" * (envelope.DEFAULT_MAX_PAYLOAD + 1))
    assert mem.objects == {}
    big = CredentialStore(mem, keys, WALLET_A, max_payload=4 << 20)
    big.put("big", b"\1" * (3 << 20))
    assert big.get("big").reveal() == b"\1" * (3 << 20)
    with pytest.raises(PayloadTooLarge):
        store.get("big")  # a reader configured for 1 MiB says so rather than claiming tampering
    with pytest.raises(PayloadTooLarge):
        CredentialStore(mem, keys, WALLET_A, max_payload=(64 << 20) + 1)


def test_get_missing_and_delete_missing_are_not_found(mem: MemoryStore, keys: RotatingKeys) -> None:
    store = make(mem, keys)
    with pytest.raises(NotFound):
        store.get("nope")
    with pytest.raises(NotFound):
        store.delete("nope")


def test_blob_moved_between_services_or_wallets_fails(mem: MemoryStore, keys: RotatingKeys) -> None:
    a, b = make(mem, keys), make(mem, keys, wallet=WALLET_B)
    a.put("one", b"secret-one")
    a.put("two", b"secret-two")
    src = mem.objects[a.key_for("one")]
    mem.objects[a.key_for("two")] = src
    with pytest.raises(IntegrityError):
        a.get("two")
    mem.objects[b.key_for("one")] = src
    with pytest.raises(IntegrityError):
        b.get("one")


def test_list_delete_teardown_touch_only_the_tenant(mem: MemoryStore, keys: RotatingKeys) -> None:
    a, b = make(mem, keys), make(mem, keys, wallet=WALLET_B)
    for s in ("x", "y", "z"):
        a.put(s, s.encode())
    b.put("x", b"bx")
    mem.objects[f"bots/{a.wallet}/inbound/mail.eml"] = b"not a credential"
    assert a.list() == ["x", "y", "z"]
    a.delete("y")
    assert a.list() == ["x", "z"]
    assert a.teardown() == 2
    assert a.list() == []
    assert b.get("x").reveal() == b"bx"
    assert f"bots/{a.wallet}/inbound/mail.eml" in mem.objects


def test_failed_put_keeps_sealed_blob_in_outbox_and_flush_delivers(
    mem: MemoryStore, keys: RotatingKeys, outbox: Outbox
) -> None:
    store = make(mem, keys, outbox)
    mem.fail_puts = 1
    with pytest.raises(SecretNotDelivered) as info:
        store.put("openrouter", b"sk-or-v1-precious")
    assert isinstance(info.value.cause, RemoteUnavailable)
    assert info.value.exit_code == RemoteUnavailable.exit_code
    assert "sk-or-v1-precious" not in str(info.value)
    pending = outbox.pending()
    assert [e.service for e in pending] == ["openrouter"]
    path = Path(info.value.outbox_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert b"sk-or-v1-precious" not in path.read_bytes()
    assert mem.objects == {}
    assert store.flush() == 1
    assert outbox.pending() == []
    assert store.get("openrouter").reveal() == b"sk-or-v1-precious"


def test_flush_failure_keeps_entry_and_reports(
    mem: MemoryStore, keys: RotatingKeys, outbox: Outbox
) -> None:
    store = make(mem, keys, outbox)
    mem.fail_puts = 2
    with pytest.raises(SecretNotDelivered):
        store.put("svc", b"v")
    with pytest.raises(RemoteUnavailable):
        store.flush()
    assert len(outbox.pending()) == 1
    assert store.flush() == 1


def test_successful_put_discards_older_pending_write_for_same_key(
    mem: MemoryStore, keys: RotatingKeys, outbox: Outbox
) -> None:
    store = make(mem, keys, outbox)
    mem.fail_puts = 1
    with pytest.raises(SecretNotDelivered):
        store.put("svc", b"old")
    store.put("svc", b"new")
    assert outbox.pending() == []
    assert store.flush() == 0
    assert store.get("svc").reveal() == b"new"


def test_flush_delivers_newest_pending_per_key(
    mem: MemoryStore, keys: RotatingKeys, outbox: Outbox
) -> None:
    store = make(mem, keys, outbox)
    mem.fail_puts = 2
    for value in (b"first", b"second"):
        with pytest.raises(SecretNotDelivered):
            store.put("svc", value)
    calls = mem.put_calls
    assert store.flush() == 1
    assert mem.put_calls == calls + 1
    assert store.get("svc").reveal() == b"second"
    assert outbox.pending() == []


def test_delete_drops_pending_outbox_write(
    mem: MemoryStore, keys: RotatingKeys, outbox: Outbox
) -> None:
    store = make(mem, keys, outbox)
    store.put("svc", b"v1")
    mem.fail_puts = 1
    with pytest.raises(SecretNotDelivered):
        store.put("svc", b"v2")
    store.delete("svc")
    assert store.flush() == 0
    with pytest.raises(NotFound):
        store.get("svc")


def test_outbox_is_per_backend_and_wallet(
    mem: MemoryStore, keys: RotatingKeys, outbox: Outbox
) -> None:
    other = MemoryStore("other")
    a = make(mem, keys, outbox)
    mem.fail_puts = 1
    with pytest.raises(SecretNotDelivered):
        a.put("svc", b"v")
    assert make(other, keys, outbox).flush() == 0
    assert make(mem, keys, outbox, wallet=WALLET_B).flush() == 0
    assert a.flush() == 1


def test_rewrap_moves_to_current_kek_without_touching_payload(
    mem: MemoryStore, keys: RotatingKeys
) -> None:
    store = make(mem, keys)
    store.put("a", b"alpha")
    store.put("b", b"beta")
    before = {k: v for k, v in mem.objects.items()}
    keys.version = 2
    assert store.rewrap() == 2
    for k, v in mem.objects.items():
        old = envelope.parse_header(before[k])
        new = envelope.parse_header(v)
        assert (old.kek_id, new.kek_id) == ("test.v1", "test.v2")
        assert v[new.header_len - 48 :] == before[k][old.header_len - 48 :]
    assert store.rewrap() == 0
    assert store.get("a").reveal() == b"alpha"
    keys._keys.pop(1)  # the old KEK is gone: only the re-wrapped blobs can still be opened
    assert store.get("b").reveal() == b"beta"


def test_get_many_reads_concurrently(mem: MemoryStore, keys: RotatingKeys) -> None:
    store = make(mem, keys)
    for i in range(40):
        store.put(f"s{i}", f"v{i}")
    got = store.get_many([f"s{i}" for i in range(40)], max_workers=8)
    assert {k: v.reveal() for k, v in got.items()} == {f"s{i}": f"v{i}".encode() for i in range(40)}
    with pytest.raises(NotFound):
        store.get_many(["s1", "missing"])


def test_audit_events_carry_no_secret(mem: MemoryStore, keys: RotatingKeys) -> None:
    events: list[dict[str, object]] = []
    store = CredentialStore(mem, keys, WALLET_A, audit=lambda e: events.append(dict(e)))
    store.put("svc", b"topsecret")
    store.get("svc")
    with pytest.raises(NotFound):
        store.get("missing")
    assert [(e["operation"], e["service"], e["outcome"]) for e in events] == [
        ("put", "svc", "ok"),
        ("get", "svc", "ok"),
        ("get", "missing", "error"),
    ]
    assert events[2]["error"] == "NotFound"
    assert "topsecret" not in repr(events)


def test_scoped_cloud_enforcement_refused_where_backend_cannot(
    mem: MemoryStore, keys: RotatingKeys
) -> None:
    from portable_creds.errors import ConfigurationError

    store = make(mem, keys)
    with pytest.raises(ConfigurationError, match="enforcement='client'"):
        store.scoped(["svc"])


def test_scoped_client_enforcement_limits_services_and_writes(
    mem: MemoryStore, keys: RotatingKeys
) -> None:
    from portable_creds.errors import AccessDenied

    store = make(mem, keys)
    store.put("allowed", b"a")
    store.put("other", b"o")
    scoped = store.scoped(["allowed", "missing"], read_only=True, enforcement="client")
    assert scoped.get("allowed").reveal() == b"a"
    assert scoped.list() == ["allowed"]
    with pytest.raises(AccessDenied):
        scoped.get("other")
    with pytest.raises(AccessDenied):
        scoped.put("allowed", b"x")
    with pytest.raises(AccessDenied):
        scoped.delete("allowed")
    with pytest.raises(AccessDenied):
        list(scoped.objects.list(f"bots/{store.wallet}/credentials/"))
    writable = store.scoped(["allowed"], read_only=False, enforcement="client")
    writable.put("allowed", b"new")
    assert store.get("allowed").reveal() == b"new"
    with pytest.raises(AccessDenied):
        writable.put("other", b"x")
    assert store.get("other").reveal() == b"o"


def test_rewrap_refuses_a_blob_whose_payload_is_corrupt_and_rotates_the_rest(
    mem: MemoryStore, keys: RotatingKeys
) -> None:
    from portable_creds.store import RewrapIncomplete

    store = make(mem, keys)
    store.put("a", b"alpha")
    store.put("b", b"beta")
    store.put("c", b"gamma")
    key = store.key_for("b")
    corrupt = bytearray(mem.objects[key])
    corrupt[-1] ^= 1  # last byte of the payload tag
    mem.objects[key] = bytes(corrupt)
    keys.version = 2
    with pytest.raises(RewrapIncomplete) as exc:
        store.rewrap()
    assert mem.objects[key] == bytes(corrupt)  # left as it was, not rewritten
    report = exc.value.report
    assert report.rewrapped == ("a", "c")  # one bad blob does not stop the rotation
    assert [(s, type(e)) for s, e in report.failed] == [("b", IntegrityError)]
    assert exc.value.exit_code == IntegrityError.exit_code
    assert "'b'" in str(exc.value)
    for service in ("a", "c"):
        assert envelope.parse_header(mem.objects[store.key_for(service)]).kek_id == "test.v2"


def test_teardown_and_rewrap_are_one_audit_event_each(mem: MemoryStore, keys: RotatingKeys) -> None:
    events: list[dict[str, object]] = []
    store = CredentialStore(mem, keys, WALLET_A, audit=lambda e: events.append(dict(e)))
    store.put("a", b"1")
    events.clear()
    keys.version = 2
    store.rewrap()
    store.teardown()
    assert [e["operation"] for e in events] == ["rewrap", "teardown"]
