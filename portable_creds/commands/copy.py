"""``copy``: move a fleet's sealed credentials from one backend to another - verified,
resumable, shardable; verbatim (no keys needed) or re-sealed under new keys."""

from __future__ import annotations

import argparse
import sys
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from . import _common

DEFAULT_WORKERS = 8


def register(subparsers: Any) -> None:
    p = _common.add_command(
        subparsers,
        "copy",
        help="copy every credential of some (or all) wallets to another backend, verified",
        description=(
            "Copy the sealed credentials of each WALLET (or --all-wallets) from the backend\n"
            "--from to the backend --to, with administrative access to both (AWS_* / \n"
            "TENCENTCLOUD_SECRET_* keys from the environment, a local directory). Each\n"
            "credential counts only after it was read back from --to and verified. Rerunning\n"
            "skips what is already there and identical, so a killed run is finished by running\n"
            "it again. A different value at --to is a conflict unless --overwrite. The source\n"
            "is deleted only with --delete-source, per wallet, after every credential of that\n"
            "wallet verified and was re-read right before deleting.\n\n"
            "Modes (chosen automatically, shown in the report):\n"
            "  verbatim  same prefix, same keys for the readers: the sealed bytes are copied as\n"
            "            they are and compared byte for byte. No key is needed and no plaintext\n"
            "            exists here. With --secret-file (the readers' root secret) each blob is\n"
            "            also opened, so a tampered source is caught; --no-open skips that.\n"
            "  re-seal   the prefix changes (URL ?prefix=), or --to-secret-file gives the\n"
            "            destination its own root secret, or --from-secret-file OLD names the\n"
            "            secret the source was sealed with (recovery after a leaked secret: the\n"
            "            configured secret seals the copies), or --to-keys / --from-keys /\n"
            "            kms_key= on --to move custody (root secret, signer, KMS). Blobs are\n"
            "            opened, sealed for their new place and verified by opening them at the\n"
            "            destination; a blob that does not open is reported, never written."
        ),
        epilog=(
            "exit status: 0 when every credential is copied or already present, 1 otherwise.\n\n"
            "examples:\n"
            "  export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...        # the source admin\n"
            "  export TENCENTCLOUD_SECRET_ID=... TENCENTCLOUD_SECRET_KEY=... # the target admin\n"
            "  portable-creds copy --from 's3://creds?endpoint=http://rgw:8000' \\\n"
            "      --to 'cos://creds-1250000000?region=ap-guangzhou' --all-wallets --dry-run\n"
            "  portable-creds copy --from s3://creds --to 'cos://creds-1250000000?region=...' \\\n"
            "      --all-wallets --shard $JOB_COMPLETION_INDEX/8 --workers 16 --json\n"
            "  portable-creds copy --from local:///old --to s3://creds --all-wallets \\\n"
            "      --to-keys kms:arn:aws:kms:...:key/ID   # re-seal into KMS custody\n\n"
            "More (recovery after a leaked secret, rewrap --all-wallets): docs/portability.md"
        ),
    )
    p.add_argument("--from", dest="from_url", required=True, metavar="URL", help="source backend")
    p.add_argument("--to", dest="to_url", required=True, metavar="URL", help="destination backend")
    p.add_argument("wallets", nargs="*", metavar="WALLET", help="wallets to copy")
    add_fleet_options(p)
    p.add_argument(
        "--dry-run", action="store_true", help="report what would be done; write nothing"
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace destination values that differ"
    )
    p.add_argument(
        "--delete-source",
        action="store_true",
        help="delete each wallet's source credentials once all of them verified",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        metavar="N",
        help=f"concurrent requests [default {DEFAULT_WORKERS}]",
    )
    p.add_argument(
        "--from-secret-file", metavar="F", help="root secret the source blobs are sealed with"
    )
    p.add_argument(
        "--to-secret-file", metavar="F", help="root secret to seal the copies with (re-seal)"
    )
    p.add_argument(
        "--from-keys",
        dest="from_keys",
        action="append",
        metavar="SPEC",
        help="key source the source blobs open with: root-secret[:FILE], signer, or the source "
        "backend's kms:<key> (repeatable) [default: --from-secret-file / the root secret]",
    )
    p.add_argument(
        "--to-keys",
        dest="to_keys",
        metavar="SPEC",
        help="key source to seal the copies with (re-seal), resolved by the destination "
        "backend (kms:<key> signs as its administrator) [default: --to-URL's kms_key=]",
    )
    p.add_argument(
        "--no-open",
        action="store_true",
        help="verbatim: never open blobs, even when the readers' secret is configured",
    )
    p.add_argument(
        "--verify",
        choices=("listing", "read"),
        default="listing",
        help="verbatim: verify each write by the destination listing (size and MD5/SHA-256 "
        "ETag; a GET where the ETag is no digest) or by reading every object back "
        "[default listing]",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output on stderr")
    p.set_defaults(func=cmd_copy)


def add_fleet_options(p: argparse.ArgumentParser) -> None:
    """``--all-wallets`` and ``--shard I/N`` (also used by ``rewrap``)."""
    p.add_argument(
        "--all-wallets",
        action="store_true",
        help="every wallet the (source) backend holds, listed with administrative access",
    )
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="only the wallets of shard I of N (stable hash; N workers cover every wallet once)",
    )


