"""The copy engine (library level) between real local stores: both modes, reruns, conflicts,
tampering, the delete-source rules, and the proof that verbatim mode needs no keys."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from portable_creds import copy as c
from portable_creds import envelope, fleet, transfer
from portable_creds.driver import ObjectInfo
from portable_creds.errors import ConfigurationError, IntegrityError
from portable_creds.keys import Kek, KeySource
from portable_creds.local import LocalObjectStore
from portable_creds.secret_key import SecretKeySource
from portable_creds.store import CredentialStore

from .conftest import fleet_secrets, seed

KEYS = SecretKeySource(bytes(range(32)))
SECRETS = fleet_secrets(3, 4)


class Tripwire(KeySource):
    """A key source that fails the test if anything asks it for a KEK."""

    def current_kek(self, wallet: str, service: str) -> Kek:
        raise AssertionError("a KEK was derived for the current version")

    def kek_for_id(self, wallet: str, service: str, kek_id: str) -> Kek:
        raise AssertionError("a KEK was derived to open a blob")


@pytest.fixture
def src(tmp_path: Path) -> LocalObjectStore:
    store = LocalObjectStore(tmp_path / "src")
    seed(store, KEYS, SECRETS)
    return store


@pytest.fixture
def dst(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "dst")


def read_all(objects: LocalObjectStore, keys: KeySource, prefix: str = "bots") -> dict:  # type: ignore[type-arg]
    return {
        w: {s: CredentialStore(objects, keys, w, prefix=prefix).get(s).reveal() for s in services}
        for w, services in SECRETS.items()
    }


def statuses(report: transfer.Report) -> set[str]:
    return {i.status for i in report.items}


def test_verbatim_copies_bytes_without_any_key_or_plaintext(
    src: LocalObjectStore, dst: LocalObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_plaintext(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("plaintext was produced on the copying side")

    monkeypatch.setattr(envelope, "open_blob", no_plaintext)
    monkeypatch.setattr(envelope, "seal", no_plaintext)
    wallets = fleet.list_wallets(src)
    assert wallets == sorted(SECRETS)
    # The readers' key source is configured but must not be used with open_payloads=False.
    report = c.copy(c.Endpoint(src, keys=Tripwire()), c.Endpoint(dst), wallets, open_payloads=False)
    assert report.ok and statuses(report) == {c.COPIED}
    assert report.facts["mode"] == c.VERBATIM and report.facts["payload_checked"] is False
    assert "payload integrity not checked" in str(report.facts["note"])
    # ... and with no key source at all
    rerun = c.copy(c.Endpoint(src), c.Endpoint(dst), wallets)
    assert statuses(rerun) == {transfer.ALREADY}
    monkeypatch.undo()
    for info in src.list("bots/"):
        assert dst.get(info.key).data == src.get(info.key).data
    assert read_all(dst, KEYS) == SECRETS


def test_rerun_writes_nothing_and_dry_run_writes_nothing(
    src: LocalObjectStore, dst: LocalObjectStore
) -> None:
    wallets = sorted(SECRETS)
    dry = c.copy(c.Endpoint(src), c.Endpoint(dst), wallets, dry_run=True)
    assert statuses(dry) == {c.WOULD_COPY} and dry.ok
    assert list(dst.list("bots/")) == []
    first = c.copy(c.Endpoint(src, keys=KEYS), c.Endpoint(dst), wallets, workers=3)
    assert first.ok and first.counts()[c.COPIED] == 12 and first.facts["payload_checked"] is True
    before = {i.key: os.stat(dst.root / i.key).st_mtime_ns for i in dst.list("bots/")}
    second = c.copy(c.Endpoint(src, keys=KEYS), c.Endpoint(dst), wallets)
    assert second.counts()[transfer.ALREADY] == 12
    assert {i.key: os.stat(dst.root / i.key).st_mtime_ns for i in dst.list("bots/")} == before


def test_conflict_unless_overwrite(src: LocalObjectStore, dst: LocalObjectStore) -> None:
    w = sorted(SECRETS)[0]
    CredentialStore(dst, KEYS, w).put("svc-1", b"someone else's newer value")
    report = c.copy(c.Endpoint(src), c.Endpoint(dst), [w], delete_source=True)
    by_service = {i.service: i.status for i in report.items}
    assert by_service["svc-1"] == transfer.CONFLICT and not report.ok
    assert not report.wallets[0].source_deleted  # a conflict blocks deleting the source
    assert CredentialStore(dst, KEYS, w).get("svc-1").reveal() == b"someone else's newer value"
    again = c.copy(c.Endpoint(src), c.Endpoint(dst), [w], overwrite=True)
    assert again.ok
    assert CredentialStore(dst, KEYS, w).get("svc-1").reveal() == SECRETS[w]["svc-1"]


def tamper(objects: LocalObjectStore, key: str) -> None:
    blob = bytearray(objects.get(key).data)
    blob[-20] ^= 0x01  # inside the payload ciphertext: the header still parses
    objects.put(key, bytes(blob))


def test_tampered_source_is_reported_and_blocks_delete_source(
    src: LocalObjectStore, dst: LocalObjectStore
) -> None:
    bad, good1, good2 = sorted(SECRETS)
    tamper(src, f"bots/{bad}/credentials/svc-2.enc")
    report = c.copy(
        c.Endpoint(src, keys=KEYS), c.Endpoint(dst), sorted(SECRETS), delete_source=True
    )
    failed = [i for i in report.items if i.status == transfer.FAILED]
    assert [(i.wallet, i.service) for i in failed] == [(bad, "svc-2")]
    assert "tampered" in failed[0].detail and not report.ok
    deleted = {r.wallet: r.source_deleted for r in report.wallets}
    assert deleted == {bad: False, good1: True, good2: True}
    assert len(list(src.list(f"bots/{bad}/"))) == 4  # nothing of the tampered wallet deleted
    assert list(src.list(f"bots/{good1}/")) == []
    assert [i.key for i in dst.list(f"bots/{bad}/")] == [
        f"bots/{bad}/credentials/svc-{n}.enc" for n in (0, 1, 3)
    ]


def test_without_keys_tampering_is_not_detectable_and_the_report_says_so(
    src: LocalObjectStore, dst: LocalObjectStore
) -> None:
    w = sorted(SECRETS)[0]
    tamper(src, f"bots/{w}/credentials/svc-0.enc")
    report = c.copy(c.Endpoint(src), c.Endpoint(dst), [w])
    assert report.ok and report.facts["payload_checked"] is False


def test_not_an_envelope_is_refused(src: LocalObjectStore, dst: LocalObjectStore) -> None:
    w = sorted(SECRETS)[0]
    src.put(f"bots/{w}/credentials/plain.enc", b"sk-plaintext-that-never-was-sealed")
    src.put(f"bots/{w}/credentials/notes.txt", b"x")
    report = c.copy(c.Endpoint(src), c.Endpoint(dst), [w], delete_source=True)
    by_service = {i.service: (i.status, i.detail) for i in report.items}
    assert by_service["plain"] == (transfer.FAILED, "the source object is not a sealed credential")
    assert by_service["notes.txt"][0] == transfer.SKIPPED
    assert not report.wallets[0].source_deleted


class ChangesOnRelist(LocalObjectStore):
    """A source that someone writes to between the copy and the delete."""

    relists = 0
    target = ""

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        if prefix.endswith("/credentials/"):
            type(self).relists += 1
            if type(self).relists == 2:  # the re-check right before deleting
                CredentialStore(self, KEYS, self.target).put("svc-0", b"rotated meanwhile")
        return super().list(prefix)


def test_source_changed_after_verification_is_not_deleted(
    tmp_path: Path, dst: LocalObjectStore
) -> None:
    w = sorted(SECRETS)[0]
    seed(LocalObjectStore(tmp_path / "src"), KEYS, {w: SECRETS[w]})
    ChangesOnRelist.target = w
    src = ChangesOnRelist(tmp_path / "src")
    report = c.copy(c.Endpoint(src), c.Endpoint(dst), [w], delete_source=True)
    assert report.ok  # everything was copied and verified ...
    assert not report.wallets[0].source_deleted  # ... but the source changed before the delete
    assert "changed at the source" in report.wallets[0].detail
    assert CredentialStore(src, KEYS, w).get("svc-0").reveal() == b"rotated meanwhile"


def test_reseal_to_a_new_prefix_and_root_secret(
    src: LocalObjectStore, dst: LocalObjectStore
) -> None:
    new = SecretKeySource(os.urandom(32))
    wallets = sorted(SECRETS)
    report = c.copy(
        c.Endpoint(src, keys=KEYS), c.Endpoint(dst, prefix="tenants/v2", keys=new), wallets
    )
    assert report.ok and report.facts["mode"] == c.RESEAL and report.counts()[c.COPIED] == 12
    assert read_all(dst, new, "tenants/v2") == SECRETS
    with pytest.raises(IntegrityError):
        CredentialStore(dst, KEYS, wallets[0], prefix="tenants/v2").get("svc-0")
    again = c.copy(
        c.Endpoint(src, keys=KEYS), c.Endpoint(dst, prefix="tenants/v2", keys=new), wallets
    )
    assert statuses(again) == {transfer.ALREADY}


def test_reseal_in_place_after_a_leaked_root_secret(src: LocalObjectStore) -> None:
    new = SecretKeySource(os.urandom(32))
    wallets = sorted(SECRETS)
    report = c.copy(
        c.Endpoint(src, keys=KEYS), c.Endpoint(src, keys=new), wallets, delete_source=True
    )
    assert report.ok and report.counts()[c.COPIED] == 12
    assert all(r.source_deleted for r in report.wallets)  # nothing deleted: in place
    assert read_all(src, new) == SECRETS  # still there, now under the new secret only
    rerun = c.copy(c.Endpoint(src, keys=KEYS), c.Endpoint(src, keys=new), wallets)
    assert statuses(rerun) == {transfer.ALREADY}


def test_reseal_needs_the_source_keys_and_verbatim_needs_two_places(
    src: LocalObjectStore, dst: LocalObjectStore
) -> None:
    with pytest.raises(ConfigurationError, match="source's keys"):
        c.copy(c.Endpoint(src), c.Endpoint(dst, prefix="other"), sorted(SECRETS))
    with pytest.raises(ConfigurationError, match="same location"):
        c.copy(c.Endpoint(src), c.Endpoint(LocalObjectStore(src.root)), sorted(SECRETS))


def test_list_wallets_skips_non_wallets_and_empty_ones(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "s")
    seed(store, KEYS, {w: {"a": b"1"} for w in sorted(SECRETS)[:2]})
    (store.root / "bots" / ("0x" + "ab" * 20) / "credentials").mkdir(parents=True)  # empty
    (store.root / "bots" / ("0x" + "AB" * 20)).mkdir()  # not canonical
    store.put("bots/README/x", b"not a wallet")
    store.put("other/" + sorted(SECRETS)[2] + "/credentials/a.enc", b"other prefix")
    assert fleet.list_wallets(store) == sorted(SECRETS)[:2]
    assert fleet.list_wallets(store, "other") == [sorted(SECRETS)[2]]
    assert fleet.list_wallets(store, "nothing-here") == []


def test_shards_partition_any_wallet_set() -> None:
    wallets = [f"0x{os.urandom(20).hex()}" for _ in range(500)]
    parts = [fleet.select(wallets, fleet.Shard(i, 7)) for i in range(7)]
    assert sorted(w for p in parts for w in p) == sorted(wallets)  # union, no duplicates
    assert all(parts)  # every shard gets some of 500
    upper = [w.upper().replace("0X", "0x") for w in wallets]
    assert [fleet.select(upper, fleet.Shard(i, 7)) for i in range(7)] == parts  # canonical
    assert fleet.parse_shard("3/7") == fleet.Shard(3, 7)
    for bad in ("7/7", "1", "-1/3", "a/b", "1/0"):
        with pytest.raises(ConfigurationError):
            fleet.parse_shard(bad)


class StaleListing(LocalObjectStore):
    """A destination whose listing misses objects (written after it was taken)."""

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return iter(())


def test_object_appearing_after_the_destination_listing_is_never_overwritten(
    src: LocalObjectStore, tmp_path: Path
) -> None:
    w = sorted(SECRETS)[0]
    dst = StaleListing(tmp_path / "dst")
    c.copy(c.Endpoint(src), c.Endpoint(LocalObjectStore(tmp_path / "dst")), [w])
    CredentialStore(dst, KEYS, w).put("svc-3", b"written meanwhile")
    report = c.copy(c.Endpoint(src), c.Endpoint(dst), [w])
    by_service = {i.service: i.status for i in report.items}
    assert by_service == {
        "svc-0": transfer.ALREADY,
        "svc-1": transfer.ALREADY,
        "svc-2": transfer.ALREADY,
        "svc-3": transfer.CONFLICT,
    }
    assert CredentialStore(dst, KEYS, w).get("svc-3").reveal() == b"written meanwhile"


class OpaqueEtags(LocalObjectStore):
    """A destination whose listing shows ETags that are no digest (multipart, SSE-KMS...)."""

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return (attrs.evolve(i, etag="opaque-1") for i in super().list(prefix))


class Corrupting(LocalObjectStore):
    """A destination that stores other bytes than it was sent, for one service."""

    def put(self, key: str, data: bytes, **kw: Any) -> str:
        if key.endswith("/svc-2.enc"):
            data = data[:-1] + bytes([data[-1] ^ 1])
        return super().put(key, data, **kw)


@pytest.mark.parametrize("verify", [c.VERIFY_LISTING, c.VERIFY_READ])
def test_verification_catches_a_destination_storing_other_bytes(
    src: LocalObjectStore, tmp_path: Path, verify: str
) -> None:
    w = sorted(SECRETS)[0]
    report = c.copy(
        c.Endpoint(src), c.Endpoint(Corrupting(tmp_path / "d")), [w], verify=verify,
        delete_source=True,
    )  # fmt: skip
    by_service = {i.service: i.status for i in report.items}
    assert by_service == {
        "svc-0": c.COPIED, "svc-1": c.COPIED, "svc-2": transfer.FAILED, "svc-3": c.COPIED
    }  # fmt: skip
    assert "read-back verification failed" in report.items[2].detail
    assert not report.wallets[0].source_deleted
    assert report.facts["verify"] == verify


def test_listing_verification_reads_back_when_etags_are_no_digest(
    src: LocalObjectStore, tmp_path: Path
) -> None:
    dst = OpaqueEtags(tmp_path / "d")
    report = c.copy(c.Endpoint(src), c.Endpoint(dst), sorted(SECRETS))
    assert report.ok and report.counts()[c.COPIED] == 12
    plain = LocalObjectStore(tmp_path / "d")
    assert read_all(plain, KEYS) == SECRETS


class CountingGets(LocalObjectStore):
    gets = 0

    def get(self, key: str) -> Any:
        type(self).gets += 1
        return super().get(key)


def test_listing_verification_needs_no_read_per_object_where_etags_are_digests(
    src: LocalObjectStore, tmp_path: Path
) -> None:
    dst = CountingGets(tmp_path / "d")
    report = c.copy(c.Endpoint(src), c.Endpoint(dst), sorted(SECRETS))
    assert report.ok and report.counts()[c.COPIED] == 12 and CountingGets.gets == 0
    again = c.copy(c.Endpoint(src), c.Endpoint(dst), sorted(SECRETS), verify=c.VERIFY_READ)
    assert again.counts()[transfer.ALREADY] == 12 and CountingGets.gets == 12  # compared


class NoCreateOnly(LocalObjectStore):
    """A destination without atomic create-only writes: copy lists it first instead."""

    capabilities = attrs.evolve(LocalObjectStore.capabilities, create_only=False, if_match=False)

    def put(self, key: str, data: bytes, **kw: Any) -> str:
        assert not kw.get("if_none_match") and kw.get("if_match") is None
        return super().put(key, data)


def test_destination_without_create_only_is_listed_first(
    src: LocalObjectStore, tmp_path: Path
) -> None:
    dst = NoCreateOnly(tmp_path / "d")
    w = sorted(SECRETS)[0]
    CredentialStore(LocalObjectStore(tmp_path / "d"), KEYS, w).put("svc-1", b"newer")
    report = c.copy(c.Endpoint(src), c.Endpoint(dst), [w])
    assert {i.service: i.status for i in report.items}["svc-1"] == transfer.CONFLICT
    assert report.counts()[c.COPIED] == 3
    rerun = c.copy(c.Endpoint(src), c.Endpoint(dst), [w])
    assert rerun.counts()[transfer.ALREADY] == 3


def test_a_backend_that_cannot_enumerate_wallets_says_so(tmp_path: Path) -> None:
    from portable_creds.legacy import LegacyClient, LegacyObjectStore

    legacy = LegacyObjectStore(LegacyClient("http://127.0.0.1:9", token="t"), None)
    with pytest.raises(ConfigurationError, match="cannot list the wallets"):
        fleet.list_wallets(legacy)  # the legacy API has no wallet listing (no request made)


def test_reseal_between_a_signer_and_a_root_secret(
    src: LocalObjectStore, dst: LocalObjectStore, tmp_path: Path
) -> None:
    from portable_creds.signer import SignerKeySource
    from portable_creds.testing.signer_server import SignerServer

    wallets = sorted(SECRETS)
    with SignerServer() as signer:
        signed = SignerKeySource(signer.url)
        to_signer = c.copy(c.Endpoint(src, keys=KEYS), c.Endpoint(dst, keys=signed), wallets)
        assert to_signer.ok and to_signer.facts["mode"] == c.RESEAL
        assert read_all(dst, signed) == SECRETS
        back = LocalObjectStore(tmp_path / "back")
        new_root = SecretKeySource(os.urandom(32))
        to_root = c.copy(c.Endpoint(dst, keys=signed), c.Endpoint(back, keys=new_root), wallets)
        assert to_root.ok and to_root.counts()[c.COPIED] == 12
    assert read_all(back, new_root) == SECRETS
