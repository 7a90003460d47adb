"""``creds export``: hand a scoped identity to another process as the cloud's usual env vars.

Besides ``get`` this is the only command that prints secret material, and only to stdout when
asked. What it prints are *temporary storage credentials narrowed by the cloud* (a session
policy naming the services' objects), never the root secret: the child can fetch exactly those
sealed blobs (and write them, without ``--read-only``) until the credentials expire.

A client-side scope cannot be exported (the credentials would not carry it), so ``--scope``
is required and enforcement is always the cloud's.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from . import _common

FORMATS = ("env", "json")


def register(subparsers: Any) -> None:
    p = _common.add_command(
        subparsers,
        "creds",
        help="hand scoped storage credentials to another process",
        description=(
            "Commands about the storage credentials themselves (not the secrets they protect)."
        ),
        epilog=(
            "examples:\n"
            '  eval "$(portable-creds creds export --scope openai --read-only)"\n'
            "  portable-creds creds export --help"
        ),
    )
    sub = p.add_subparsers(title="creds commands", metavar="CREDS_COMMAND", dest="creds_command")
    p.set_defaults(func=lambda args: _usage(p))

    e = _common.add_command(
        sub,
        "export",
        help="print scoped temporary credentials as environment variables",
        description=(
            "Ask the identity service for temporary credentials limited to the --scope\n"
            "services (reads only with --read-only) and print them as the cloud SDKs'\n"
            "environment variables. The limit is enforced by the cloud: a process holding\n"
            "them cannot read other services, list, or (with --read-only) write or delete,\n"
            "whatever client it uses. They expire (AWS_CREDENTIAL_EXPIRATION) and are not\n"
            "refreshed: export again for a fresh set. They give access to sealed blobs only;\n"
            "opening them still needs the root secret.\n\n"
            "Only backends that narrow credentials in the cloud support this (s3:// with\n"
            "role_arn, cos:// with mode=token-vendor); others refuse with a configuration error."
        ),
        epilog=(
            "examples:\n"
            '  eval "$(portable-creds creds export --scope openai --read-only)"\n'
            "  portable-creds creds export --scope openai,github --format json > creds.json"
        ),
    )
    e.add_argument(
        "--format",
        choices=FORMATS,
        default="env",
        help="env: 'export VAR=value' lines for a POSIX shell (default); json: one object",
    )
    e.set_defaults(func=cmd_export)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    from ..errors import EXIT_CODES

    return EXIT_CODES["usage"]


def cmd_export(args: argparse.Namespace) -> int:
    from ..audit import Recorder, sink_for_cli
    from ..names import object_key
    from ..registry import open_object_store

    request = _common.scope_request(args)
    if request is None:
        _common.fail(
            "creds export needs --scope SERVICE[,SERVICE]: only credentials narrowed to named "
            "services are ever exported",
            code="usage",
        )
    if request.enforcement != "cloud":
        _common.fail(
            "a client-side scope cannot be exported: the exported credentials would reach "
            "every credential of the wallet; use a backend that narrows credentials in the "
            "cloud (s3:// with role_arn, cos:// with mode=token-vendor)",
            code="configuration",
        )
    settings = _common.resolve_settings(args)
    wallet = _common.require_wallet(settings)
    options: dict[str, Any] = {}
    if _common.is_local(settings.backend) and settings.home is not None:
        options["home"] = str(settings.home)
    sink = sink_for_cli(args)
    # The object store alone: exporting needs the identity, not the root secret.
    with (
        open_object_store(settings.backend, wallet=wallet, **options) as objects,
        # One event per export (who, which services, outcome); never the credentials.
        Recorder(
            sink,
            "creds-export",
            wallet=wallet,
            service=",".join(request.services),
            backend=objects.backend_id,
        ),
    ):
        if objects.capabilities.scoped_credentials != "cloud":
            _common.fail(
                f"backend {objects.backend_id} cannot narrow credentials in the cloud "
                f"(scoped_credentials={objects.capabilities.scoped_credentials!r}), so there "
                "is nothing safe to export; use s3:// with role_arn (web-identity federation) "
                "or cos:// with mode=token-vendor",
                code="configuration",
            )
        keys = [object_key(wallet, s, settings.prefix) for s in request.services]
        with objects.scoped(keys, read_only=request.read_only) as scoped:
            env = scoped.exported_credentials()
    if getattr(args, "format", "env") == "json" or _common.flag(args, "json"):
        _common.print_json(env)
    else:
        sys.stdout.write("".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(env.items())))
        sys.stdout.flush()
    return 0
