"""``conformance --driver NAME [--target T] [--config FILE] [--report report.json]``.

A thin wrapper over pytest: it loads the plugin, collects the suite from this package, and
runs it under a configuration of its own (``-c`` the package's ``conformance.ini``), so the
caller's ``pytest.ini`` / ``pyproject.toml`` cannot change what "conformant" means. Anything
after ``--`` goes to pytest unchanged (``-- -x -k roundtrip``). Exit status is pytest's: 0 when
every applicable group passed, non-zero otherwise (including a run where nothing could run).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import resources

from portable_creds.errors import ConfigurationError

from . import loader
from .groups import GROUPS

PLUGIN = "portable_creds_conformance.plugin"
SUITE = "portable_creds_conformance.suite"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portable-creds conformance",
        description="Run the portable-creds conformance suite against a storage driver.",
        epilog="Groups: " + ", ".join(g.name for g in GROUPS)
        + ". Extra pytest arguments go after '--'.",
    )
    parser.add_argument("--driver", help="driver name (its conformance harness entry point)")
    parser.add_argument("--harness", metavar="MODULE:ATTR", help="harness class to use instead")
    parser.add_argument("--target", help="harness target (default: the harness's first)")
    parser.add_argument("--config", metavar="FILE", help="TOML file passed to the harness")
    parser.add_argument("--report", metavar="FILE", help="write the JSON report here")
    parser.add_argument("--groups", metavar="G1,G2", help="only these groups")
    parser.add_argument("--list", action="store_true",
                        help="list registered drivers and their targets, then exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per test")
    return parser


def _list_targets() -> int:
    found = loader.registered()
    if not found:
        print("no conformance harnesses registered")
        return 0
    for name, ep in sorted(found.items()):
        try:
            cls = loader.by_driver(name)
        except ConfigurationError as exc:
            print(f"{name}: cannot load ({exc})")
            continue
        for target in cls.targets:
            why = cls.unavailable_reason(target)
            note = f"  (unavailable: {why})" if why else ""
            print(f"{name} {target}{note}  [{ep.value}]")
    return 0


def pytest_args(ns: argparse.Namespace, extra: Sequence[str]) -> list[str]:
    """The pytest command line for these options (exposed for run_all and tests)."""
    ini = resources.files("portable_creds_conformance").joinpath("conformance.ini")
    args = ["-c", str(ini), "-p", PLUGIN, "-p", "no:cacheprovider", "--pyargs", SUITE]
    args += ["-v"] if ns.verbose else ["-q"]
    for flag, value in (("--pc-driver", ns.driver), ("--pc-harness", ns.harness),
                        ("--pc-target", ns.target), ("--pc-config", ns.config),
                        ("--pc-report", ns.report), ("--pc-groups", ns.groups)):
        if value:
            args += [flag, value]
    return args + list(extra)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point. ``argv`` may start with the word ``conformance`` (as forwarded by the
    ``portable-creds`` CLI); it is ignored."""
    import pytest

    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["conformance"]:
        args = args[1:]
    extra: list[str] = []
    if "--" in args:
        cut = args.index("--")
        args, extra = args[:cut], args[cut + 1 :]
    ns = _parser().parse_args(args)
    if ns.list:
        return _list_targets()
    if not (ns.driver or ns.harness):
        _parser().print_usage(sys.stderr)
        print("portable-creds conformance: error: choose --driver NAME (see --list) or "
              "--harness module:HarnessClass", file=sys.stderr)
        return 2
    try:
        cls = loader.resolve(ns.driver, ns.harness)
        loader.pick_target(cls, ns.target)
    except ConfigurationError as exc:
        print(f"portable-creds conformance: error: {exc}", file=sys.stderr)
        return 2
    return int(pytest.main(pytest_args(ns, extra)))
