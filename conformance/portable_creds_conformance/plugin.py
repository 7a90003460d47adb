"""The pytest plugin. Active only when asked for: ``-p portable_creds_conformance.plugin`` or
``pytest_plugins = ["portable_creds_conformance.plugin"]`` in a top-level ``conftest.py``.

It is deliberately not registered under ``pytest11``: installing the package must not change
unrelated pytest runs. It adds the ``--pc-*`` options, the ``pc`` fixture (one
``ConformanceRun`` per session), the capability gate, the JSON report and the summary table.
The tests themselves live in ``portable_creds_conformance.suite`` (``--pyargs``).
"""

from __future__ import annotations

import importlib.metadata
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from portable_creds.errors import ConfigurationError

from . import loader
from .groups import GROUPS, GROUPS_BY_NAME, MARKER, requirement_reason
from .report import Recorder, build_report, summary_lines, write_report
from .run import ConformanceRun


@attrs.define
class _State:
    recorder: Recorder = attrs.field(factory=Recorder)
    run: ConformanceRun | None = None
    harness_spec: str | None = None


_STATE = pytest.StashKey[_State]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("portable-creds conformance")
    group.addoption("--pc-driver", metavar="NAME",
                    help="driver to test, by its portable_creds_conformance.harnesses entry point")
    group.addoption("--pc-harness", metavar="MODULE:ATTR",
                    help="harness class to use instead of the registered one")
    group.addoption("--pc-target", metavar="NAME", help="harness target (default: its first)")
    group.addoption("--pc-config", metavar="FILE", help="TOML file passed to the harness")
    group.addoption("--pc-report", metavar="FILE", help="write the JSON report here")
    group.addoption("--pc-groups", metavar="G1,G2",
                    help="run only these groups (default: all); "
                    + ", ".join(g.name for g in GROUPS))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(group, name, requires): a portable-creds conformance case"
    )
    state = _State()
    config.stash[_STATE] = state
    # Hooks that receive no config (logreport) reach the state through this object.
    config.pluginmanager.register(_Listener(state), "portable-creds-conformance-listener")


class _Listener:
    def __init__(self, state: _State) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.state.recorder.update(report)


def _case_id(item: pytest.Item, marker: pytest.Mark) -> str:
    base = f"{marker.kwargs['group']}.{marker.kwargs['name']}"
    callspec = getattr(item, "callspec", None)
    return f"{base}[{callspec.id}]" if callspec is not None else base


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    state = config.stash[_STATE]
    cases = [(item, item.get_closest_marker(MARKER)) for item in items]
    if not any(marker is not None for _, marker in cases):
        return
    if not (config.getoption("--pc-driver") or config.getoption("--pc-harness")):
        raise pytest.UsageError(
            "conformance tests were collected but no driver was chosen: "
            "pass --pc-driver NAME or --pc-harness module:HarnessClass"
        )
    wanted = _selected_groups(config)
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    order = {g.name: i for i, g in enumerate(GROUPS)}
    for item, marker in cases:
        if marker is not None:
            group = marker.kwargs["group"]
            if wanted is not None and group not in wanted:
                dropped.append(item)
                continue
            state.recorder.register(item.nodeid, _case_id(item, marker), group)
        keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)

    def rank(item: pytest.Item) -> int:
        marker = item.get_closest_marker(MARKER)
        return order[marker.kwargs["group"]] if marker is not None else -1

    items[:] = sorted(keep, key=rank)


def _selected_groups(config: pytest.Config) -> set[str] | None:
    raw = config.getoption("--pc-groups")
    if not raw:
        return None
    wanted = {g.strip() for g in str(raw).split(",") if g.strip()}
    unknown = wanted - set(GROUPS_BY_NAME)
    if unknown:
        raise pytest.UsageError(
            f"--pc-groups: unknown group(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(GROUPS_BY_NAME)}"
        )
    return wanted


def _load_config(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigurationError(f"--pc-config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"--pc-config {path} is not valid TOML: {exc}") from None


@pytest.fixture(scope="session")
def pc(request: pytest.FixtureRequest) -> Iterator[ConformanceRun]:
    """The conformance run: harness, tenants A and B, the admin view. Cleans up at the end."""
    config = request.config
    state = config.stash[_STATE]
    cls = loader.resolve(config.getoption("--pc-driver"), config.getoption("--pc-harness"))
    state.harness_spec = f"{cls.__module__}:{cls.__qualname__}"
    target = loader.pick_target(cls, config.getoption("--pc-target"))
    run = ConformanceRun(cls, target, _load_config(config.getoption("--pc-config")))
    state.run = run
    try:
        run.start()
        yield run
    finally:
        run.close()


@pytest.fixture(autouse=True)
def _pc_case(request: pytest.FixtureRequest) -> Iterator[None]:
    """Gate each conformance case on capabilities; wipe the run prefix after it."""
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        yield
        return
    run: ConformanceRun = request.getfixturevalue("pc")
    assert run.declared is not None
    reason = requirement_reason(
        marker.kwargs["group"], tuple(marker.kwargs.get("requires", ())), run.declared,
        run.overrides,
    )
    if reason is not None:
        pytest.skip(reason)
    try:
        yield
    finally:
        run.wipe()


def _versions(run: ConformanceRun | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for dist in ("portable-creds", "portable-creds-conformance", "pytest"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    if run is not None:
        try:
            out.update(run.harness.versions())
        except Exception as exc:  # a broken versions() must not lose the report
            out["harness-versions-error"] = str(exc)
    return out


def _meta(config: pytest.Config) -> dict[str, Any]:
    state = config.stash[_STATE]
    run = state.run
    meta: dict[str, Any] = {
        "driver": run.driver if run else config.getoption("--pc-driver"),
        "target": run.target if run else config.getoption("--pc-target"),
        "harness": state.harness_spec or config.getoption("--pc-harness"),
        "versions": _versions(run),
    }
    if run is not None:
        meta["run_root"] = run.run_root
        meta["setup_error"] = run.setup_error
        if run.declared is not None:
            meta["capabilities"] = {
                "declared": attrs.asdict(run.declared),
                "effective": attrs.asdict(run.capabilities),
                "overrides": dict(run.overrides),
            }
    return meta


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash[_STATE]
    if not state.recorder.cases:
        return
    if state.recorder.verdict() == "nothing-passed" and exitstatus == pytest.ExitCode.OK:
        # Everything skipped proves nothing: say so with the exit status too.
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    path = session.config.getoption("--pc-report")
    if path:
        report = build_report(state.recorder, _meta(session.config), int(session.exitstatus))
        write_report(Path(path), report)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash[_STATE]
    if not state.recorder.cases:
        return
    terminalreporter.write_sep("=", "portable-creds conformance summary")
    for line in summary_lines(state.recorder, _meta(config)):
        terminalreporter.write_line(line)
