"""Self-tests of the conformance suite: it passes honest drivers and fails broken ones.

Every run is a real subprocess (the CLI, or plain pytest with the plugin), judged by its exit
status and its JSON report. The broken drivers (pc_broken_harnesses.py) each carry one bug;
the corresponding group must FAIL on the expected test ids while a control group still passes.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BROKEN = "pc_broken_harnesses"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTABLE_CREDS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    return env


def run(cwd: Path, *args: str, module: str = "portable_creds_conformance"
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd, env=_env(), capture_output=True, text=True, timeout=900, check=False,
    )


def suite(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    """Run the CLI with a report; return (exit status, report, output)."""
    report = tmp_path / "report.json"
    proc = run(tmp_path, *args, "--report", str(report))
    output = proc.stdout + proc.stderr
    assert report.exists(), f"no report written; output:\n{output[-3000:]}"
    return proc.returncode, json.loads(report.read_text()), output


def outcomes(report: dict[str, Any]) -> dict[str, str]:
    return {t["id"]: t["outcome"] for t in report["tests"]}


def verdicts(report: dict[str, Any]) -> dict[str, str]:
    return {name: g["verdict"] for name, g in report["groups"].items()}


# -- honest drivers pass -------------------------------------------------------------------------


def test_local_driver_passes_every_applicable_group(tmp_path: Path) -> None:
    code, report, output = suite(tmp_path, "--driver", "local")
    assert code == 0, output[-3000:]
    assert report["verdict"] == "pass"
    assert report["driver"] == "local" and report["target"] == "tmpdir"
    v = verdicts(report)
    assert {g for g, verdict in v.items() if verdict != "PASS"} == {"credentials", "scoping"}
    assert v["credentials"] == v["scoping"] == "SKIPPED"
    assert "federation" in report["groups"]["credentials"]["reasons"][0]
    assert "scoped_credentials" in report["groups"]["scoping"]["reasons"][0]
    assert report["capabilities"]["declared"]["server_side_isolation"] is True
    assert all(t["group"] in report["groups"] and t["id"].startswith(t["group"] + ".")
               for t in report["tests"])
    assert len(report["tests"]) >= 100
    # The human summary: one row per group, the verdict, and why something did not run.
    assert "portable-creds conformance summary" in output
    assert any(line.startswith("isolation-storage") and line.endswith("PASS")
               for line in output.splitlines())
    assert "credentials: skipped - capability federation not declared" in output
    assert "verdict: PASS" in output


def test_sqlite_example_passes_through_the_public_plugin_api(tmp_path: Path) -> None:
    harnesses = importlib.metadata.entry_points(group="portable_creds_conformance.harnesses")
    assert "sqlite" in {ep.name for ep in harnesses}, (
        "examples/sqlite-driver is not installed: pip install -e examples/sqlite-driver"
    )
    code, report, output = suite(
        tmp_path, "--driver", "sqlite",
        "--groups", "roundtrip,isolation-handle,isolation-storage,outbox,integrity",
    )
    assert code == 0, output[-3000:]
    v = verdicts(report)
    assert v["roundtrip"] == v["isolation-handle"] == v["outbox"] == v["integrity"] == "PASS"
    # The example enforces scoping in the driver, so it honestly does not claim the storage
    # service does: the group is skipped, and says why.
    assert v["isolation-storage"] == "SKIPPED"
    reason = report["groups"]["isolation-storage"]["reasons"][0]
    assert "server_side_isolation not declared" in reason
    assert v["listing"] == "NOT RUN"


# -- broken drivers fail the matching group --------------------------------------------------------

BROKEN_CASES = [
    pytest.param(
        "IgnoresTenantPrefix", "isolation-handle,isolation-storage,roundtrip",
        {"isolation-handle", "isolation-storage"},
        ["isolation-handle.cross-tenant[get]", "isolation-handle.cross-tenant[put-new]",
         "isolation-handle.cross-tenant[list]", "isolation-storage.cross-tenant[delete]",
         "isolation-storage.cross-tenant[overwrite]"],
        "roundtrip", id="ignores-tenant-prefix",
    ),
    pytest.param(
        "NoPathBinding", "isolation-crypto,roundtrip", {"isolation-crypto"},
        ["isolation-crypto.cross-tenant-copy-same-kek", "isolation-crypto.cross-service-copy"],
        "roundtrip", id="no-path-binding",
    ),
    pytest.param(
        "DropsPages", "listing,teardown,roundtrip", {"listing", "teardown"},
        ["listing.over-one-page", "teardown.over-one-page"],
        "roundtrip", id="drops-pages",
    ),
    pytest.param(
        "IgnoresConditions", "conditional,roundtrip", {"conditional"},
        ["conditional.create-only", "conditional.create-only-race", "conditional.if-match"],
        "roundtrip", id="ignores-conditions",
    ),
    pytest.param(
        "CachesReads", "integrity,vectors", {"integrity"},
        ["integrity.bit-flip[ciphertext]", "integrity.truncation", "integrity.wrong-kek-id"],
        "vectors", id="caches-reads",
    ),
]


@pytest.mark.parametrize(("harness", "groups", "failing", "failed_ids", "control"), BROKEN_CASES)
def test_broken_driver_fails_its_group(
    tmp_path: Path, harness: str, groups: str, failing: set[str], failed_ids: list[str],
    control: str,
) -> None:
    code, report, output = suite(tmp_path, "--harness", f"{BROKEN}:{harness}", "--groups", groups)
    assert code == 1, output[-3000:]
    assert report["verdict"] == "fail"
    v = verdicts(report)
    assert {g for g, verdict in v.items() if verdict == "FAIL"} == failing
    assert v[control] == "PASS", "the control group must pass: the failure is about the bug"
    got = outcomes(report)
    for case_id in failed_ids:
        assert got.get(case_id) == "failed", f"{case_id}: {got.get(case_id)}"
    assert "verdict: FAIL" in output


# -- plugin activation and the plain pytest route ----------------------------------------------


def test_plugin_is_not_auto_loaded(tmp_path: Path) -> None:
    assert not any(ep.value.startswith("portable_creds_conformance")
                   for ep in importlib.metadata.entry_points(group="pytest11"))
    plain = run(tmp_path, "--help", "-p", "no:cacheprovider", module="pytest")
    assert plain.returncode == 0 and "--pc-driver" not in plain.stdout
    asked = run(tmp_path, "--help", "-p", "portable_creds_conformance.plugin", module="pytest")
    assert asked.returncode == 0 and "--pc-driver" in asked.stdout


def test_plain_pytest_route_with_conftest(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text(
        'pytest_plugins = ["portable_creds_conformance.plugin"]\n'
    )
    report = tmp_path / "r.json"
    proc = run(tmp_path, "--pc-driver", "local", "--pc-groups", "roundtrip,bad-input",
               "--pc-report", str(report), "--pyargs", "portable_creds_conformance.suite", "-q",
               module="pytest")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    data = json.loads(report.read_text())
    v = verdicts(data)
    assert v["roundtrip"] == v["bad-input"] == "PASS"
    assert v["integrity"] == "NOT RUN"
    assert "not selected in this run (--pc-groups / -k): vectors, listing" in proc.stdout


def test_conformance_tests_without_a_driver_are_a_usage_error(tmp_path: Path) -> None:
    proc = run(tmp_path, "-p", "portable_creds_conformance.plugin", "--pyargs",
               "portable_creds_conformance.suite", "-q", module="pytest")
    assert proc.returncode == 4  # pytest's usage error
    assert "--pc-driver" in proc.stderr


# -- reporting rules ----------------------------------------------------------------------------


def test_a_run_where_nothing_can_run_is_not_a_pass(tmp_path: Path) -> None:
    code, report, output = suite(tmp_path, "--driver", "local", "--groups", "scoping")
    assert code != 0
    assert report["verdict"] == "nothing-passed"
    assert verdicts(report)["scoping"] == "SKIPPED"
    assert all(t["outcome"] == "skipped" and t["reason"] for t in report["tests"])
    assert "NOTHING PASSED" in output


def test_harness_override_label_is_reported(tmp_path: Path) -> None:
    code, report, output = suite(
        tmp_path, "--harness", f"{BROKEN}:WithdrawsIfMatch", "--groups", "conditional"
    )
    assert code == 0, output[-3000:]
    caps = report["capabilities"]
    assert caps["declared"]["if_match"] is True and caps["effective"]["if_match"] is False
    assert caps["overrides"] == {"if_match": "pretend: backend X has no if-match"}
    got = {t["id"]: t for t in report["tests"]}
    assert got["conditional.if-match"]["outcome"] == "skipped"
    assert "pretend: backend X has no if-match" in got["conditional.if-match"]["reason"]
    assert got["conditional.create-only"]["outcome"] == "passed"


def test_unknown_override_is_refused(tmp_path: Path) -> None:
    code, report, _ = suite(tmp_path, "--harness", f"{BROKEN}:BadOverride", "--groups", "roundtrip")
    assert code != 0
    assert "no_such_capability" in (report.get("setup_error") or "")
    assert set(outcomes(report).values()) == {"error"}


def test_setup_failure_errors_every_test_and_still_cleans_up(tmp_path: Path) -> None:
    mark = tmp_path / "cleaned"
    config = tmp_path / "harness.toml"
    config.write_text(f'cleanup_mark = "{mark}"\n')
    code, report, output = suite(tmp_path, "--harness", f"{BROKEN}:FailsSetup",
                                 "--config", str(config), "--groups", "roundtrip,teardown")
    assert code != 0
    assert "did not start" in report["setup_error"]
    assert set(outcomes(report).values()) == {"error"}
    assert mark.read_text() == "cleaned up", "cleanup() was not called after a failed setup"
    assert "harness setup FAILED" in output


def test_a_failing_run_still_removes_everything_it_wrote(tmp_path: Path) -> None:
    root = tmp_path / "bucket"
    config = tmp_path / "harness.toml"
    config.write_text(f'root = "{root}"\n')
    code, report, _ = suite(tmp_path, "--harness", f"{BROKEN}:DropsPagesInRoot",
                            "--config", str(config), "--groups", "listing")
    assert code == 1 and verdicts(report)["listing"] == "FAIL"
    run_dir = root / "conformance" / report["run_root"].split("/")[-1]
    assert run_dir.is_dir(), "the run did not write where the test expected"
    left = [p for p in run_dir.rglob("*") if p.is_file() and not p.name.startswith(".pc~")]
    assert left == [], f"{len(left)} objects left behind, e.g. {left[:3]}"


# -- the command line and make conformance --------------------------------------------------------


def test_cli_usage_errors(tmp_path: Path) -> None:
    none = run(tmp_path)
    assert none.returncode == 2 and "--driver" in none.stderr
    unknown = run(tmp_path, "--driver", "nosuch")
    assert unknown.returncode == 2
    assert "no conformance harness registered for driver 'nosuch'" in unknown.stderr
    bad_target = run(tmp_path, "--driver", "local", "--target", "nope")
    assert bad_target.returncode == 2 and "targets: tmpdir" in bad_target.stderr
    listed = run(tmp_path, "--list")
    assert listed.returncode == 0 and "local tmpdir" in listed.stdout
    forwarded = run(tmp_path, "conformance", "--list")  # as forwarded by `portable-creds`
    assert forwarded.stdout == listed.stdout


def test_run_all_writes_one_report_per_target(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, str(REPO / "conformance" / "run_all.py"), "--only", "local",
         "--groups", "roundtrip", "--out", str(out)],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=900, check=False,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    report = json.loads((out / "local-tmpdir.json").read_text())
    assert report["verdict"] == "pass" and report["driver"] == "local"
    assert "local      tmpdir" in proc.stdout
