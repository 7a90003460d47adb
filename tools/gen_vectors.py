"""Regenerate conformance/portable_creds_conformance/data/vectors.json.

    .venv/bin/python tools/gen_vectors.py          # rewrite the file
    .venv/bin/python tools/gen_vectors.py --check  # exit 1 if the file is out of date

The inputs are fixed (see portable_creds.vectors.generate_vectors), so the output is the same
on every run. Regenerating must only ever be needed when the format changes on purpose: the
tests check the file against an independent implementation of docs/format.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from portable_creds.vectors import check_all, dumps, generate_vectors

TARGET = (
    Path(__file__).resolve().parent.parent
    / "conformance"
    / "portable_creds_conformance"
    / "data"
    / "vectors.json"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, do not write")
    parser.add_argument("--output", type=Path, default=TARGET)
    args = parser.parse_args(argv)
    doc = generate_vectors()
    counts = check_all(doc)
    text = dumps(doc)
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date; run tools/gen_vectors.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date: {counts}")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}: {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
