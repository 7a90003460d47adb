"""``portable-creds outbox list|flush|drop``: sealed writes waiting for the backend.

A ``put`` whose remote write fails leaves the sealed blob in the home's outbox (see
``portable_creds.outbox``). ``list`` shows what waits (never any secret material: the entries
hold sealed blobs and only their metadata is printed); ``flush`` delivers the pending writes to
the configured backend, per wallet, newest write per credential winning.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING, Any

from . import _common

if TYPE_CHECKING:
    from ..outbox import Outbox


def register(subparsers: Any) -> None:
    p = _common.add_command(
        subparsers,
        "outbox",
        help="list or deliver writes that failed and wait in the local outbox",
        description=(
            "A put whose remote write failed keeps the sealed secret in the outbox\n"
            "(<home>/outbox). 'list' shows the pending writes; 'flush' delivers them to the\n"
            "configured backend (all wallets, or only --wallet); 'drop' discards them.\n\n"
            "A flush never overwrites a value that was written or deleted since this machine\n"
            "last wrote the credential (it may be newer); --force overwrites it anyway."
        ),
        epilog=(
            "examples:\n  portable-creds outbox list\n  portable-creds outbox flush\n"
            "  portable-creds --wallet 0xabc... outbox drop openai"
        ),
    )
    sub = p.add_subparsers(
        title="outbox commands", metavar="ACTION", dest="outbox_action", required=True
    )
    lp = _common.add_command(
        sub,
        "list",
        help="show the pending writes",
        aliases=("ls",),
        epilog="examples:\n  portable-creds outbox list\n  portable-creds outbox list --json",
    )
    lp.set_defaults(func=cmd_list)
    fp = _common.add_command(
        sub,
        "flush",
        help="deliver the pending writes to the backend",
        epilog=(
            "examples:\n"
            "  portable-creds outbox flush\n"
            "  portable-creds --wallet 0xabc... outbox flush --json"
        ),
    )
    fp.add_argument(
        "--force", action="store_true",
        help="overwrite the backend's value even if it changed since the put was attempted, "
             "or the backend cannot write conditionally",
    )
    fp.set_defaults(func=cmd_flush)
    dp = _common.add_command(
        sub,
        "drop",
        help="discard the wallet's pending writes of SERVICE (or --all of them)",
        epilog=(
            "examples:\n"
            "  portable-creds --wallet 0xabc... outbox drop openai\n"
            "  portable-creds --wallet 0xabc... outbox drop --all --json"
        ),
    )
    dp.add_argument("service", metavar="SERVICE", nargs="?")
    dp.add_argument("--all", action="store_true", help="every pending write of the wallet")
    dp.set_defaults(func=cmd_drop)


def _outbox(args: argparse.Namespace) -> tuple[Outbox, _common.Settings]:
    from .. import paths
    from ..outbox import Outbox

    settings = _common.resolve_settings(args)
    return Outbox(paths.outbox_dir(settings.home)), settings


def _wallet_filter(settings: _common.Settings) -> str | None:
    if not settings.wallet:
        return None
    from ..names import validate_wallet

    return validate_wallet(settings.wallet)


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cmd_list(args: argparse.Namespace) -> int:
    outbox, settings = _outbox(args)
    entries = outbox.pending(wallet=_wallet_filter(settings))
    if _common.flag(args, "json"):
        _common.print_json(
            [
                {
                    "created": _iso(e.created),
                    "wallet": e.wallet,
                    "service": e.service,
                    "key": e.key,
                    "backend_id": e.backend_id,
                    "path": str(e.path),
                }
                for e in entries
            ]
        )
        return 0
    for e in entries:
        sys.stdout.write(f"{_iso(e.created)}  {e.wallet}  {e.service}  {e.backend_id}\n")
    if not entries:
        _common.notice("the outbox is empty")
    return 0


def cmd_flush(args: argparse.Namespace) -> int:
    from ..errors import EXIT_CODES, PortableCredsError, TransientError

    outbox, settings = _outbox(args)
    wallets = sorted({e.wallet for e in outbox.pending(wallet=_wallet_filter(settings))})
    delivered = 0
    first_error: PortableCredsError | None = None
    force = _common.flag(args, "force")
    for wallet in wallets:
        try:
            with _common.open_store(args, wallet=wallet, settings=settings) as store:
                delivered += store.flush(force=force)
        except PortableCredsError as exc:
            first_error = first_error or exc
    left = outbox.pending(wallet=_wallet_filter(settings))
    if _common.flag(args, "json"):
        _common.print_json({"delivered": delivered, "pending": len(left)})
    else:
        _common.notice(f"delivered {delivered} pending write(s); {len(left)} left in the outbox")
    if first_error is not None:
        if isinstance(first_error, TransientError):
            hint = "retry 'portable-creds outbox flush' when the backend is reachable"
        else:
            hint = "see the reason above"
        raise _common.CliError(
            f"{len(left)} pending write(s) could not be delivered ({first_error}); they stay "
            f"in the outbox: {hint}",
            exit_code=first_error.exit_code,
        )
    if left:
        backends = ", ".join(sorted({e.backend_id for e in left}))
        raise _common.CliError(
            f"{len(left)} pending write(s) are for other backends ({backends}); flush them "
            "with --backend set to that backend",
            exit_code=EXIT_CODES["configuration"],
        )
    return 0


def cmd_drop(args: argparse.Namespace) -> int:
    from ..names import validate_service

    outbox, settings = _outbox(args)
    wallet = _wallet_filter(settings)
    if wallet is None:
        _common.fail("outbox drop needs the wallet: pass --wallet 0x...", code="usage")
    service = getattr(args, "service", None)
    if (service is None) == (not _common.flag(args, "all")):
        _common.fail("outbox drop needs a SERVICE or --all (not both)", code="usage")
    wanted = None if service is None else validate_service(service)
    dropped = [
        e for e in outbox.pending(wallet=wallet) if wanted is None or e.service == wanted
    ]
    for entry in dropped:
        outbox.remove(entry)
    if _common.flag(args, "json"):
        _common.print_json(
            {"dropped": len(dropped), "wallet": wallet,
             "services": sorted({e.service for e in dropped})}
        )
    else:
        _common.notice(f"dropped {len(dropped)} pending write(s) of {wallet}")
    return 0
