"""``portable-creds admin <driver> ...``: a driver's own administrative commands.

Provisioning (buckets, roles, policies) differs per cloud, so each driver ships it as an
optional ``admin_main(argv) -> int`` on its ``Driver`` class and the CLI only dispatches. The
driver is imported only when its admin command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from . import _common


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "admin",
        help="a driver's administrative commands (provisioning, policies)",
        description=(
            "Run DRIVER's administrative commands; everything after DRIVER is passed to it.\n"
            "DRIVER is a driver name such as s3 or cos; 'portable-creds admin' lists the\n"
            "installed drivers that have admin commands."
        ),
        epilog=(
            "examples:\n"
            "  portable-creds admin                       # drivers with admin commands\n"
            "  portable-creds admin s3 --help\n"
            "  portable-creds admin s3 --bucket creds --issuer https://idp.example.com \\\n"
            "      --account-id 123456789012 render"
        ),
        formatter_class=_common.formatter(),
    )
    p.add_argument("driver", nargs="?", metavar="DRIVER")
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="ARGS", help="passed to the driver")
    p.set_defaults(func=cmd_admin, forward_unknown=True)


def _drivers_with_admin() -> list[str]:
    from ..errors import ConfigurationError
    from ..registry import available_drivers, load_driver_class

    found = []
    for name in available_drivers():
        try:
            cls = load_driver_class(name)
        except ConfigurationError:
            continue  # a broken plugin must not hide the others
        if callable(getattr(cls, "admin_main", None)):
            found.append(name)
    return found


def cmd_admin(args: argparse.Namespace) -> int:
    if not args.driver:
        names = _drivers_with_admin()
        if not names:
            _common.fail(
                "no installed driver has admin commands; install one, e.g. "
                "'pip install portable-creds-aws' or 'pip install portable-creds-tencent'",
                code="configuration",
            )
        if _common.flag(args, "json") or "--json" in args.argv:
            _common.print_json({"drivers": names})
            return 0
        print("drivers with admin commands: " + ", ".join(names))
        print("run 'portable-creds admin DRIVER --help' for their commands")
        return 0
    from ..registry import load_driver_class

    admin_main = getattr(load_driver_class(args.driver), "admin_main", None)
    if not callable(admin_main):
        _common.fail(
            f"driver {args.driver!r} has no admin commands; see 'portable-creds admin' for "
            "the drivers that do",
            code="configuration",
        )
    sys.stdout.flush()
    return int(admin_main(list(args.argv)))
