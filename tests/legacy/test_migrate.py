"""The migration engine (library level): legacy and upstream sources into a real local store."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from portable_creds import migrate as m
from portable_creds.legacy import LegacyClient
from portable_creds.local import LocalObjectStore
from portable_creds.secret_key import SecretKeySource
from portable_creds.signer import SignerKeySource
from portable_creds.store import CredentialStore
from portable_creds.testing.legacy_server import LegacyServer
from portable_creds.testing.signer_server import SignerServer

from .conftest import TOKEN, WALLET_A, WALLET_B
from .helpers import signer_kek, upstream_v1, upstream_v2

ROOT = bytes(range(32))

SECRETS = {
    WALLET_A: {"openai": b"sk-a-openai", "github": b"ghp_\x00\xff binary", "empty": b""},
    WALLET_B: {"openai": b"sk-b-openai", "Anthropic.v2": b"x" * 5000},
}


def dest_factory(root: Path):  # type: ignore[no-untyped-def]
    def open_dest(wallet: str) -> CredentialStore:
        return CredentialStore(LocalObjectStore(root, wallet=wallet), SecretKeySource(ROOT), wallet)

    return open_dest


def seeded(srv: LegacyServer) -> LegacyServer:
    for wallet, services in SECRETS.items():
        for service, secret in services.items():
            srv.seed(wallet, service, secret)
    return srv


def test_legacy_migration_reads_back_identically_and_rerun_is_a_no_op(
    legacy: LegacyServer, tmp_path: Path
) -> None:
    seeded(legacy)
    source = m.LegacySource(LegacyClient(legacy.url, token=TOKEN))
    open_dest = dest_factory(tmp_path / "dest")
    report = m.migrate(source, [WALLET_A, WALLET_B], open_dest)
    assert report.ok
    assert report.counts()[m.MIGRATED] == 5
    for wallet, services in SECRETS.items():
        store = open_dest(wallet)
        assert store.list() == sorted(services)
        for service, secret in services.items():
            assert store.get(service).reveal() == secret
    # nothing in the destination is plaintext
    for path in (tmp_path / "dest").rglob("*.enc"):
        data = path.read_bytes()
        assert all(s not in data for s in (b"sk-a-openai", b"sk-b-openai", b"ghp_"))
    # the source is untouched without delete_source
    assert len(legacy.data) == 5
    writes_before = sorted(p.stat().st_mtime_ns for p in (tmp_path / "dest").rglob("*.enc"))
    again = m.migrate(source, [WALLET_A, WALLET_B], open_dest)
    assert again.ok and again.counts()[m.ALREADY] == 5 and again.counts()[m.MIGRATED] == 0
    assert sorted(p.stat().st_mtime_ns for p in (tmp_path / "dest").rglob("*.enc")) == writes_before


def test_dry_run_writes_nothing(legacy: LegacyServer, tmp_path: Path) -> None:
    seeded(legacy)
    source = m.LegacySource(LegacyClient(legacy.url, token=TOKEN))
    report = m.migrate(
        source, [WALLET_A], dest_factory(tmp_path / "dest"), dry_run=True, delete_source=True
    )
    assert report.counts()[m.WOULD_MIGRATE] == 3
    assert list((tmp_path / "dest").rglob("*.enc")) == []
    assert len(legacy.data) == 5


def test_conflict_is_left_alone_unless_overwrite(legacy: LegacyServer, tmp_path: Path) -> None:
    legacy.seed(WALLET_A, "openai", b"from-legacy")
    open_dest = dest_factory(tmp_path / "dest")
    open_dest(WALLET_A).put("openai", b"newer-in-dest")
    source = m.LegacySource(LegacyClient(legacy.url, token=TOKEN))
    report = m.migrate(source, [WALLET_A], open_dest, delete_source=True)
    assert [i.status for i in report.items] == [m.CONFLICT]
    assert not report.ok and report.wallets[0].source_deleted is False
    assert open_dest(WALLET_A).get("openai").reveal() == b"newer-in-dest"
    assert legacy.data[(WALLET_A, "openai")] == b"from-legacy"
    forced = m.migrate(source, [WALLET_A], open_dest, overwrite=True)
    assert [i.status for i in forced.items] == [m.MIGRATED]
    assert open_dest(WALLET_A).get("openai").reveal() == b"from-legacy"


def test_delete_source_only_after_every_item_verified(legacy: LegacyServer, tmp_path: Path) -> None:
    seeded(legacy)
    legacy.seed(WALLET_B, "bad/../name", b"x")  # not a valid portable-creds name -> skipped
    source = m.LegacySource(LegacyClient(legacy.url, token=TOKEN))
    report = m.migrate(
        source, [WALLET_A, WALLET_B], dest_factory(tmp_path / "dest"), delete_source=True
    )
    by_wallet = {w.wallet: w for w in report.wallets}
    assert by_wallet[WALLET_A].source_deleted is True
    assert by_wallet[WALLET_B].source_deleted is False
    assert not any(w == WALLET_A for (w, _) in legacy.data)
    assert {s for (w, s) in legacy.data if w == WALLET_B} == {
        "openai",
        "Anthropic.v2",
        "bad/../name",
    }
    skipped = [i for i in report.items if i.status == m.SKIPPED]
    assert [i.service for i in skipped] == ["bad/../name"]


def test_source_read_failure_is_reported_and_blocks_deletion(
    legacy: LegacyServer, tmp_path: Path
) -> None:
    seeded(legacy)
    source = m.LegacySource(LegacyClient(legacy.url, token=TOKEN, retries=0))
    legacy.fail_next(1, 500)  # the listing fails
    report = m.migrate(source, [WALLET_A], dest_factory(tmp_path / "dest"), delete_source=True)
    assert report.items[0].status == m.FAILED and not report.ok
    assert len(legacy.data) == 5


def test_progress_plain_lines_when_not_a_tty(legacy: LegacyServer, tmp_path: Path) -> None:
    seeded(legacy)
    out = io.StringIO()
    source = m.LegacySource(LegacyClient(legacy.url, token=TOKEN))
    m.migrate(source, [WALLET_B], dest_factory(tmp_path / "dest"), progress=m.Progress(out))
    lines = out.getvalue().splitlines()
    assert lines == [
        f"migrate: [1/2] {WALLET_B} Anthropic.v2: migrated",
        f"migrate: [2/2] {WALLET_B} openai: migrated",
    ]


# -- upstream objects -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signer() -> SignerServer:
    with SignerServer() as srv:
        yield srv  # type: ignore[misc]


def test_upstream_v1_and_v2_migrate_into_another_store(
    signer: SignerServer, tmp_path: Path
) -> None:
    bucket = LocalObjectStore(tmp_path / "upstream")
    k = lambda w, s: signer_kek(signer.url, w, s)  # noqa: E731
    for key, blob in (
        upstream_v1(k(WALLET_A, "openai"), WALLET_A, "openai", b"sk-v1"),
        upstream_v2(k(WALLET_A, "github"), WALLET_A, "github", b"ghp-v2"),
        upstream_v2(k(WALLET_B, "openai"), WALLET_B, "openai", b"sk-b-v2"),
    ):
        bucket.put(key, blob)
    source = m.UpstreamSource(
        bucket, SignerKeySource(signer.url).upstream_kek, backup_dir=tmp_path / "backup"
    )
    open_dest = dest_factory(tmp_path / "dest")
    report = m.migrate(source, [WALLET_A, WALLET_B], open_dest, delete_source=True)
    assert report.ok, report.to_dict()
    assert sorted((i.wallet, i.service, i.source) for i in report.items) == sorted(
        [
            (WALLET_A, "github", "upstream-v2"),
            (WALLET_A, "openai", "upstream-v1"),
            (WALLET_B, "openai", "upstream-v2"),
        ]
    )
    assert open_dest(WALLET_A).get("openai").reveal() == b"sk-v1"
    assert open_dest(WALLET_A).get("github").reveal() == b"ghp-v2"
    assert open_dest(WALLET_B).get("openai").reveal() == b"sk-b-v2"
    assert [o.key for o in bucket.list("bots/")] == []  # sources deleted after verification


def test_upstream_v1_converted_in_place_with_backup(signer: SignerServer, tmp_path: Path) -> None:
    root = tmp_path / "bucket"
    admin = LocalObjectStore(root)
    key, blob = upstream_v1(
        signer_kek(signer.url, WALLET_A, "openai"), WALLET_A, "openai", b"sk-in-place"
    )
    admin.put(key, blob)
    source = m.UpstreamSource(
        admin, SignerKeySource(signer.url).upstream_kek, backup_dir=tmp_path / "backup"
    )
    open_dest = dest_factory(root)
    report = m.migrate(source, [WALLET_A], open_dest)
    assert [i.status for i in report.items] == [m.MIGRATED]
    stored = admin.get(key).data
    assert stored.startswith(b"PCE") and stored != blob
    assert open_dest(WALLET_A).get("openai").reveal() == b"sk-in-place"
    backup = tmp_path / "backup" / key
    assert backup.read_bytes() == blob
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600
    # rerun: the converted object is no longer upstream-shaped; it is reported, not migrated
    rerun = m.migrate(source, [WALLET_A], open_dest)
    assert [(i.service, i.status) for i in rerun.items] == [("openai", m.IGNORED)]
    assert rerun.ok


def test_upstream_wrong_kek_fails_and_keeps_source(signer: SignerServer, tmp_path: Path) -> None:
    bucket = LocalObjectStore(tmp_path / "upstream")
    key, blob = upstream_v2(b"\x01" * 32, WALLET_A, "openai", b"sealed-with-another-key")
    bucket.put(key, blob)
    source = m.UpstreamSource(
        bucket, SignerKeySource(signer.url).upstream_kek, backup_dir=tmp_path / "b"
    )
    report = m.migrate(source, [WALLET_A], dest_factory(tmp_path / "dest"), delete_source=True)
    assert [i.status for i in report.items] == [m.FAILED]
    assert "integrity" in report.items[0].detail
    assert bucket.get(key).data == blob


def test_a_wallet_the_token_may_not_read_fails_alone(legacy: LegacyServer, tmp_path: Path) -> None:
    from .conftest import TOKEN_A_ONLY

    seeded(legacy)
    source = m.LegacySource(LegacyClient(legacy.url, token=TOKEN_A_ONLY))
    report = m.migrate(source, [WALLET_B, WALLET_A], dest_factory(tmp_path / "dest"))
    failed = [i for i in report.items if i.status == m.FAILED]
    assert [(i.wallet, i.service) for i in failed] == [(WALLET_B, "*")]
    assert "denied" in failed[0].detail
    assert report.counts()[m.MIGRATED] == len(SECRETS[WALLET_A]) and not report.ok


def test_bad_token_stops_before_touching_anything(legacy: LegacyServer, tmp_path: Path) -> None:
    from portable_creds.errors import CredentialsError

    seeded(legacy)
    source = m.LegacySource(LegacyClient(legacy.url, token="wrong"))
    opened: list[str] = []

    def open_dest(wallet: str) -> CredentialStore:
        opened.append(wallet)
        return dest_factory(tmp_path / "dest")(wallet)

    with pytest.raises(CredentialsError):
        m.migrate(source, [WALLET_A], open_dest)
    assert opened == []
