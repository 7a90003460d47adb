"""End to end: a legacy server holding two wallets -> `portable-creds migrate` (a subprocess)
-> every secret reads back identically through `portable-creds get`; reruns do nothing; a run
killed midway resumes and completes; upstream 0x01/0x02 objects migrate too."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from portable_creds.local import LocalObjectStore
from portable_creds.testing.legacy_server import LegacyServer
from portable_creds.testing.signer_server import SignerServer

from .conftest import CLI, TOKEN, WALLET_A, WALLET_B, clean_env, run_cli
from .helpers import signer_kek, upstream_v1, upstream_v2

SECRETS = {
    WALLET_A: {
        "openai": b"sk-a-1",
        "github": b"ghp-a\n",
        "stripe": b"\x00\x01binary\xff",
        "aws": b"A" * 3000,
    },
    WALLET_B: {"openai": b"sk-b-1", "slack": b"xoxb-b"},
}
TOTAL = sum(len(v) for v in SECRETS.values())


def seed(srv: LegacyServer) -> None:
    for wallet, services in SECRETS.items():
        for service, secret in services.items():
            srv.seed(wallet, service, secret)


@pytest.fixture
def env(tmp_path: Path, legacy: LegacyServer) -> dict[str, str]:
    seed(legacy)
    return clean_env(
        tmp_path,
        PORTABLE_CREDS_BACKEND=f"local://{tmp_path / 'dest'}",
        PORTABLE_CREDS_HOME=str(tmp_path / "state"),
        PORTABLE_CREDS_LEGACY_TOKEN=TOKEN,
    )


def migrate_json(legacy: LegacyServer, env: dict[str, str], *extra: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    proc = run_cli(
        ["migrate", "--from-legacy", legacy.url, WALLET_A, WALLET_B, "--json", *extra], env
    )
    return proc.returncode, json.loads(proc.stdout)


def assert_all_read_back(env: dict[str, str]) -> None:
    for wallet, services in SECRETS.items():
        listed = run_cli(["--wallet", wallet, "list"], env)
        assert listed.stdout.decode().split() == sorted(services)
        for service, secret in services.items():
            got = run_cli(["--wallet", wallet, "get", service], env)
            assert got.returncode == 0, got.stderr
            assert got.stdout == secret


def test_migrate_reads_back_identically_then_rerun_does_nothing(
    legacy: LegacyServer, env: dict[str, str], tmp_path: Path
) -> None:
    dry_code, dry = migrate_json(legacy, env, "--dry-run")
    assert dry_code == 0 and dry["counts"]["would-migrate"] == TOTAL
    assert not list((tmp_path / "dest").rglob("*.enc"))

    code, report = migrate_json(legacy, env)
    assert code == 0, report
    assert report["counts"]["migrated"] == TOTAL and report["ok"] is True
    assert {(i["wallet"], i["service"]) for i in report["items"]} == {
        (w, s) for w, svcs in SECRETS.items() for s in svcs
    }
    assert_all_read_back(env)
    for path in (tmp_path / "dest").rglob("*.enc"):
        assert b"sk-a-1" not in path.read_bytes()

    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "dest").rglob("*.enc")}
    code, again = migrate_json(legacy, env)
    assert code == 0
    assert again["counts"]["already"] == TOTAL and again["counts"]["migrated"] == 0
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "dest").rglob("*.enc")} == mtimes
    assert len(legacy.data) == TOTAL  # no --delete-source: the source is untouched

    code, deleted = migrate_json(legacy, env, "--delete-source")
    assert code == 0 and all(w["source_deleted"] for w in deleted["wallets"])
    assert legacy.data == {}
    assert_all_read_back(env)


def test_killed_run_resumes_and_completes(legacy: LegacyServer, env: dict[str, str]) -> None:
    legacy.hang_reads_after(2)
    proc = subprocess.Popen(
        [*CLI, "migrate", "--from-legacy", legacy.url, WALLET_A, WALLET_B, "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert legacy.hanging.wait(60), "the migration never reached the third read"
        proc.kill()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode != 0
    legacy.release()

    code, report = migrate_json(legacy, env)
    assert code == 0, report
    counts = report["counts"]
    assert counts["already"] == 2  # the two finished before the kill are verified, not rewritten
    assert counts["migrated"] == TOTAL - 2
    assert_all_read_back(env)


def test_conflict_exits_non_zero_and_keeps_source(
    legacy: LegacyServer, env: dict[str, str]
) -> None:
    put = run_cli(["--wallet", WALLET_B, "put", "slack"], env, input=b"changed-in-new-store")
    assert put.returncode == 0, put.stderr
    code, report = migrate_json(legacy, env, "--delete-source")
    assert code == 1
    conflicts = [(i["wallet"], i["service"]) for i in report["items"] if i["status"] == "conflict"]
    assert conflicts == [(WALLET_B, "slack")]
    by_wallet = {w["wallet"]: w["source_deleted"] for w in report["wallets"]}
    assert by_wallet == {WALLET_A: True, WALLET_B: False}
    assert {s for (w, s) in legacy.data} == set(SECRETS[WALLET_B])
    got = run_cli(["--wallet", WALLET_B, "get", "slack"], env)
    assert got.stdout == b"changed-in-new-store"


def test_bad_token_is_a_credentials_error(legacy: LegacyServer, env: dict[str, str]) -> None:
    env = {**env, "PORTABLE_CREDS_LEGACY_TOKEN": "nope"}
    proc = run_cli(["migrate", "--from-legacy", legacy.url, WALLET_A], env)
    assert proc.returncode == 9  # CredentialsError's documented exit code
    assert proc.stdout == b""
    assert proc.stderr.count(b"\n") == 1 and b"rejected the session token" in proc.stderr


def test_text_report_and_plain_progress(legacy: LegacyServer, env: dict[str, str]) -> None:
    proc = run_cli(["migrate", "--from-legacy", legacy.url, WALLET_B], env)
    assert proc.returncode == 0
    out = proc.stdout.decode()
    assert f"migrated       {WALLET_B} openai" in out and "summary: 2 migrated" in out
    assert proc.stderr.decode().splitlines()[-2:] == [
        f"migrate: [1/2] {WALLET_B} openai: migrated",
        f"migrate: [2/2] {WALLET_B} slack: migrated",
    ]


def test_upstream_blobs_migrate_and_read_back(tmp_path: Path) -> None:
    with SignerServer() as signer:
        bucket_root = tmp_path / "upstream-bucket"
        bucket = LocalObjectStore(bucket_root)
        blobs = {
            (WALLET_A, "openai"): upstream_v1(
                signer_kek(signer.url, WALLET_A, "openai"), WALLET_A, "openai", b"sk-v1-a"
            ),
            (WALLET_A, "github"): upstream_v2(
                signer_kek(signer.url, WALLET_A, "github"), WALLET_A, "github", b"ghp-v2-a"
            ),
            (WALLET_B, "openai"): upstream_v2(
                signer_kek(signer.url, WALLET_B, "openai"), WALLET_B, "openai", b"sk-v2-b"
            ),
        }
        for key, blob in blobs.values():
            bucket.put(key, blob)
        env = clean_env(
            tmp_path,
            PORTABLE_CREDS_BACKEND=f"local://{tmp_path / 'dest'}",
            PORTABLE_CREDS_HOME=str(tmp_path / "state"),
            AGENTKEYS_SIGNER_URL=signer.url,
        )
        args = [
            "migrate",
            "--from-upstream",
            f"local://{bucket_root}",
            WALLET_A,
            WALLET_B,
            "--json",
        ]
        proc = run_cli(args, env)
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)
        assert sorted(
            (i["wallet"], i["service"], i["source"], i["status"]) for i in report["items"]
        ) == sorted(
            [
                (WALLET_A, "github", "upstream-v2", "migrated"),
                (WALLET_A, "openai", "upstream-v1", "migrated"),
                (WALLET_B, "openai", "upstream-v2", "migrated"),
            ]
        )
        for (wallet, service), secret in (
            ((WALLET_A, "openai"), b"sk-v1-a"),
            ((WALLET_A, "github"), b"ghp-v2-a"),
            ((WALLET_B, "openai"), b"sk-v2-b"),
        ):
            got = run_cli(["--wallet", wallet, "get", service], env)
            assert got.stdout == secret, got.stderr
        again = json.loads(run_cli(args, env).stdout)
        assert again["counts"]["already"] == 3 and again["counts"]["migrated"] == 0

        missing = run_cli(args, {k: v for k, v in env.items() if k != "AGENTKEYS_SIGNER_URL"})
        assert missing.returncode == 6 and b"--signer-url" in missing.stderr


def test_progress_bar_on_a_terminal(legacy: LegacyServer, env: dict[str, str]) -> None:
    import os
    import pty

    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run(
            [*CLI, "migrate", "--from-legacy", legacy.url, WALLET_B],
            env=env,
            stdout=subprocess.PIPE,
            stderr=secondary,
            timeout=120,
            check=False,
        )
        os.close(secondary)
        secondary = -1
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        if secondary != -1:
            os.close(secondary)
        os.close(primary)
    assert proc.returncode == 0
    tty_out = b"".join(chunks).decode()
    assert "\r[###############---------------] 1/2" in tty_out
    assert "\r[##############################] 2/2" in tty_out
    assert "migrate: [" not in tty_out  # no plain lines on a terminal
