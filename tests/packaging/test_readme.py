"""The README's Install and Python API sections run as written, against the built wheels.

The install block runs in bash with HOME in a temporary directory and pip pointed at the
session's wheelhouse (``PIP_NO_INDEX``, ``PIP_FIND_LINKS``), so ``pip install portable-creds``
installs exactly the wheels built from this tree. The first Python block of the API section
runs in a venv holding only the core wheel, outside the checkout, and every ``# prints: X``
comment is checked against what it printed (``...`` at the end: a prefix).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from .wheelhouse import REPO, Wheelhouse, ok, user_env

README = (REPO / "README.md").read_text()


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.M | re.S)
    assert match, title
    return match.group(1)


def _blocks(section: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", section, re.S)


def test_install_section_runs_as_written(house: Wheelhouse, tmp_path: Path) -> None:
    (script,) = _blocks(_section("Install"), "sh")
    env = user_env(tmp_path)
    base_python = Path(getattr(sys, "_base_executable", sys.executable))
    env["PATH"] = f"{base_python.parent}:{env['PATH']}"  # the user's python3
    env["PIP_NO_INDEX"] = "1"
    env["PIP_FIND_LINKS"] = f"{house.ours} {house.deps}"
    out = ok(["bash", "-euo", "pipefail", "-c", script], tmp_path, env)
    venv = tmp_path / ".venvs" / "portable-creds"
    assert (venv / "bin" / "portable-creds").exists()
    import portable_creds

    assert f"portable-creds {portable_creds.__version__}" in out
    assert "[5/5]" in out or "integrity" in out.lower(), out  # the demo ran to the end
    # the optional drivers named in the block are installed and register their schemes
    drivers = ok([str(venv / "bin" / "portable-creds"), "admin", "--json"], tmp_path, env)
    assert '"s3"' in drivers and '"cos"' in drivers


def test_python_api_section_runs_as_written(house: Wheelhouse, tmp_path: Path) -> None:
    code = _blocks(_section("Python API"), "python")[0]
    venv = house.venv("portable-creds", ["portable-creds"])
    out = ok([str(venv / "bin" / "python"), "-c", code], tmp_path, user_env(tmp_path))
    printed = out.splitlines()
    expected = re.findall(r"# prints: (.*)$", code, re.M)
    assert len(printed) == len(expected) >= 4, (printed, expected)
    for got, want in zip(printed, expected, strict=True):
        if want.endswith("..."):
            assert got.startswith(want[:-3]), (got, want)
        else:
            assert got == want
