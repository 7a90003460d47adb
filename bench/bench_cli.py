"""CLI cold start: wall time of fresh processes, next to the floors they cannot beat.

Every run is a new interpreter (what a shell script calling ``portable-creds get`` pays). The
references: ``python -c pass`` (interpreter start), importing cryptography's AEAD (the one heavy
import the local path needs), importing boto3 (what the local path must never pay). Also checks,
with ``-X importtime``, that ``get`` on the local backend imports no cloud SDK.

Target (issue 7): ``portable-creds get`` on the local backend <= 0.3 s wall.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = "cli"
WALLET = "0x" + "c1" * 20
TARGET_GET = 0.3
CLOUD_MODULES = ("boto3", "botocore", "qcloud_cos", "tencentcloud")


def _exe() -> str:
    found = Path(sys.executable).with_name("portable-creds")
    if not found.exists():
        raise FileNotFoundError(f"{found} not found: install the project (make venv)")
    return str(found)


def _time(argv: list[str], env: dict[str, str], runs: int, stdin: bytes = b"") -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, input=stdin, capture_output=True, env=env, check=False)
        samples.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[-2:]} exited {proc.returncode}: {proc.stderr[-300:]!r}")
    return samples


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _imports_of(argv: list[str], env: dict[str, str]) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *argv], capture_output=True, env=env, check=True
    )
    mods = set()
    for line in proc.stderr.decode(errors="replace").splitlines():
        if line.startswith("import time:") and "|" in line:
            mods.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return mods


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    runs = int(os.environ.get("BENCH_CLI_RUNS", "5" if "--quick" in (argv or []) else "15"))
    exe = _exe()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as home:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PORTABLE_CREDS_", "AGENTKEYS_"))
        }
        env.update(PORTABLE_CREDS_HOME=home, PORTABLE_CREDS_WALLET=WALLET)
        subprocess.run(
            [exe, "put", "bench"],
            input=b"sk-bench-0123456789",
            env=env,
            check=True,
            capture_output=True,
        )
        got = subprocess.run([exe, "get", "bench"], env=env, check=True, capture_output=True)
        if got.stdout != b"sk-bench-0123456789":
            raise RuntimeError("portable-creds get did not return the stored secret")
        cases = [
            ("python -c pass", [sys.executable, "-c", "pass"], None),
            (
                "import cryptography AEAD",
                [
                    sys.executable,
                    "-c",
                    "from cryptography.hazmat.primitives.ciphers.aead import AESGCM",
                ],
                None,
            ),
            ("import boto3", [sys.executable, "-c", "import boto3"], None),
            ("portable-creds --help", [exe, "--help"], None),
            ("portable-creds get (local)", [exe, "get", "bench"], TARGET_GET),
        ]
        # Warm the page cache once so the first case does not pay for it.
        _time([sys.executable, "-c", "import boto3"], env, 1)
        results = {}
        for name, cmd, target in cases:
            samples = _time(cmd, env, runs)
            med = statistics.median(samples)
            results[name] = med
            row: dict[str, Any] = {
                "bench": BENCH,
                "case": name,
                "metric": "s",
                "value": med,
                "p50": med,
                "p99": _pct(samples, 0.99),
                "n": runs,
                "note": "wall time of a fresh process",
            }
            if name.startswith("portable-creds"):
                row["baseline"] = "python -c pass"
            if target is not None:
                row["target"] = f"<= {target} s wall"
                row["ok"] = med <= target
            rows.append(row)
        loaded = _imports_of([exe, "get", "bench"], env)
        leaked = sorted(m for m in CLOUD_MODULES if m in loaded)
        rows.append(
            {
                "bench": BENCH,
                "case": "cloud SDK modules imported by `get` (local)",
                "metric": "modules",
                "value": float(len(leaked)),
                "target": "0 (the local path must not import boto3)",
                "ok": not leaked,
                "note": ", ".join(leaked) or "none (checked with -X importtime)",
                "plot": False,
            }
        )
    for row in rows:
        print(f"{row['case']:<46} {row['value']:.4f} {row['metric']}", file=sys.stderr)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
