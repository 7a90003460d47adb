"""Building our wheels once and installing them into fresh venvs outside the checkout.

Used by the packaging tests (``conftest.house`` builds one wheelhouse per session): our five
distributions are built without build isolation, every third-party requirement of them and of
their user-facing extras is turned into a wheel once (pip's cache makes that cheap), and each
venv then installs with ``--no-index`` from those two directories only.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable

#: distribution -> its project directory in this repository
PROJECTS: dict[str, Path] = {
    "portable-creds": REPO,
    "portable-creds-aws": REPO / "drivers" / "aws",
    "portable-creds-tencent": REPO / "drivers" / "tencent",
    "portable-creds-conformance": REPO / "conformance",
    "portable-creds-sqlite": REPO / "examples" / "sqlite-driver",
}
OURS = set(PROJECTS)

#: What the "everything" venv installs: every distribution with every user-facing extra.
EVERYTHING = [
    "portable-creds[serve]",
    "portable-creds-aws[testing,conformance]",
    "portable-creds-tencent[conformance,vendor]",
    "portable-creds-conformance",
    "portable-creds-sqlite[conformance]",
]

#: Run inside a venv: import each module named on stdin, report ``{module: error or None}``.
IMPORT_ALL = r"""
import importlib, json, sys
result = {}
for name in sys.stdin.read().split():
    try:
        importlib.import_module(name)
        result[name] = None
    except ImportError as exc:
        result[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps(result))
"""


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None,
         stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, input=stdin, capture_output=True, text=True,
                          check=False)


def ok(cmd: list[str], cwd: Path, env: dict[str, str] | None = None,
        stdin: str | None = None) -> str:
    proc = run(cmd, cwd, env, stdin)
    assert proc.returncode == 0, f"{cmd}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def metadata(wheel: Path) -> tuple[str, list[str]]:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(zf.read(name).decode())
    return meta["Name"], meta.get_all("Requires-Dist") or []


def modules(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.endswith(".py") and ".dist-info/" not in n]
    mods = []
    for n in names:
        parts = n[: -len(".py")].split("/")
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods.append(".".join(parts))
    return sorted(mods)


class Wheelhouse:
    """Our wheels (``ours``) and every third-party wheel they or their extras need (``deps``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ours = root / "ours"
        self.deps = root / "deps"
        self.wheels: dict[str, Path] = {}

    def build(self) -> None:
        ok([PY, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
             "-w", str(self.ours), *[str(p) for p in PROJECTS.values()]], cwd=self.root)
        for wheel in self.ours.glob("*.whl"):
            self.wheels[metadata(wheel)[0]] = wheel
        assert set(self.wheels) == OURS
        # Third-party requirements of every distribution and every non-dev extra, fetched once
        # (pip's cache makes this cheap); the venvs then install with --no-index.
        reqs = set()
        for wheel in self.wheels.values():
            for req in metadata(wheel)[1]:
                spec, _, marker = req.partition(";")
                if "'dev'" in marker or re.split(r"[\[<>=!~ ]", spec.strip())[0] in OURS:
                    continue
                reqs.add(spec.strip())
        (self.root / "reqs.txt").write_text("\n".join(sorted(reqs)) + "\n")
        # ``pip wheel``, not ``download``: a dependency published as an sdist only (crcmod, for
        # the COS SDK) becomes a wheel once (pip's wheel cache), so --no-index installs work.
        ok([PY, "-m", "pip", "wheel", "-q", "-w", str(self.deps), "-r",
             str(self.root / "reqs.txt")], cwd=self.root)

    def venv(self, name: str, requirements: list[str]) -> Path:
        """A fresh venv (no pip of its own) with ``requirements`` installed from the house."""
        path = self.root / "venvs" / name
        if path.exists():
            return path
        ok([PY, "-m", "venv", "--without-pip", str(path)], cwd=self.root)
        ok([PY, "-m", "pip", "--python", str(path / "bin" / "python"), "install", "-q",
             "--no-index", "--find-links", str(self.ours), "--find-links", str(self.deps),
             *requirements], cwd=self.root)
        return path


def user_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PORTABLE_CREDS_", "AGENTKEYS_", "XDG_", "AWS_", "PYTHON",
                                "VIRTUAL_ENV"))}
    env["HOME"] = str(home)
    env["PATH"] = "/usr/bin:/bin"
    return env


