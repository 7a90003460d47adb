"""``make conformance``: run the suite for every driver and target this environment knows.

The registry is the entry-point group ``portable_creds_conformance.harnesses``: every installed
driver package contributes its harness, and the harness's ``targets`` names the environments it
can run against (the AWS driver: ``moto``, ``rgw``; the Tencent driver: ``double-role-per-tenant``,
``double-token-vendor``, ``double-kms``). Each (driver, target) runs in its own process and writes
``build/conformance/<driver>-<target>.json``. The exit status is non-zero if any run failed, if
a driver this repository ships is not installed, or - with ``--strict`` (or
``PORTABLE_CREDS_CONFORMANCE_STRICT=1``) - if a target was unavailable on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

#: Drivers whose harness must be installed for ``make conformance`` to mean anything here.
EXPECTED = {
    "local": "pip install -e conformance",
    "sqlite": "pip install -e examples/sqlite-driver",
    "s3": "pip install -e 'drivers/aws[dev]'",
    "cos": "pip install -e 'drivers/tencent[vendor]'",
}


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="build/conformance", help="report directory")
    parser.add_argument("--only", action="append", default=[], metavar="DRIVER[:TARGET]",
                        help="run only these (repeatable)")
    parser.add_argument("--groups", metavar="G1,G2", help="only these groups (all by default)")
    parser.add_argument("--strict", action="store_true",
                        default=os.environ.get("PORTABLE_CREDS_CONFORMANCE_STRICT") == "1",
                        help="an unavailable target is a failure")
    return parser.parse_args(argv)


def _wanted(only: list[str], driver: str, target: str) -> bool:
    if not only:
        return True
    return any(o in (driver, f"{driver}:{target}") for o in only)


def main(argv: list[str] | None = None) -> int:
    from portable_creds_conformance import loader

    ns = _parse(sys.argv[1:] if argv is None else argv)
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    registered = loader.registered()
    rows: list[tuple[str, str, str]] = []
    failed = False

    for name, hint in EXPECTED.items():
        if name not in registered and _wanted(ns.only, name, ""):
            print(f"!!! conformance: driver {name!r} has no registered harness; run '{hint}'",
                  file=sys.stderr)
            rows.append((name, "-", f"NOT INSTALLED ({hint})"))
            failed = True

    for name in sorted(registered):
        try:
            cls = loader.by_driver(name)
        except Exception as exc:
            print(f"!!! conformance: cannot load the harness of {name!r}: {exc}", file=sys.stderr)
            rows.append((name, "-", "HARNESS BROKEN"))
            failed = True
            continue
        for target in cls.targets:
            if not _wanted(ns.only, name, target):
                continue
            report = out / f"{name}-{target}.json"
            why = cls.unavailable_reason(target)
            if why:
                print(f"!!! conformance: {name}/{target} UNAVAILABLE on this machine: {why}",
                      file=sys.stderr)
                report.write_text(json.dumps({"format": 1, "driver": name, "target": target,
                                              "verdict": "unavailable", "reason": why}, indent=2))
                rows.append((name, target, f"UNAVAILABLE ({why})"))
                failed = failed or ns.strict
                continue
            print(f"=== conformance: {name}/{target}", flush=True)
            started = time.monotonic()
            cmd = [sys.executable, "-m", "portable_creds_conformance", "--driver", name,
                   "--target", target, "--report", str(report)]
            if ns.groups:
                cmd += ["--groups", ns.groups]
            code = subprocess.call(cmd)
            verdict = "PASS" if code == 0 else f"FAIL (exit {code})"
            rows.append((name, target, f"{verdict}  {time.monotonic() - started:.1f}s  {report}"))
            failed = failed or code != 0

    print("\n=== conformance runs")
    for name, target, verdict in rows:
        print(f"  {name:<10} {target:<24} {verdict}")
    if not rows:
        print("  nothing ran: no harness is registered")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