SPEC_HELP = (
    "root-secret, root-secret:FILE, signer, or the backend's kms:<key> "
    "(s3: kms:<key ARN>; cos: kms:<KeyId>, kms:per-wallet)"
)


def add_custody_options(p: argparse.ArgumentParser) -> None:
    """``rewrap --from-keys SPEC`` (repeatable) and ``--to-keys SPEC`` (``_custody``); here,
    not in ``_custody``, so registering ``rewrap`` imports no extra module."""
    p.add_argument(
        "--from-keys",
        dest="from_keys",
        action="append",
        metavar="SPEC",
        help=f"key source the blobs are sealed with now: {SPEC_HELP} (repeatable: "
        "each is tried)",
    )
    p.add_argument(
        "--to-keys",
        dest="to_keys",
        metavar="SPEC",
        help="key source to seal with from now on [default: the URL's kms_key=, else the root "
        "secret]",
    )


def split_prefix(url: str) -> tuple[str, str | None]:
    """``URL?prefix=P&...`` -> (URL without ``prefix``, P): the layout is ours, not the driver's."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((v for k, v in query if k == "prefix"), None)
    rest = urlencode([(k, v) for k, v in query if k != "prefix"], safe=":/")
    return urlunsplit(parts._replace(query=rest)), prefix


def open_admin(url: str, prefix: str, settings: Any) -> Any:
    """The administrative (unscoped) object store a URL names."""
    from ..registry import open_object_store

    options: dict[str, Any] = {"prefix": prefix}
    if settings.home is not None and _common.is_local(url):
        options["home"] = str(settings.home)
    return open_object_store(url, wallet=None, **options)


def select_wallets(args: argparse.Namespace, settings: Any, objects: Any, prefix: str) -> list[str]:
    """Explicit WALLETs, or ``--all-wallets`` from ``objects``; then ``--shard``."""
    from .. import fleet

    shard = fleet.parse_shard(args.shard) if args.shard else None
    explicit: list[str] = list(getattr(args, "wallets", None) or [])
    if args.all_wallets:
        if explicit:
            _common.fail("give WALLET arguments or --all-wallets, not both", code="usage")
        return fleet.list_wallets(objects, prefix, shard)
    wallets = explicit or ([settings.wallet] if settings.wallet else [])
    if not wallets:
        _common.fail(
            "no wallet given; pass WALLET arguments, --all-wallets or --wallet 0x...",
            code="usage",
        )
    return fleet.select(wallets, shard)


def _secret(path: str) -> Any:
    from pathlib import Path

    from ..secret_key import SecretKeySource

    return SecretKeySource.from_file(Path(path).expanduser())


def _keys(args: argparse.Namespace, settings: Any, *, reseal: bool) -> tuple[Any, Any]:
    """(source keys, destination keys). ``None`` source keys: none configured (verbatim only)."""
    from ..opener import default_key_source

    configured = _common.key_source(settings)
    if args.from_secret_file:
        source = _secret(args.from_secret_file)
        dest = _secret(args.to_secret_file) if args.to_secret_file else configured
        if dest is None:
            dest = default_key_source(settings.home, create=False)
        return source, dest
    dest = _secret(args.to_secret_file) if args.to_secret_file else None
    if configured is None and (reseal or dest is not None):
        configured = default_key_source(settings.home, create=False)
    return configured, dest


def _custody_keys(
    args: argparse.Namespace, settings: Any, source: Any, dest: Any
) -> tuple[Any, Any]:
    """(source keys, destination keys) when a key-source spec or ``kms_key=`` on ``--to``
    moves custody: ``--to-keys`` resolved by the destination's driver, else its URL's KMS key;
    ``--from-keys`` by the source's (default: the source URL's KMS key, then what ``_keys``
    picks). KMS calls sign as each backend's administrator."""
    from .. import key_specs
    from ..errors import ConfigurationError
    from ._custody import _root_secret, _signer

    def resolve(text: str, objects: Any) -> Any:
        return key_specs.resolve(
            key_specs.parse(text),
            objects,
            root_secret=lambda path: _root_secret(settings, path, create=False),
            signer=lambda: _signer(args),
        )

    from_specs = [key_specs.parse(s) for s in args.from_keys or []]  # all checked first
    if args.to_keys:
        key_specs.parse(args.to_keys)
        dest_keys = resolve(args.to_keys, dest)
    elif args.to_secret_file:  # the explicit flag wins over the --to URL's kms_key=
        dest_keys = _secret(args.to_secret_file)
    else:
        dest_keys = dest.configured_key_source()
    if from_specs:
        sources = [resolve(s.text, source) for s in from_specs]
        source_keys = key_specs.chain(sources[0], sources[1:])
    else:
        # The source URL's KMS key opens, then the root secret (if there is one: a fleet
        # wholly under KMS needs none on this machine).
        configured = source.configured_key_source()
        try:
            source_keys, _ = _keys(args, settings, reseal=True)
        except ConfigurationError:
            if configured is None or args.from_secret_file:
                raise
            source_keys = None
        if configured is not None:
            source_keys = key_specs.chain(configured, [source_keys] if source_keys else [])
    if dest_keys is None:  # --from-keys only: the configured root secret seals the copies
        dest_keys = _root_secret(settings, None, create=False)
    return source_keys, dest_keys


