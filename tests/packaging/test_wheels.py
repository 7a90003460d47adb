"""The wheels stand alone: built from the tree, installed into fresh venvs outside the checkout.

A new user installs wheels, not an editable checkout. For each distribution alone, and for all
of them together (with every extra), this builds the wheels once, installs them into a fresh
venv in a temporary directory with ``--no-index`` (the third-party wheels are fetched once per
session, through pip's cache), and then, from a directory outside the repository:

* runs ``portable-creds --help``, ``python -m portable_creds --help`` and ``portable-creds demo``;
* imports every module the distribution's wheel ships. A module may fail to import only when
  it needs an extra the venv lacks, and then its ``ImportError`` must name that extra
  (``pip install 'DIST[EXTRA]'``); in the venv with everything, every module imports.

So a shipped module importing an undeclared package fails here (the AWS-only install used to
break ``portable_creds_aws.testing.oidc``, which needs PyJWT).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .wheelhouse import (
    EVERYTHING,
    IMPORT_ALL,
    OURS,
    PROJECTS,
    Wheelhouse,
    metadata,
    modules,
    ok,
    run,
    user_env,
)


def _check_cli(venv: Path, cwd: Path) -> None:
    env = user_env(cwd)
    bin_ = venv / "bin"
    help_text = ok([str(bin_ / "portable-creds"), "--help"], cwd, env)
    assert "Documentation: https://" in help_text
    assert "README" not in help_text and "pip install -e" not in help_text
    assert ok([str(bin_ / "python"), "-m", "portable_creds", "--help"], cwd, env) == help_text
    demo = json.loads(ok([str(bin_ / "portable-creds"), "demo", "--json"], cwd, env))
    assert demo["ok"] is True and demo["tamper_detected"] is True, demo


def _check_imports(h: Wheelhouse, venv: Path, dists: list[str], cwd: Path, *,
                   complete: bool) -> None:
    owner = {m: d for d in dists for m in modules(h.wheels[d])}
    out = ok([str(venv / "bin" / "python"), "-c", IMPORT_ALL], cwd, user_env(cwd),
             stdin="\n".join(owner))
    failed = {m: err for m, err in json.loads(out).items() if err is not None}
    if complete:
        assert not failed, failed
    for module, err in failed.items():
        dist = owner[module]
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
    env = user_env(tmp_path)
    # the entry points of every driver resolve from the wheels
    listed = json.loads(ok([str(venv / "bin" / "portable-creds"), "admin", "--json"],
                            tmp_path, env))
    assert {"s3", "cos"} <= set(listed["drivers"])
    suites = ok([str(venv / "bin" / "portable-creds"), "conformance", "--list"], tmp_path, env)
    assert all(d in suites for d in ("local", "s3", "cos", "sqlite")), suites


def test_core_alone_names_the_distribution_to_install(house: Wheelhouse,
                                                      tmp_path: Path) -> None:
    """Hints a wheel user sees name a distribution on the index, never a checkout path."""
    venv = house.venv("portable-creds", ["portable-creds"])
    env = user_env(tmp_path)
    for args in (["conformance", "--list"], ["admin"],
                 ["--backend", "s3://bucket", "--wallet", "0x" + "ab" * 20, "list"]):
        proc = run([str(venv / "bin" / "portable-creds"), *args], tmp_path, env)
        assert proc.returncode == 6, (args, proc.stderr)
        assert re.search(r"pip install portable-creds-[a-z]+", proc.stderr), proc.stderr
        assert "-e " not in proc.stderr and "checkout" not in proc.stderr, proc.stderr


def test_versions_have_one_source_and_drivers_pin_the_minor_series(house: Wheelhouse) -> None:
    import portable_creds

    version = portable_creds.__version__
    major, minor = (int(x) for x in version.split(".")[:2])
    for dist, wheel in house.wheels.items():
        assert wheel.name.split("-")[1] == version, dist
        for req in metadata(wheel)[1]:
            if re.match(r"portable-creds(-conformance)?[<>=]", req):
                assert f">={version}" in req and f"<{major}.{minor + 1}" in req, (dist, req)
    for project in PROJECTS.values():
        text = (project / "pyproject.toml").read_text()
        assert 'dynamic = ["version"]' in text and "\nversion =" not in text, project
