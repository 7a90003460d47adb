"""``completion bash|zsh|fish``: the bash script, sourced in a real bash, completes commands,
subcommands, options and option values; it follows the parser, so it cannot go stale."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from .conftest import Cli

# Completes the words given on argv (the last one is the word under the cursor) with the
# sourced script's function, exactly as bash's programmable completion calls it.
COMPLETE = r"""
source "$1"; shift
COMP_WORDS=(portable-creds "$@")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
_portable_creds
printf '%s\n' "${COMPREPLY[@]}"
"""


@pytest.fixture
def bash_script(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("completion") / "portable-creds.bash"
    path.write_bytes(cli.ok("completion", "bash").stdout)
    return str(path)


def complete(script: str, *words: str) -> list[str]:
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", COMPLETE, "complete", script, *words],
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return sorted(w for w in proc.stdout.decode().splitlines() if w)


def test_bash_script_is_valid_and_registers_the_function(bash_script: str) -> None:
    proc = subprocess.run(
        ["bash", "--norc", "-c", 'source "$1" && complete -p portable-creds', "x", bash_script],
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert "-F _portable_creds portable-creds" in proc.stdout.decode()


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (("pu",), ["put"]),
        (("outbox", "fl"), ["flush"]),
        (("config", "s"), ["set", "show"]),
        (("--wallet", "0xabc", "de"), ["delete", "demo"]),  # the option's value is skipped
        (("--scope-enforcement", ""), ["client", "cloud"]),
        (("completion", ""), ["bash", "fish", "zsh"]),
        (("put", "--fr"), ["--from-file"]),
        (("audit", "tail", "--fol"), ["--follow"]),
        (("doctor", "--time"), ["--timeout"]),
    ],
)
def test_bash_completes(bash_script: str, words: tuple[str, ...], expected: list[str]) -> None:
    assert complete(bash_script, *words) == expected


def test_bash_offers_every_command_of_the_help_text(cli: Cli, bash_script: str) -> None:
    """Generated from the parser: whatever ``--help`` lists, completion offers."""
    help_text = cli.ok("--help").stdout.decode()
    section = help_text.split("commands:", 1)[1].split("\n\n", 1)[0]
    listed = re.findall(r"^  ([a-z][a-z-]*) ", section, re.M)
    assert "put" in listed and "completion" in listed
    offered = complete(bash_script, "")
    assert set(listed) <= set(offered)
    # global options work after the command too, and are completed there
    assert {"--wallet", "--backend", "--json", "--audit", "--scope"} <= set(
        complete(bash_script, "list", "--")
    )


def _require_shell(name: str) -> None:
    """The real shell checks the script; CI installs it (make test-deps), so it must be there."""
    if shutil.which(name) is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {name} is missing: run 'make test-deps'")
        pytest.skip(f"{name} is not installed (make test-deps installs it): script not checked")


def test_zsh_script_wraps_the_bash_function(cli: Cli) -> None:
    text = cli.ok("completion", "zsh").stdout.decode()
    assert "bashcompinit" in text and "complete -o default -F _portable_creds" in text
    _require_shell("zsh")
    proc = subprocess.run(["zsh", "-n", "-c", text], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode()


def test_fish_script_lists_commands_and_option_values(cli: Cli) -> None:
    text = cli.ok("completion", "fish").stdout.decode()
    assert re.search(
        r"^complete -c portable-creds -n '[^']*' -a put -d 'store a secret", text, re.M
    )
    assert re.search(r"-l scope-enforcement -x -a 'cloud client'", text)
    _require_shell("fish")
    proc = subprocess.run(
        ["fish", "--no-config", "-c", f"{text}\ncomplete -C 'portable-creds pu'"],
        capture_output=True,
        check=False,
    )
    assert proc.stdout.decode().split()[0] == "put"


def test_completion_json_and_bad_shell(cli: Cli) -> None:
    doc = json.loads(cli.ok("completion", "bash", "--json").stdout)
    assert doc["shell"] == "bash" and "complete -o default -F" in doc["script"]
    assert cli.run("completion", "tcsh").returncode == 2
