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


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "conformance",
        help="run the backend conformance suite (portable-creds-conformance)",
        description="Run the conformance suite; all arguments are passed to it.",
        epilog="example:\n  portable-creds conformance --help",
        formatter_class=_common.formatter(),
        add_help=False,
    )
    p.add_argument("-h", "--help", action="store_true", dest="forward_help",
                   help="the suite's own help")
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="ARGS", help="passed to the suite")
    p.set_defaults(func=cmd_conformance, forward_unknown=True)


def cmd_conformance(args: argparse.Namespace) -> int:
    try:
        from portable_creds_conformance.cli import main as suite_main  # type: ignore[import-not-found,unused-ignore]
    except ModuleNotFoundError as exc:
        if exc.name == PACKAGE:
            _common.fail(
                "the conformance suite is not installed; install it with "
                "'pip install -e conformance' (make test does this)",
                code="configuration",
            )
        if exc.name == f"{PACKAGE}.cli":
            _common.fail(
                f"the installed conformance suite has no {PACKAGE}.cli module; reinstall it "
                "from this checkout with 'pip install -e conformance'",
                code="configuration",
            )
        raise
    argv = (["--help"] if getattr(args, "forward_help", False) else []) + list(args.argv)
    sys.stdout.flush()
    return int(suite_main(argv))
