"""``portable-creds demo``: the narrated walkthrough, and what it leaves behind with --keep."""

from __future__ import annotations

import re
from pathlib import Path

from portable_creds import names
from portable_creds.commands.demo import SERVICE, WALLET_A, WALLET_B
from portable_creds.errors import EXIT_CODES

from .conftest import Cli


def test_demo_narrates_all_five_steps(cli: Cli) -> None:
    proc = cli.ok("demo")
    out = proc.stdout.decode()
    steps = re.findall(r"^\[(\d)/5\] (.+)$", out, re.M)
    assert [n for n, _ in steps] == ["1", "2", "3", "4", "5"]
    assert "identical to what was stored: yes" in out
    assert "[]   (B's list is empty)" in out
    assert "AccessDenied:" in out
    assert "searching the blob for the secret's bytes: not found" in out
    assert "IntegrityError: integrity check failed" in out
    assert re.search(r"^    00000000: 5043 4501", out, re.M)  # the hexdump shows the magic
    # the temporary home is gone and the user's home was never touched
    home = re.search(r"a throw-away home: (\S+);", out)
    assert home and not Path(home.group(1)).exists()
    assert not cli.data_home.exists()


def test_demo_keep_leaves_a_store_the_cli_reads_the_same_way(cli: Cli) -> None:
    out = cli.ok("demo", "--keep").stdout.decode()
    home = Path(re.findall(r"The demo home is kept at (\S+)", out)[0])
    try:
        blob = home / "objects" / names.object_key(WALLET_A, SERVICE)
        assert blob.is_file()
        common = ["--home", str(home), "--backend", f"local://{home / 'objects'}"]
        # the flipped byte makes the CLI fail exactly as the demo said
        proc = cli.run(*common, "--wallet", WALLET_A, "get", SERVICE)
        assert proc.returncode == EXIT_CODES["integrity"]
        assert proc.stdout == b""
        assert cli.ok(*common, "--wallet", WALLET_A, "list").stdout == f"{SERVICE}\n".encode()
        assert cli.ok(*common, "--wallet", WALLET_B, "list").stdout == b""
    finally:
        import shutil

        shutil.rmtree(home)
