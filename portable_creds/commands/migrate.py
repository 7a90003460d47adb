"""``migrate``: copy every credential of some wallets from the legacy backend, or from upstream
agentKeys objects, into the configured store - verified, idempotent, resumable."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from . import _common


def register(subparsers: Any) -> None:
    p = _common.add_command(
        subparsers,
        "migrate",
        help="move secrets from the legacy backend or upstream agentKeys objects into this store",
        description=(
            "Copy every credential of each WALLET (default: --wallet) from a source into the\n"
            "store selected by --backend/--profile, sealing them on the way. Each secret counts\n"
            "only after it was read back from the destination and compared byte for byte.\n"
            "Rerunning skips what is already there and identical, so an interrupted run is\n"
            "finished by running it again. A destination holding a different value is a\n"
            "conflict and is left alone unless --overwrite. The source is deleted only with\n"
            "--delete-source, per wallet, after every secret of that wallet verified.\n\n"
            "Sources:\n"
            "  --from-legacy [URL]   the legacy HTTP backend (plaintext values); token from\n"
            "                        PORTABLE_CREDS_LEGACY_TOKEN, --legacy-token-file or the\n"
            "                        profile's legacy_token\n"
            "  --from-upstream URL   upstream 0x01/0x02 objects in an object store (s3://BUCKET,\n"
            "                        local:///DIR ...), opened with the signer-derived KEK\n"
            "                        (--signer-url / AGENTKEYS_SIGNER_URL); objects written by\n"
            "                        agentkeys-worker-creds need --worker-kek-file\n\n"
            "Every object under a wallet's upstream prefixes gets a report line; one that is\n"
            "not migrated (truncated, in the wrong layout, superseded...) makes the exit status\n"
            "1 and keeps that wallet's source. --delete-source re-reads and compares each\n"
            "value right before deleting it."
        ),
        epilog=(
            "exit status: 0 when every credential is migrated or already present, 1 otherwise.\n\n"
            "examples:\n"
            "  export PORTABLE_CREDS_LEGACY_TOKEN=...\n"
            "  portable-creds --backend s3://team migrate --from-legacy http://legacy:8090 \\\n"
            "      0xabc... 0xdef... --dry-run\n"
            "  portable-creds --backend s3://team migrate --from-legacy http://legacy:8090 \\\n"
            "      0xabc... 0xdef...\n"
            "  portable-creds --backend s3://team migrate --from-upstream s3://old-bucket \\\n"
            "      --signer-url http://signer:8091 0xabc... --delete-source"
        ),
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--from-legacy",
        nargs="?",
        const="",
        metavar="URL",
        help="legacy backend URL [profile legacy_url; default http://localhost:8090]",
    )
    src.add_argument("--from-upstream", metavar="URL", help="object store holding upstream blobs")
    p.add_argument(
        "wallets", nargs="*", metavar="WALLET", help="wallets to migrate (default: --wallet)"
    )
    p.add_argument(
        "--dry-run", action="store_true", help="report what would be done; write nothing"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace destination values that differ from the source",
    )
    p.add_argument(
        "--delete-source",
        action="store_true",
        help="delete each wallet's source credentials once all of them verified",
    )
    p.add_argument("--legacy-token-file", metavar="F", help="file holding the legacy bearer token")
    p.add_argument(
        "--signer-url", metavar="URL", help="agentKeys signer [env AGENTKEYS_SIGNER_URL]"
    )
    p.add_argument(
        "--omni-account",
        metavar="HEX",
        help="signer omni account [env AGENTKEYS_OMNI_ACCOUNT; default: from the wallet]",
    )
    p.add_argument("--signer-token-file", metavar="F", help="file holding the signer bearer token")
    p.add_argument(
        "--worker-kek-file",
        metavar="F",
        help="file holding agentkeys-worker-creds' AGENTKEYS_WORKER_KEK_HEX (64 hex): opens the "
        "0x02 objects that upstream worker wrote",
    )
    p.add_argument(
        "--worker-service",
        action="append",
        default=[],
        metavar="NAME",
        help="a service the worker stored with capitals (its key is lowercased, its AAD is "
        "not): migrate bots/<omni>/credentials/<name lowercased>.enc as NAME (repeatable)",
    )
    p.add_argument(
        "--backup-dir",
        metavar="DIR",
        help="where upstream objects converted in place are backed up first "
        "[default: <data home>/migrate-backup]",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output on stderr")
    p.set_defaults(func=cmd_migrate)


def _read_token_file(path: str, what: str) -> str:
    from ..errors import ConfigurationError

    try:
        token = Path(path).expanduser().read_text().strip()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the {what} file {path}: {exc.strerror}") from None
    if not token:
        raise ConfigurationError(f"the {what} file {path} is empty")
    return token


def _source(args: argparse.Namespace, settings: Any, backup_dir: Path) -> Any:
    from .. import config
    from ..errors import ConfigurationError
    from ..migrate import LegacySource, UpstreamSource

    resolved = config.resolve(vars(args))
    if args.from_legacy is not None:
        from ..legacy import LegacyClient

        url = args.from_legacy or resolved["legacy_url"].value or _common.LEGACY_HTTP_DEFAULT
        if settings.backend.rstrip("/") == url.rstrip("/"):
            raise ConfigurationError(
                "the destination backend is the legacy backend itself; choose another --backend "
                "(local, s3://..., cos://...) to migrate into"
            )
        token = (
            _read_token_file(args.legacy_token_file, "legacy token")
            if args.legacy_token_file
            else resolved["legacy_token"].value
        )
        return LegacySource(LegacyClient(url, token=token))

    from ..registry import open_object_store
    from ..signer import SignerKeySource

    signer_url = resolved["signer_url"].value
    if not signer_url:
        raise ConfigurationError(
            "--from-upstream needs the agentKeys signer to derive upstream KEKs; pass "
            "--signer-url URL or set AGENTKEYS_SIGNER_URL"
        )
    signer_token = (
        _read_token_file(args.signer_token_file, "signer token")
        if args.signer_token_file
        else resolved["signer_token"].value
    )
    keys = SignerKeySource(
        signer_url, omni_account=resolved["omni_account"].value, token=signer_token
    )
    options: dict[str, Any] = {}
    if settings.home is not None:
        options["home"] = str(settings.home)
    objects = open_object_store(args.from_upstream, wallet=None, **options)
    worker_kek = _read_kek_file(args.worker_kek_file) if args.worker_kek_file else None
    if args.worker_service and worker_kek is None:
        raise ConfigurationError("--worker-service needs --worker-kek-file")
    return UpstreamSource(
        objects,
        keys.upstream_kek,
        backup_dir=backup_dir,
        worker_kek=worker_kek,
        worker_services=args.worker_service,
    )


def _read_kek_file(path: str) -> bytes:
    """The worker KEK: 64 hex characters (an optional ``0x``), as upstream's env var holds it."""
    from ..errors import ConfigurationError

    text = _read_token_file(path, "worker KEK").removeprefix("0x")
    try:
        kek = bytes.fromhex(text)
    except ValueError:
        kek = b""
    if len(kek) != 32:
        raise ConfigurationError(
            f"the worker KEK file {path} must hold 64 hex characters (AGENTKEYS_WORKER_KEK_HEX)"
        )
    return kek


