"""migrate reports every object under a migrated prefix, keeps the source when anything was
not migrated or changed since verification, and names upstream's worker-written 0x02 objects
instead of calling them tampered (issue 12 #8)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portable_creds import migrate as m
from portable_creds.local import LocalObjectStore
from portable_creds.secret_key import SecretKeySource
from portable_creds.signer import SignerKeySource
from portable_creds.store import CredentialStore
from portable_creds.testing.legacy_server import LegacyServer
from portable_creds.testing.signer_server import SignerServer

from .conftest import WALLET_A, clean_env, run_cli
from .helpers import omni, signer_kek, upstream_v1, upstream_v2, upstream_worker

ROOT = bytes(range(32))


@pytest.fixture(scope="module")
def signer() -> SignerServer:
    with SignerServer() as srv:
        yield srv  # type: ignore[misc]


WORKER_KEK = bytes(range(100, 132))


def open_dest_at(root: Path):  # type: ignore[no-untyped-def]
    def open_dest(wallet: str) -> CredentialStore:
        return CredentialStore(LocalObjectStore(root, wallet=wallet), SecretKeySource(ROOT), wallet)

    return open_dest


def upstream_source(bucket: LocalObjectStore, signer: SignerServer, tmp: Path, **kw: object):  # type: ignore[no-untyped-def]
    return m.UpstreamSource(
        bucket, SignerKeySource(signer.url).upstream_kek, backup_dir=tmp / "backup", **kw
    )


def test_every_object_under_a_migrated_prefix_gets_a_line(
    signer: SignerServer, tmp_path: Path
) -> None:
    bucket = LocalObjectStore(tmp_path / "upstream")
    k = lambda s: signer_kek(signer.url, WALLET_A, s)  # noqa: E731
    v1 = f"bots/{WALLET_A}/credentials/"
    v2 = f"bots/{omni(WALLET_A)}/credentials/"
    good_key, good = upstream_v1(k("good"), WALLET_A, "good", b"sk-good")
    bucket.put(good_key, good)
    bucket.put(v1 + "trunc.enc", b"\x01" + b"n" * 20)
    _, moved = upstream_v2(k("moved"), WALLET_A, "moved", b"sk-moved")
    bucket.put(v1 + "moved.enc", moved)  # a 0x02 blob at a 0x01 path
    for key, blob in (
        upstream_v1(k("both"), WALLET_A, "both", b"old"),
        upstream_v2(k("both"), WALLET_A, "both", b"new"),
    ):
        bucket.put(key, blob)
    bucket.put(v1 + "junk.enc", b"hello, not a blob at all")
    bucket.put(v1 + "README.txt", b"notes")
    bucket.put(v2 + "nested/x.enc", b"\x02" + b"z" * 40)
    report = m.migrate(
        upstream_source(bucket, signer, tmp_path),
        [WALLET_A],
        open_dest_at(tmp_path / "dest"),
        delete_source=True,
    )
    lines = {(i.service, i.status): i.detail for i in report.items}
    assert set(lines) == {
        ("good", m.MIGRATED),
        ("both", m.MIGRATED),
        ("both", m.FAILED),
        ("trunc", m.FAILED),
        ("moved", m.FAILED),
        ("junk", m.FAILED),
        ("README.txt", m.FAILED),
        ("nested/x.enc", m.FAILED),
    }
    assert "truncated: 21 bytes" in lines[("trunc", m.FAILED)]
    assert "0x02 blob at a 0x01 path" in lines[("moved", m.FAILED)]
    assert "superseded" in lines[("both", m.FAILED)]
    assert not report.ok
    (wallet,) = report.wallets
    assert not wallet.source_deleted and "source kept" in wallet.detail
    assert bucket.get(good_key).data == good  # nothing deleted
    assert "source kept" in m.render_text(report)


def _rotating_progress(action):  # type: ignore[no-untyped-def]
    class Rotate(m.Progress):
        def item(self, item: m.Item) -> None:
            super().item(item)
            action()

    return Rotate(enabled=False)


def test_delete_source_keeps_a_value_rotated_after_verification(
    signer: SignerServer, tmp_path: Path
) -> None:
    bucket = LocalObjectStore(tmp_path / "upstream")
    kek = signer_kek(signer.url, WALLET_A, "openai")
    key, blob = upstream_v1(kek, WALLET_A, "openai", b"sk-1")
    bucket.put(key, blob)
    _, rotated = upstream_v1(kek, WALLET_A, "openai", b"sk-2-rotated")
    report = m.migrate(
        upstream_source(bucket, signer, tmp_path),
        [WALLET_A],
        open_dest_at(tmp_path / "dest"),
        delete_source=True,
        progress=_rotating_progress(lambda: bucket.put(key, rotated)),
    )
    assert [i.status for i in report.items] == [m.MIGRATED]
    (wallet,) = report.wallets
    assert not wallet.source_deleted and "changed" in wallet.detail
    assert bucket.get(key).data == rotated


def test_legacy_delete_source_keeps_a_value_rotated_after_verification(
    legacy: LegacyServer, tmp_path: Path
) -> None:
    from portable_creds.legacy import LegacyClient

    from .conftest import TOKEN

    legacy.seed(WALLET_A, "openai", b"sk-1")
    report = m.migrate(
        m.LegacySource(LegacyClient(legacy.url, token=TOKEN)),
        [WALLET_A],
        open_dest_at(tmp_path / "dest"),
        delete_source=True,
        progress=_rotating_progress(lambda: legacy.seed(WALLET_A, "openai", b"sk-2")),
    )
    (wallet,) = report.wallets
    assert not wallet.source_deleted and "changed" in wallet.detail
    assert LegacyClient(legacy.url, token=TOKEN).read(WALLET_A, "openai") == b"sk-2"


def test_worker_written_objects_are_named_then_migrated_with_the_worker_kek(
    signer: SignerServer, tmp_path: Path
) -> None:
    bucket = LocalObjectStore(tmp_path / "upstream")
    for key, blob in (
        upstream_worker(WORKER_KEK, WALLET_A, "github", b"ghp-worker"),
        upstream_worker(WORKER_KEK, WALLET_A, "OpenRouter", b"sk-or-worker"),
    ):
        bucket.put(key, blob)
    open_dest = open_dest_at(tmp_path / "dest")
    plain = m.migrate(upstream_source(bucket, signer, tmp_path), [WALLET_A], open_dest)
    assert [i.status for i in plain.items] == [m.FAILED, m.FAILED]
    assert all("--worker-kek-file" in i.detail for i in plain.items)
    with_kek = m.migrate(
        upstream_source(bucket, signer, tmp_path, worker_kek=WORKER_KEK),
        [WALLET_A],
        open_dest,
    )
    statuses = {i.service: i.status for i in with_kek.items}
    assert statuses == {"github": m.MIGRATED, "openrouter": m.FAILED}
    (failed,) = [i for i in with_kek.items if i.status == m.FAILED]
    assert "--worker-service" in failed.detail
    named = m.migrate(
        upstream_source(
            bucket, signer, tmp_path, worker_kek=WORKER_KEK, worker_services=["OpenRouter"]
        ),
        [WALLET_A],
        open_dest,
        delete_source=True,
    )
    assert {(i.service, i.source, i.status) for i in named.items} == {
        ("github", "upstream-v2", m.ALREADY),
        ("OpenRouter", "upstream-worker", m.MIGRATED),
    }
    assert open_dest(WALLET_A).get("OpenRouter").reveal() == b"sk-or-worker"
    assert named.wallets[0].source_deleted
    assert list(bucket.list("bots/")) == []


def test_cli_exits_non_zero_and_keeps_the_source(tmp_path: Path, signer: SignerServer) -> None:
    root = tmp_path / "upstream-bucket"
    bucket = LocalObjectStore(root)
    key, blob = upstream_v1(signer_kek(signer.url, WALLET_A, "ok"), WALLET_A, "ok", b"v")
    bucket.put(key, blob)
    bucket.put(f"bots/{WALLET_A}/credentials/trunc.enc", b"\x01abc")
    wkey, wblob = upstream_worker(WORKER_KEK, WALLET_A, "svc", b"w")
    bucket.put(wkey, wblob)
    env = clean_env(
        tmp_path,
        PORTABLE_CREDS_BACKEND=f"local://{tmp_path / 'dest'}",
        PORTABLE_CREDS_HOME=str(tmp_path / "state"),
        AGENTKEYS_SIGNER_URL=signer.url,
    )
    args = ["migrate", "--from-upstream", f"local://{root}", WALLET_A, "--delete-source"]
    proc = run_cli([*args, "--json"], env)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert {(i["service"], i["status"]) for i in report["items"]} == {
        ("ok", "migrated"),
        ("trunc", "failed"),
        ("svc", "failed"),
    }
    assert report["wallets"][0]["source_deleted"] is False
    assert bucket.get(key).data == blob
    kek_file = tmp_path / "worker.kek"
    kek_file.write_text(WORKER_KEK.hex() + "\n")
    bucket.delete(f"bots/{WALLET_A}/credentials/trunc.enc")
    proc = run_cli([*args, "--worker-kek-file", str(kek_file)], env)
    assert proc.returncode == 0, proc.stderr
    assert b"source deleted" in proc.stdout
    assert list(bucket.list("bots/")) == []
    bad = tmp_path / "bad.kek"
    bad.write_text("zz")
    proc = run_cli([*args, "--worker-kek-file", str(bad)], env)
    assert proc.returncode == 6 and b"64 hex" in proc.stderr


@pytest.mark.parametrize("size", [0, 5])
def test_empty_and_tiny_objects_are_reported(
    signer: SignerServer, tmp_path: Path, size: int
) -> None:
    bucket = LocalObjectStore(tmp_path / "upstream")
    bucket.put(f"bots/{WALLET_A}/credentials/tiny.enc", b"\x01" * size)
    report = m.migrate(
        upstream_source(bucket, signer, tmp_path), [WALLET_A], open_dest_at(tmp_path / "d")
    )
    assert [(i.service, i.status) for i in report.items] == [("tiny", m.FAILED)]
