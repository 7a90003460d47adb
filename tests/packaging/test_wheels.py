"""The wheels stand alone: built from the tree, installed into fresh venvs outside the checkout.

A new user installs wheels, not an editable checkout. For each distribution alone, and for all
of them together (with every extra), this builds the wheels once, installs them into a fresh
venv in a temporary directory with ``--no-index`` (the third-party wheels are fetched once per
module, through pip's cache), and then, from a directory outside the repository:

* runs ``portable-creds --help``, ``python -m portable_creds --help`` and ``portable-creds demo``;
* imports every module the distribution's wheel ships. A module may fail to import only when
  it needs an extra the venv lacks, and then its ``ImportError`` must name that extra
  (``pip install 'DIST[EXTRA]'``); in the venv with everything, every module imports.

So a shipped module importing an undeclared package fails here (the AWS-only install used to
break ``portable_creds_aws.testing.oidc``, which needs PyJWT).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from email.parser import Parser
from pathlib import Path

import pytest

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
    "portable-creds",
    "portable-creds-aws[testing,conformance]",
    "portable-creds-tencent[conformance]",
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


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None,
         stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, input=stdin, capture_output=True, text=True,
                          check=False)


def _ok(cmd: list[str], cwd: Path, env: dict[str, str] | None = None,
        stdin: str | None = None) -> str:
    proc = _run(cmd, cwd, env, stdin)
    assert proc.returncode == 0, f"{cmd}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _metadata(wheel: Path) -> tuple[str, list[str]]:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(zf.read(name).decode())
    return meta["Name"], meta.get_all("Requires-Dist") or []


def _modules(wheel: Path) -> list[str]:
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
        _ok([PY, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
             "-w", str(self.ours), *[str(p) for p in PROJECTS.values()]], cwd=self.root)
        for wheel in self.ours.glob("*.whl"):
            self.wheels[_metadata(wheel)[0]] = wheel
        assert set(self.wheels) == OURS
        # Third-party requirements of every distribution and every non-dev extra, fetched once
        # (pip's cache makes this cheap); the venvs then install with --no-index.
        reqs = set()
        for wheel in self.wheels.values():
            for req in _metadata(wheel)[1]:
                spec, _, marker = req.partition(";")
                if "'dev'" in marker or re.split(r"[\[<>=!~ ]", spec.strip())[0] in OURS:
                    continue
                reqs.add(spec.strip())
        (self.root / "reqs.txt").write_text("\n".join(sorted(reqs)) + "\n")
        # ``pip wheel``, not ``download``: a dependency published as an sdist only (crcmod, for
        # the COS SDK) becomes a wheel once (pip's wheel cache), so --no-index installs work.
        _ok([PY, "-m", "pip", "wheel", "-q", "-w", str(self.deps), "-r",
             str(self.root / "reqs.txt")], cwd=self.root)

    def venv(self, name: str, requirements: list[str]) -> Path:
        """A fresh venv (no pip of its own) with ``requirements`` installed from the house."""
        path = self.root / "venvs" / name
        if path.exists():
            return path
        _ok([PY, "-m", "venv", "--without-pip", str(path)], cwd=self.root)
        _ok([PY, "-m", "pip", "--python", str(path / "bin" / "python"), "install", "-q",
             "--no-index", "--find-links", str(self.ours), "--find-links", str(self.deps),
             *requirements], cwd=self.root)
        return path


@pytest.fixture(scope="module")
def house(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wheelhouse]:
    root = tmp_path_factory.mktemp("wheelhouse")
    assert not root.resolve().is_relative_to(REPO)
    h = Wheelhouse(root)
    h.build()
    yield h


def _user_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PORTABLE_CREDS_", "AGENTKEYS_", "XDG_", "AWS_", "PYTHON",
                                "VIRTUAL_ENV"))}
    env["HOME"] = str(home)
    env["PATH"] = "/usr/bin:/bin"
    return env


def _check_cli(venv: Path, cwd: Path) -> None:
    env = _user_env(cwd)
    bin_ = venv / "bin"
    help_text = _ok([str(bin_ / "portable-creds"), "--help"], cwd, env)
    assert "Documentation: https://" in help_text
    assert "README" not in help_text and "pip install -e" not in help_text
    assert _ok([str(bin_ / "python"), "-m", "portable_creds", "--help"], cwd, env) == help_text
    demo = json.loads(_ok([str(bin_ / "portable-creds"), "demo", "--json"], cwd, env))
    assert demo["ok"] is True and demo["tamper_detected"] is True, demo


def _check_imports(h: Wheelhouse, venv: Path, dists: list[str], cwd: Path, *,
                   complete: bool) -> None:
    modules = {m: d for d in dists for m in _modules(h.wheels[d])}
    out = _ok([str(venv / "bin" / "python"), "-c", IMPORT_ALL], cwd, _user_env(cwd),
              stdin="\n".join(modules))
    failed = {m: err for m, err in json.loads(out).items() if err is not None}
    if complete:
        assert not failed, failed
    for module, err in failed.items():
        dist = modules[module]
        # the only acceptable failure: an extra this venv lacks, named in the message
        assert re.search(rf"pip install '{re.escape(dist)}\[[a-z,]+\]'", err), (module, err)


@pytest.mark.parametrize("dist", sorted(OURS))
def test_each_distribution_alone(house: Wheelhouse, dist: str,
                                 tmp_path: Path) -> None:
    venv = house.venv(dist, [dist])
    _check_cli(venv, tmp_path)
    _check_imports(house, venv, [dist], tmp_path, complete=False)


def test_all_distributions_together(house: Wheelhouse, tmp_path: Path) -> None:
    venv = house.venv("everything", EVERYTHING)
    _check_cli(venv, tmp_path)
    _check_imports(house, venv, sorted(OURS), tmp_path, complete=True)
    env = _user_env(tmp_path)
    # the entry points of every driver resolve from the wheels
    listed = json.loads(_ok([str(venv / "bin" / "portable-creds"), "admin", "--json"],
                            tmp_path, env))
    assert {"s3", "cos"} <= set(listed["drivers"])
    suites = _ok([str(venv / "bin" / "portable-creds"), "conformance", "--list"], tmp_path, env)
    assert all(d in suites for d in ("local", "s3", "cos", "sqlite")), suites


def test_core_alone_names_the_distribution_to_install(house: Wheelhouse,
                                                      tmp_path: Path) -> None:
    """Hints a wheel user sees name a distribution on the index, never a checkout path."""
    venv = house.venv("portable-creds", ["portable-creds"])
    env = _user_env(tmp_path)
    for args in (["conformance", "--list"], ["admin"],
                 ["--backend", "s3://bucket", "--wallet", "0x" + "ab" * 20, "list"]):
        proc = _run([str(venv / "bin" / "portable-creds"), *args], tmp_path, env)
        assert proc.returncode == 6, (args, proc.stderr)
        assert re.search(r"pip install portable-creds-[a-z]+", proc.stderr), proc.stderr
        assert "-e " not in proc.stderr and "checkout" not in proc.stderr, proc.stderr


def test_versions_have_one_source_and_drivers_pin_the_minor_series(house: Wheelhouse) -> None:
    import portable_creds

    version = portable_creds.__version__
    major, minor = (int(x) for x in version.split(".")[:2])
    for dist, wheel in house.wheels.items():
        assert wheel.name.split("-")[1] == version, dist
        for req in _metadata(wheel)[1]:
            if re.match(r"portable-creds(-conformance)?[<>=]", req):
                assert f">={version}" in req and f"<{major}.{minor + 1}" in req, (dist, req)
    for project in PROJECTS.values():
        text = (project / "pyproject.toml").read_text()
        assert 'dynamic = ["version"]' in text and "\nversion =" not in text, project