def cmd_migrate(args: argparse.Namespace) -> int:
    from .. import migrate, paths
    from ..audit import Recorder, sink_for_cli
    from ..names import validate_wallet

    settings = _common.resolve_settings(args)
    wallets = [
        validate_wallet(w) for w in (args.wallets or ([settings.wallet] if settings.wallet else []))
    ]
    if not wallets:
        _common.fail(
            "no wallet to migrate; pass WALLET arguments or --wallet 0x...", code="configuration"
        )
    backup_dir = (
        Path(args.backup_dir).expanduser()
        if args.backup_dir
        else paths.data_home(settings.home) / "migrate-backup"
    )
    source = _source(args, settings, backup_dir)
    progress = migrate.Progress(sys.stderr, enabled=not args.quiet)

    opened: list[Any] = []

    def open_destination(wallet: str) -> Any:
        store = _common.open_store(args, wallet=wallet, settings=settings)
        opened.append(store)
        return store

    sink = sink_for_cli(args)
    try:
        with Recorder(sink, "migrate", backend=settings.backend):
            report = migrate.migrate(
                source,
                list(dict.fromkeys(wallets)),
                open_destination,
                dry_run=args.dry_run,
                overwrite=args.overwrite,
                delete_source=args.delete_source,
                progress=progress,
            )
    finally:
        for store in opened:
            store.close()
    if sink is not None:
        # One event per wallet as well: what an auditor asks is "was this tenant migrated?"
        for result in report.wallets:
            complete = all(
                i.status in migrate.OK_STATUSES for i in report.items if i.wallet == result.wallet
            )
            sink.emit(
                {
                    "operation": "migrate-wallet" if not args.dry_run else "migrate-dry-run",
                    "wallet": result.wallet,
                    "backend": report.destination or settings.backend,
                    "outcome": "ok" if complete else "error",
                    "error": None if complete else "MigrationIncomplete",
                }
            )
    if _common.flag(args, "json"):
        sys.stdout.write(migrate.render_json(report))
    else:
        sys.stdout.write(migrate.render_text(report))
    sys.stdout.flush()
    return 0 if report.ok else 1
