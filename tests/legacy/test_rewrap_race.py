"""Issue 12 item 4: ``rewrap`` on a backend without if-match never overwrites a concurrent put.

The legacy backend (a real HTTP server) has no conditional writes. The race is made
deterministic with a store subclass: right after rewrap's first read of ``openai``, a second
writer - its own client and store, over HTTP - stores a new value. Before the fix rewrap then
wrote the old value back (re-wrapped), losing the update.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from portable_creds import envelope
from portable_creds.driver import StoredObject
from portable_creds.errors import PreconditionFailed
from portable_creds.legacy import LegacyClient, LegacyObjectStore
from portable_creds.secret_key import SecretKeySource
from portable_creds.store import CredentialStore, RewrapIncomplete
from portable_creds.testing.legacy_server import LegacyServer

from .conftest import TOKEN, WALLET_A

ROOT = bytes(range(32))


class RacingStore(LegacyObjectStore):
    """Calls ``between`` once, right after the first read of ``key`` returned."""

    def __init__(self, client: LegacyClient, key: str, between: Callable[[], None]) -> None:
        super().__init__(client, WALLET_A)
        self.race_key = key
        self.between: Callable[[], None] | None = between

    def get(self, key: str) -> StoredObject:
        stored = super().get(key)
        if key == self.race_key and self.between is not None:
            between, self.between = self.between, None
            between()
        return stored


def _store(
    srv: LegacyServer, version: int, objects: LegacyObjectStore | None = None
) -> CredentialStore:
    objects = objects or LegacyObjectStore(LegacyClient(srv.url, token=TOKEN), WALLET_A)
    return CredentialStore(objects, SecretKeySource(ROOT, version), WALLET_A)


def test_rewrap_keeps_a_put_that_landed_between_its_read_and_write(legacy: LegacyServer) -> None:
    writer = _store(legacy, 1)
    writer.put("openai", "sk-OLD")
    writer.put("zeta", "z-1")
    assert not LegacyObjectStore.capabilities.if_match  # the case under test

    key = writer.key_for("openai")

    def concurrent_put() -> None:
        _store(legacy, 1).put("openai", "sk-NEW")

    racing = RacingStore(LegacyClient(legacy.url, token=TOKEN), key, concurrent_put)
    rotator = _store(legacy, 2, racing)
    with pytest.raises(RewrapIncomplete) as exc:
        rotator.rewrap()
    assert racing.between is None  # the concurrent put did happen
    report = exc.value.report
    assert [s for s, _ in report.failed] == ["openai"]
    assert isinstance(report.failed[0][1], PreconditionFailed)
    assert report.rewrapped == ("zeta",)
    assert exc.value.exit_code == PreconditionFailed.exit_code
    assert "'openai'" in str(exc.value)

    # the concurrent update survived; a second rewrap then moves it to v2
    reader = _store(legacy, 2)
    assert reader.get("openai").reveal() == b"sk-NEW"
    assert reader.rewrap() == 1
    assert reader.get("openai").reveal() == b"sk-NEW"
    header = envelope.parse_header(reader.objects.get(key).data)
    assert header.kek_id == SecretKeySource(ROOT, 2).kek_id()


def test_rewrap_does_not_resurrect_a_credential_deleted_meanwhile(legacy: LegacyServer) -> None:
    writer = _store(legacy, 1)
    writer.put("openai", "sk-OLD")
    key = writer.key_for("openai")
    client = LegacyClient(legacy.url, token=TOKEN)
    racing = RacingStore(client, key, lambda: client.teardown(WALLET_A))
    assert _store(legacy, 2, racing).rewrap() == 0
    assert client.list(WALLET_A) == []
