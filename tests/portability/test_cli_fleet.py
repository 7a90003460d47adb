"""``rewrap --all-wallets [--shard I/N]`` and ``copy`` usage errors, through the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

from portable_creds import envelope, fleet
from portable_creds.local import LocalObjectStore
from portable_creds.secret_key import SecretKeySource

from .conftest import clean_env, fleet_secrets, run_cli, seed, write_secret

SECRETS = fleet_secrets(6, 2)


def test_rewrap_all_wallets_rotates_the_fleet_shard_by_shard(tmp_path: Path) -> None:
    root = os.urandom(32)
    secret = write_secret(tmp_path / "root.key", root)
    store = LocalObjectStore(tmp_path / "s")
    seed(store, SecretKeySource(root), SECRETS)
    environ = clean_env(
        tmp_path,
        PORTABLE_CREDS_BACKEND=f"local://{tmp_path / 's'}",
        PORTABLE_CREDS_SECRET_FILE=str(secret),
    )
    shard0 = fleet.select(SECRETS, fleet.Shard(0, 2))
    base = ["--kek-version", "2", "rewrap", "--all-wallets", "--json"]
    first = run_cli([*base, "--shard", "0/2"], environ)
    assert first.returncode == 0, first.stderr.decode()
    assert json.loads(first.stdout)["wallets"] == {w: 2 for w in shard0}
    rest = run_cli(base, environ)
    assert json.loads(rest.stdout)["rewrapped"] == 2 * (len(SECRETS) - len(shard0))
    assert json.loads(run_cli(base, environ).stdout)["rewrapped"] == 0
    ids = {envelope.parse_header(store.get(i.key).data).kek_id for i in store.list("bots/")}
    assert len(ids) == 1 and next(iter(ids)).startswith("sk.v2.")


def test_copy_usage_errors_are_clear(tmp_path: Path) -> None:
    environ = clean_env(tmp_path)
    src, dst = f"local://{tmp_path / 'a'}", f"local://{tmp_path / 'b'}"
    both = run_cli(["copy", "--from", src, "--to", dst, "--all-wallets", "0x" + "1" * 40], environ)
    assert both.returncode == 2 and b"not both" in both.stderr
    none = run_cli(["copy", "--from", src, "--to", dst], environ)
    assert none.returncode == 2 and b"--all-wallets" in none.stderr
    shard = run_cli(
        ["copy", "--from", src, "--to", dst, "--all-wallets", "--shard", "2/2"], environ
    )
    assert shard.returncode != 0 and b"0 <= I < N" in shard.stderr
    same = run_cli(["copy", "--from", src, "--to", src, "--all-wallets"], environ)
    assert same.returncode != 0 and b"same location" in same.stderr


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise(tmp_path: Path) -> None:
    import pty
    import subprocess

    from .conftest import CLI

    root = os.urandom(32)
    seed(LocalObjectStore(tmp_path / "a"), SecretKeySource(root), {w: SECRETS[w] for w in SECRETS})
    environ = clean_env(tmp_path)
    args = ["copy", "--from", f"local://{tmp_path / 'a'}", "--to", f"local://{tmp_path / 'b'}",
            "--all-wallets", "--workers", "1"]  # fmt: skip
    plain = run_cli(args, environ)
    lines = [ln for ln in plain.stderr.decode().splitlines() if ln.startswith("copy: [")]
    assert len(lines) == 12 and lines[-1].startswith("copy: [12/12] ")
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run(
            [*CLI, *args[:-4], f"local://{tmp_path / 'c'}", *args[-3:]],
            env=environ, stdout=subprocess.PIPE, stderr=secondary, timeout=120, check=False,
        )  # fmt: skip
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
    assert "\r[##############################] 12/12" in tty_out
    assert "copy: [" not in tty_out
