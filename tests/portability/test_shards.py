"""``--shard I/N`` with N independent ``portable-creds copy`` processes: together they cover
every wallet exactly once, and one killed midway finishes its shard when rerun on its own."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from portable_creds import fleet
from portable_creds.local import LocalObjectStore
from portable_creds.secret_key import SecretKeySource

from .conftest import CLI, Env, clean_env, fleet_secrets, seed, setup_requests, write_secret

N = 3
SECRETS = fleet_secrets(12, 3)


def shard_args(source: str, dest: str, index: int) -> list[str]:
    return [*CLI, "copy", "--from", source, "--to", dest, "--all-wallets",
            "--shard", f"{index}/{N}", "--json", "--quiet"]  # fmt: skip


def report_of(proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    report: dict[str, Any] = json.loads(out)
    return report


def test_n_processes_cover_every_wallet_once_and_a_killed_one_resumes(
    cos: Env, tmp_path: Path
) -> None:
    root = os.urandom(32)
    write_secret(tmp_path / "root.key", root)
    source_store = LocalObjectStore(tmp_path / "src")
    seed(source_store, SecretKeySource(root), SECRETS)
    source = f"local://{tmp_path / 'src'}"
    environ = clean_env(
        tmp_path,
        TENCENTCLOUD_SECRET_ID=cos.double.root.secret_id,
        TENCENTCLOUD_SECRET_KEY=cos.double.root.secret_key,
    )
    expected = [fleet.select(SECRETS, fleet.Shard(i, N)) for i in range(N)]
    killed = max(range(N), key=lambda i: len(expected[i]))
    assert len(expected[killed]) >= 2  # enough work to be killed in the middle of

    # The largest shard runs first, alone, and is killed in the middle: the double answers two
    # items (create-only PUT, read-back each) and the third PUT, then hangs on the third
    # read-back - stored but not verified when the process dies.
    faults = cos.double.faults
    answered = setup_requests(cos) + 2 * 2 + 1
    faults.delay_next(answered, seconds=0)
    faults.delay_next(1, seconds=30)
    proc = subprocess.Popen(
        [*shard_args(source, cos.url, killed), "--workers", "1", "--verify", "read"],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120  # a hang guard, not a performance bound
        while faults.injected <= answered and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert faults.injected == answered + 1, "the shard never reached the hanging request"
        proc.kill()
        assert proc.wait(30) == -9
    finally:
        if proc.poll() is None:
            proc.kill()
        faults.clear()

    # The other shards run concurrently, then the killed one is rerun on its own.
    rest = [i for i in range(N) if i != killed]
    others = [
        subprocess.Popen(
            shard_args(source, cos.url, i), env=environ, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in rest
    ]  # fmt: skip
    reports = {i: report_of(p) for i, p in zip(rest, others, strict=True)}
    reports[killed] = report_of(
        subprocess.Popen(
            shard_args(source, cos.url, killed), env=environ, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    )  # fmt: skip

    covered = {i: sorted({item["wallet"] for item in r["items"]}) for i, r in reports.items()}
    assert covered == {i: sorted(expected[i]) for i in range(N)}
    everything = [w for ws in covered.values() for w in ws]
    assert sorted(everything) == sorted(SECRETS)  # union = all, and no wallet twice
    # Two verified and one stored-but-unverified by the killed run: now verified as "already".
    assert reports[killed]["counts"]["already"] == 3
    assert reports[killed]["counts"]["copied"] == 3 * len(expected[killed]) - 3
    assert all(r["ok"] and r["shard"] == f"{i}/{N}" for i, r in reports.items())

    # The destination holds exactly the source's objects, byte for byte.
    admin = cos.admin()
    source_keys = [info.key for info in source_store.list("bots/")]
    assert [info.key for info in admin.list("bots/")] == source_keys
    assert all(admin.get(k).data == source_store.get(k).data for k in source_keys)
