"""Outcomes per test and per group: the JSON report and the human summary table.

A test's outcome folds its three pytest phases (setup, call, teardown) into one of passed,
failed, error (setup or teardown broke) or skipped (with the reason). A group's verdict is
FAIL if anything failed, SKIPPED (with the reasons) if nothing could run, NOT RUN if nothing was
selected, PASS otherwise; skipped tests inside a passing group are listed with their reasons.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

from .groups import GROUPS

FORMAT = 1
_MESSAGE_MAX = 400


@attrs.define
class CaseResult:
    id: str
    group: str
    nodeid: str
    outcome: str = "not-run"
    reason: str | None = None
    message: str | None = None
    duration: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class GroupSummary:
    name: str
    proves: str
    passed: int
    failed: int
    errors: int
    skipped: int
    reasons: tuple[str, ...]

    @property
    def verdict(self) -> str:
        if self.failed or self.errors:
            return "FAIL"
        if not (self.passed or self.skipped):
            return "NOT RUN"
        if not self.passed:
            return "SKIPPED"
        return "PASS"

    def as_json(self) -> dict[str, Any]:
        out = attrs.asdict(self)
        out["reasons"] = list(self.reasons)
        out["verdict"] = self.verdict
        return out


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    text = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text.removeprefix("Skipped: ")


def _failure_message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = str(getattr(crash, "message", "") or report.longreprtext or "failed")
    text = text.strip().splitlines()[0] if text.strip() else "failed"
    return text if len(text) <= _MESSAGE_MAX else text[: _MESSAGE_MAX - 3] + "..."


class Recorder:
    """Collects conformance outcomes as pytest reports them."""

    def __init__(self) -> None:
        self.cases: dict[str, CaseResult] = {}
        self.deselected_groups: set[str] = set()

    def register(self, nodeid: str, case_id: str, group: str) -> None:
        self.cases[nodeid] = CaseResult(case_id, group, nodeid)

    def update(self, report: pytest.TestReport) -> None:
        case = self.cases.get(report.nodeid)
        if case is None:
            return
        case.duration += report.duration
        if report.when == "setup":
            if report.failed:
                case.outcome, case.message = "error", _failure_message(report)
            elif report.skipped:
                case.outcome, case.reason = "skipped", _skip_reason(report)
        elif report.when == "call":
            if report.failed:
                case.outcome, case.message = "failed", _failure_message(report)
            elif report.skipped:
                case.outcome, case.reason = "skipped", _skip_reason(report)
            else:
                case.outcome = "passed"
        elif report.when == "teardown" and report.failed and case.outcome in ("passed", "not-run"):
            case.outcome, case.message = "error", _failure_message(report)

    def ran(self) -> list[CaseResult]:
        return [c for c in self.cases.values() if c.outcome != "not-run"]

    def groups(self) -> list[GroupSummary]:
        out = []
        for group in GROUPS:
            cases = [c for c in self.ran() if c.group == group.name]
            count = {k: sum(1 for c in cases if c.outcome == k)
                     for k in ("passed", "failed", "error", "skipped")}
            reasons = tuple(dict.fromkeys(c.reason or "" for c in cases if c.outcome == "skipped"))
            out.append(GroupSummary(group.name, group.proves, count["passed"], count["failed"],
                                    count["error"], count["skipped"], reasons))
        return out

    def verdict(self) -> str:
        summaries = self.groups()
        if any(g.verdict == "FAIL" for g in summaries):
            return "fail"
        if not any(g.verdict == "PASS" for g in summaries):
            return "nothing-passed"
        return "pass"


def build_report(recorder: Recorder, meta: Mapping[str, Any], exit_status: int) -> dict[str, Any]:
    return {
        "format": FORMAT,
        **meta,
        "python": platform.python_version(),
        "verdict": recorder.verdict(),
        "exit_status": exit_status,
        "groups": {g.name: g.as_json() for g in recorder.groups()},
        "tests": [c.as_json() for c in sorted(recorder.ran(), key=lambda c: c.id)],
    }


def write_report(path: Path, report: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")


def summary_lines(recorder: Recorder, meta: Mapping[str, Any]) -> list[str]:
    """The human table: one row per group, then why anything was skipped."""
    head = f"portable-creds conformance: driver={meta.get('driver')} target={meta.get('target')}"
    lines = [head]
    if meta.get("setup_error"):
        lines.append(f"harness setup FAILED: {meta['setup_error']}")
    lines.append(f"{'group':<18} {'pass':>5} {'fail':>5} {'error':>5} {'skip':>5}  verdict")
    notes: list[str] = []
    for g in recorder.groups():
        lines.append(
            f"{g.name:<18} {g.passed:>5} {g.failed:>5} {g.errors:>5} {g.skipped:>5}  {g.verdict}"
        )
        for reason in g.reasons:
            notes.append(f"  {g.name}: skipped - {reason}")
    unselected = [g.name for g in recorder.groups() if g.verdict == "NOT RUN"]
    if unselected:
        notes.append(f"  not selected in this run (--pc-groups / -k): {', '.join(unselected)}")
    failed = [c for c in recorder.ran() if c.outcome in ("failed", "error")]
    if notes:
        lines.append("why not everything ran:")
        lines.extend(notes)
    if failed:
        lines.append("failures:")
        for c in sorted(failed, key=lambda c: c.id):
            lines.append(f"  {c.id}: {c.outcome} - {c.message}")
    verdict = recorder.verdict()
    lines.append(
        {
            "pass": "verdict: PASS - every applicable group passed",
            "fail": "verdict: FAIL",
            "nothing-passed": "verdict: NOTHING PASSED - no applicable test ran",
        }[verdict]
    )
    return lines
