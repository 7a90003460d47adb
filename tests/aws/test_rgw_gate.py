"""Without Ceph the RGW tests skip loudly, except under CI, where they must fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TARGET = str(Path(__file__).with_name("test_rgw_launcher.py"))


def _run_without_ceph(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = str(tmp_path)  # an empty directory: no ceph-mon, radosgw, ...
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", TARGET],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).parents[2],
        timeout=120,
    )


def test_missing_ceph_skips_with_one_loud_line(tmp_path: Path) -> None:
    out = _run_without_ceph(tmp_path, None)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [line for line in out.stdout.splitlines() if "RGW TESTS SKIPPED" in line]
    assert len(lines) == 1
    assert "apt-get install" in lines[0]
    assert "1 skipped" in out.stdout


@pytest.mark.parametrize("ci", ["true", "TRUE"])
def test_missing_ceph_fails_under_ci(tmp_path: Path, ci: str) -> None:
    out = _run_without_ceph(tmp_path, ci)
    assert out.returncode != 0
    assert "CI=true but the RGW isolation tests cannot run" in out.stdout
    assert "skipped" not in out.stdout.splitlines()[-1]
