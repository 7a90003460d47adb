"""``portable-creds conformance ...``: the backend conformance suite, when it is installed.

The suite is its own distribution (``conformance/``) so the core does not depend on pytest;
this command only forwards its arguments to ``portable_creds_conformance.cli.main``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from . import _common

PACKAGE = "portable_creds_conformance"
EXAMPLES = (
    "examples:\n"
    "  portable-creds conformance --list\n"
    "  portable-creds conformance --driver local --report report.json\n"
    "  portable-creds conformance --driver s3 --target moto --groups roundtrip,listing"
)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "conformance",
        help="run the backend conformance suite (portable-creds-conformance)",
        description="Run the conformance suite; all arguments are passed to it.",
        epilog=EXAMPLES,
        formatter_class=_common.formatter(),
        add_help=False,
    )
    p.add_argument(
        "-h", "--help", action="store_true", dest="forward_help", help="the suite's own help"
    )
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="ARGS", help="passed to the suite")
    p.set_defaults(func=cmd_conformance, forward_unknown=True)


def cmd_conformance(args: argparse.Namespace) -> int:
    try:
        from portable_creds_conformance.cli import main as suite_main  # type: ignore[import-not-found,unused-ignore]
    except ModuleNotFoundError as exc:
        if exc.name == PACKAGE:
            _common.fail(
                "the conformance suite is not installed; install it with "
                "'pip install portable-creds-conformance'",
                code="configuration",
            )
        if exc.name == f"{PACKAGE}.cli":
            _common.fail(
                f"the installed conformance suite has no {PACKAGE}.cli module; reinstall it "
                "with 'pip install --force-reinstall portable-creds-conformance'",
                code="configuration",
            )
        raise
    forward_help = bool(getattr(args, "forward_help", False))
    argv = (["--help"] if forward_help else []) + list(args.argv)
    sys.stdout.flush()
    try:
        code = int(suite_main(argv))
    except SystemExit as exc:  # argparse's --help exits
        if not forward_help:
            raise
        code = int(exc.code or 0)
    if forward_help:
        sys.stdout.write(f"\n{EXAMPLES}\n")  # the suite's help, then how to run it from here
        sys.stdout.flush()
    return code
