"""``make bench``: run every ``bench/bench_*.py`` module's ``main()`` in one process, then report.

Each module prints its own table and returns result rows (format: bench/report.py); the rows
of all modules go to ``report.write_report`` (docs/benchmarks.md, its JSON and plot). A
module that fails becomes a "bench failed" row instead of hiding the others.

    .venv/bin/python bench/run_all.py [--only envelope,s3] [--strict] [bench options...]

Options not listed here (e.g. ``--quick``) are passed to every module's ``main(argv)``.
``--strict`` exits 1 if any row states a target that was missed.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def discover(only: set[str] | None) -> list[Path]:
    paths = sorted(BENCH_DIR.glob("bench_*.py"))
    if only:
        paths = [p for p in paths if p.stem.removeprefix("bench_") in only]
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run all benchmarks and write the report")
    parser.add_argument("--only", help="comma-separated bench names, e.g. envelope,s3")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--no-report", action="store_true", help="print only, write nothing")
    args, passthrough = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    for p in (str(ROOT), str(BENCH_DIR)):
        if p not in sys.path:
            sys.path.insert(0, p)
    only = set(args.only.split(",")) if args.only else None

    modules: list[Any] = []
    for path in discover(only):
        print(f"== {path.stem}", flush=True)
        try:
            module = load(path)
        except Exception as exc:  # a bench that cannot even import is reported, not fatal
            print(f"   cannot import: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        if callable(getattr(module, "main", None)):
            modules.append(module)

    report = load(BENCH_DIR / "report.py")
    rows: list[dict[str, Any]] = report.run_modules(modules, passthrough)
    missed = [r for r in rows if r.get("ok") is False]
    failed = [r for r in rows if r.get("case") == "bench failed"]
    for r in failed:
        print(f"!! {r['bench']}: {r.get('note', '')}", file=sys.stderr)
    for r in missed:
        print(f"!! target missed: {r['case']}: {r.get('target')}", file=sys.stderr)
    if not args.no_report and rows:
        print(f"report written to {report.write_report(rows)}")
    return 1 if args.strict and (missed or failed) else 0


if __name__ == "__main__":
    sys.exit(main())