def cmd_copy(args: argparse.Namespace) -> int:
    from .. import copy, transfer
    from ..audit import Recorder, sink_for_cli

    settings = _common.resolve_settings(args)
    if args.workers < 1:
        _common.fail("--workers must be 1 or more", code="usage")
    from_url, from_prefix = split_prefix(args.from_url)
    to_url, to_prefix = split_prefix(args.to_url)
    from_prefix = from_prefix or settings.prefix
    to_prefix = to_prefix or settings.prefix
    if args.from_keys and args.from_secret_file:
        _common.fail("give --from-keys or --from-secret-file, not both", code="usage")
    if args.to_keys and args.to_secret_file:
        _common.fail("give --to-keys or --to-secret-file, not both", code="usage")
    reseal = from_prefix != to_prefix or bool(args.to_secret_file or args.from_secret_file)
    custody = bool(args.from_keys or args.to_keys)
    source_keys, dest_keys = (None, None) if custody else _keys(args, settings, reseal=reseal)
    opened: list[Any] = []
    sink = sink_for_cli(args)
    try:
        source_objects = open_admin(from_url, from_prefix, settings)
        opened.append(source_objects)
        dest_objects = open_admin(to_url, to_prefix, settings)
        opened.append(dest_objects)
        if custody or dest_objects.configured_key_source() is not None:
            source_keys, dest_keys = _custody_keys(args, settings, source_objects, dest_objects)
        wallets = select_wallets(args, settings, source_objects, from_prefix)
        progress = transfer.Progress(sys.stderr, enabled=not args.quiet, label="copy")
        with Recorder(sink, "copy", backend=dest_objects.backend_id):
            report = copy.copy(
                copy.Endpoint(source_objects, from_prefix, source_keys),
                copy.Endpoint(dest_objects, to_prefix, dest_keys),
                wallets,
                dry_run=args.dry_run,
                overwrite=args.overwrite,
                delete_source=args.delete_source,
                open_payloads=not args.no_open,
                verify=args.verify,
                workers=args.workers,
                progress=progress,
            )
    finally:
        for objects in opened:
            objects.close()
    if args.shard:
        report.facts["shard"] = args.shard
    if sink is not None:
        for result in report.wallets:
            complete = report.wallet_complete(result.wallet)
            sink.emit(
                {
                    "operation": "copy-wallet" if not args.dry_run else "copy-dry-run",
                    "wallet": result.wallet,
                    "backend": report.destination,
                    "outcome": "ok" if complete else "error",
                    "error": None if complete else "CopyIncomplete",
                }
            )
    render = transfer.render_json if _common.flag(args, "json") else transfer.render_text
    sys.stdout.write(render(report))
    sys.stdout.flush()
    return 0 if report.ok else 1


def cmd_rewrap_fleet(args: argparse.Namespace) -> int:
    """``rewrap --all-wallets``: rotate every wallet's KEK through the administrative view."""
    from ..errors import PortableCredsError
    from ..store import CredentialStore
    from ._custody import keys_for

    settings = _common.resolve_settings(args)
    url, url_prefix = split_prefix(settings.backend)
    prefix = url_prefix or settings.prefix
    objects = open_admin(url, prefix, settings)
    changed: dict[str, int] = {}
    failed: dict[str, str] = {}
    try:
        # The URL's kms_key= seals (KMS calls sign as the administrator), older blobs open
        # with the root secret; --from-keys/--to-keys name other sources (custody moves).
        keys = keys_for(args, settings, objects)
        for wallet in select_wallets(args, settings, objects, prefix):
            try:
                changed[wallet] = CredentialStore(objects, keys, wallet, prefix=prefix).rewrap()
            except PortableCredsError as exc:  # reported per wallet; the others go on
                failed[wallet] = f"{type(exc).__name__}: {exc}"
    finally:
        objects.close()
    if _common.flag(args, "json"):
        _common.print_json(
            {"rewrapped": sum(changed.values()), "wallets": changed, "failed": failed}
        )
    else:
        for wallet, error in failed.items():
            _common.notice(f"{wallet}: rewrap failed: {error}")
        _common.notice(
            f"re-wrapped {sum(changed.values())} credential(s) in {len(changed)} wallet(s)"
            + (f"; {len(failed)} wallet(s) failed" if failed else "")
        )
    return 0 if not failed else 1
