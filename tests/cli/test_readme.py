"""The README's CLI block runs as written, and its exit-code table is the real one."""

from __future__ import annotations

import json
import re
import subprocess

from portable_creds.errors import EXIT_CODES

from .conftest import BIN, REPO, Cli

README = (REPO / "README.md").read_text()


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.M | re.S)
    assert match, title
    return match.group(1)


def test_exit_code_table_matches_the_error_hierarchy() -> None:
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*([a-z-]+)\s*\|", README, re.M)
    assert {name: int(code) for code, name in rows} == EXIT_CODES


def test_cli_block_runs_as_written(cli: Cli) -> None:
    block = re.search(r"```sh\n(.*?)```", _section("The CLI"), re.S)
    assert block
    script = block.group(1)
    env = dict(cli.env, OPENAI_API_KEY="sk-readme-test",
               PATH=f"{BIN.parent}:{cli.env.get('PATH', '')}")
    # run it, then show what the store holds afterwards
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True,
                          env=env, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode()
    assert out.startswith("sk-readme-test{")  # get prints the bare bytes, then list's JSON
    listed = json.loads(out[len("sk-readme-test"):])
    assert listed["services"] == ["openai"]
    wallet = re.search(r"PORTABLE_CREDS_WALLET=(0x[0-9a-fA-F]+)", script)
    assert wallet and listed["wallet"] == wallet.group(1).lower()
    # the last line deleted it again
    after = subprocess.run([str(BIN), "--wallet", wallet.group(1), "list"], capture_output=True,
                           env=cli.env, check=True)
    assert after.stdout == b""


def test_completion_block_runs_as_written(cli: Cli) -> None:
    section = README.split("### Shell completion\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block
    env = dict(cli.env, PATH=f"{BIN.parent}:{cli.env.get('PATH', '')}")
    proc = subprocess.run(
        ["bash", "--norc", "-euo", "pipefail", "-c", block.group(1) + "complete -p portable-creds"],
        capture_output=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().strip().endswith(" portable-creds")


def test_every_command_the_readme_names_exists(cli: Cli) -> None:
    """Every ``portable-creds WORD`` in code (inline or a block line) names a real command."""
    code = re.findall(r"```sh\n(.*?)```", README, re.S) + re.findall(r"`([^`\n]+)`", README)
    named = {w for c in code for w in re.findall(r"portable-creds ([a-z][a-z-]+)", c)}
    assert {"put", "creds", "completion", "audit", "run"} <= named
    for word in sorted(named):
        proc = cli.run(word, "--help")
        assert proc.returncode == 0, (word, proc.stderr.decode())
