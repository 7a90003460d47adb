"""Collect benchmark rows from every bench module and write docs/benchmarks.md + a PNG plot.

Result format (the contract between bench modules, bench/run_all.py and this file): each
``bench/bench_*.py`` has ``main(argv: list[str] | None = None) -> list[dict[str, object]]``
returning rows; run_all concatenates them and calls ``write_report(rows)``. A row:

    bench     str    section, e.g. "envelope", "bulk", "cli", "memory" (one table per bench)
    case      str    what was measured, e.g. "get_many, 16 threads (RGW)"
    metric    str    unit of ``value``: "ops/s", "us", "ms", "s", "MiB", "calls/1000 ops", "x"
    value     float  the headline number (a median for timings)
  optional:
    p50, p99  float  percentiles in the same unit as value
    n         int    samples / operations behind the number
    baseline  str    the case this one is compared with; ratio = value / baseline value
    ratio     float  precomputed ratio to the baseline (else computed when both are present)
    target    str    the issue's target in words, e.g. ">= 0.85x bare boto3"
    ok        bool   whether the target is met (None/absent: no target or not decidable)
    note      str    anything a reader needs (endpoint, payload size, skipped because ...)
    plot      bool   include in the PNG (default True for rows with a numeric value)

Everything is plain JSON, so ``python bench/report.py rows.json`` regenerates the document
from saved rows without re-running the benchmarks.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

Row = dict[str, Any]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MD = ROOT / "docs" / "benchmarks.md"
DEFAULT_PNG = ROOT / "docs" / "img" / "benchmarks.png"
DEFAULT_JSON = ROOT / "docs" / "benchmarks.json"

LIBRARIES = (
    "portable-creds",
    "cryptography",
    "boto3",
    "botocore",
    "moto",
    "cos-python-sdk-v5",
    "aws-encryption-sdk",
    "urllib3",
)
REQUIRED = ("bench", "case", "metric", "value")


def validate(rows: Iterable[Mapping[str, Any]]) -> list[Row]:
    """Check the contract; compute missing ratios from baselines within the same bench."""
    out: list[Row] = []
    for i, raw in enumerate(rows):
        missing = [k for k in REQUIRED if k not in raw]
        if missing:
            raise ValueError(f"bench row {i} lacks {missing}: {dict(raw)!r}")
        row = dict(raw)
        row["value"] = float(row["value"])
        out.append(row)
    by_case = {(r["bench"], r["case"]): r for r in out}
    for row in out:
        base = row.get("baseline")
        if base and row.get("ratio") is None:
            ref = by_case.get((row["bench"], base))
            if ref is not None and ref["value"]:
                row["ratio"] = row["value"] / ref["value"]
    return out


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) // 1024} MiB"
                break
    except OSError:
        pass
    versions = []
    for lib in LIBRARIES:
        try:
            versions.append(f"{lib} {importlib.metadata.version(lib)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    load = ""
    if hasattr(os, "getloadavg"):
        load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "nproc": str(os.cpu_count() or "?"),
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "libraries": ", ".join(versions),
        "load average at end (1/5/15 min)": load,
    }


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        a = abs(value)
        if a >= 1000:
            return f"{value:,.0f}"
        if a >= 100:
            return f"{value:.0f}"
        if a >= 10:
            return f"{value:.1f}"
        if a >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    return str(value).replace("|", "\\|")


def render_markdown(rows: Sequence[Row], info: Mapping[str, str], png: str | None) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (bench/run_all.py -> bench/report.py); do not edit by hand.",
        "Every number below comes from the run described in *Machine*; re-run `make bench` to",
        "reproduce. Timings are medians unless a column says otherwise.",
        "",
    ]
    targets = [r for r in rows if r.get("target")]
    if targets:
        lines += [
            "## Targets",
            "",
            "| bench | case | measured | target | met |",
            "|---|---|---|---|---|",
        ]
        for r in targets:
            measured = f"{_fmt(r['value'])} {r['metric']}"
            if r.get("ratio") is not None and r["metric"] != "x":
                measured += f" ({_fmt(r['ratio'])}x {r.get('baseline', '')})"
            lines.append(
                f"| {r['bench']} | {_fmt(r['case'])} | {measured} | {_fmt(r['target'])} | "
                f"{_fmt(r.get('ok')) if r.get('ok') is not None else 'n/a'} |"
            )
        lines.append("")
    if png:
        lines += [f"![benchmark plot]({png})", ""]
    for bench in dict.fromkeys(r["bench"] for r in rows):
        group = [r for r in rows if r["bench"] == bench]
        has = {k: any(r.get(k) is not None for r in group) for k in ("p50", "p99", "n", "ratio")}
        head = ["case", "value", "unit"]
        head += [k for k in ("p50", "p99", "n") if has[k]]
        head += ["vs", "ratio"] if has["ratio"] else []
        head += ["note"]
        lines += [f"## {bench}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in group:
            cells = [_fmt(r["case"]), _fmt(r["value"]), _fmt(r["metric"])]
            cells += [_fmt(r.get(k)) for k in ("p50", "p99", "n") if has[k]]
            if has["ratio"]:
                cells += [_fmt(r.get("baseline")), _fmt(r.get("ratio"))]
            cells.append(_fmt(r.get("note", "")))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "## Machine",
        "",
        "A load average above the core count means other work shared the machine during the",
        "run; ratios measured side by side in one run (and client-CPU rows) are the numbers",
        "to compare, absolute timings less so.",
        "",
    ]
    lines += [f"- **{k}**: {v}" for k, v in info.items() if v]
    lines.append("")
    return "\n".join(lines)


def render_png(rows: Sequence[Row], path: Path) -> bool:
    """One horizontal bar chart per (bench, unit); returns False if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    groups: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        if r.get("plot", True) and not math.isnan(r["value"]):
            groups.setdefault((r["bench"], r["metric"]), []).append(r)
    if not groups:
        return False
    cols = 2 if len(groups) > 1 else 1
    nrows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(7 * cols, 0.55 * 8 * nrows + 1), squeeze=False)
    for ax, ((bench, metric), group) in zip(axes.flat, groups.items(), strict=False):
        labels = [str(r["case"])[:60] for r in group]
        values = [r["value"] for r in group]
        colours = [
            "#2a9d8f" if r.get("ok") is True else "#e76f51" if r.get("ok") is False else "#457b9d"
            for r in group
        ]
        ax.barh(range(len(group)), values, color=colours)
        ax.set_yticks(range(len(group)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{bench} ({metric})", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        if values and min(v for v in values if v > 0) * 100 < max(values) and min(values) > 0:
            ax.set_xscale("log")
        for i, v in enumerate(values):
            ax.text(v, i, f" {_fmt(v)}", va="center", fontsize=6)
    for ax in list(axes.flat)[len(groups) :]:
        ax.axis("off")
    fig.suptitle("portable-creds benchmarks (green: target met, red: missed)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_report(
    rows: Iterable[Mapping[str, Any]],
    *,
    md: Path = DEFAULT_MD,
    png: Path = DEFAULT_PNG,
    raw: Path | None = DEFAULT_JSON,
    info: Mapping[str, str] | None = None,
) -> Path:
    """``info``: the machine description; ``None`` describes this machine now."""
    checked = validate(rows)
    info = dict(info) if info is not None else machine()
    drawn = render_png(checked, png)
    rel = os.path.relpath(png, md.parent) if drawn else None
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(render_markdown(checked, info, rel))
    if raw is not None:
        raw.write_text(json.dumps({"machine": info, "rows": checked}, indent=1) + "\n")
    return md


def run_modules(modules: Sequence[Any], argv: list[str] | None = None) -> list[Row]:
    """Call ``main(argv)`` of each bench module; a module that crashes becomes a note row."""
    rows: list[Row] = []
    for module in modules:
        name = module.__name__.rsplit(".", 1)[-1]
        try:
            result = module.main(argv)
        except Exception as exc:  # a broken bench must not hide the others' results
            rows.append(
                {
                    "bench": name.removeprefix("bench_"),
                    "case": "bench failed",
                    "metric": "-",
                    "value": float("nan"),
                    "note": f"{type(exc).__name__}: {exc}"[:300],
                    "plot": False,
                }
            )
            continue
        if isinstance(result, list):
            rows.extend(result)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: report.py ROWS.json [ROWS.json ...]", file=sys.stderr)
        return 2
    rows: list[Row] = []
    info: Mapping[str, str] | None = None
    for name in args:
        data = json.loads(Path(name).read_text())
        rows.extend(data["rows"] if isinstance(data, dict) else data)
        if isinstance(data, dict) and info is None:
            info = data.get("machine")  # keep the description of the machine that measured
    print(write_report(rows, info=info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
