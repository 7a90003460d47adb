"""``put``, ``get``, ``list``, ``delete``, ``teardown``, ``rewrap``: one tenant's credentials.

Input convention for ``put`` (stdin and ``--from-file`` alike): exactly one trailing newline
(``\\n`` or ``\\r\\n``) is removed, because ``echo sk | put x`` and files written by editors
end in one and nobody means it as part of an API key. ``--raw`` keeps the bytes exactly (use
it for binary secrets). ``get`` writes the stored bytes and nothing else, no newline added.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from . import _common

if TYPE_CHECKING:
    from ..store import CredentialStore

MAX_READ_SLACK = 2  # room for the one "\r\n" that is stripped


def register(subparsers: Any) -> None:
    p = _common.add_command(
        subparsers,
        "put",
        help="store a secret (from stdin or --from-file)",
        description=(
            "Seal a secret on this machine and store it for the wallet.\n\n"
            "The secret is read from stdin (a hidden prompt on a terminal) or --from-file.\n"
            "Exactly one trailing newline (\\n or \\r\\n) is removed; --raw keeps the bytes\n"
            "as they are. Replaces an existing secret of the same name."
        ),
        epilog=(
            "examples:\n"
            "  echo sk-123 | portable-creds --wallet 0xabc... put openai    # stores 'sk-123'\n"
            "  portable-creds put signing-key --from-file key.bin --raw\n"
            "  vault read -field=key secret/x | portable-creds put x --from-file -"
        ),
    )
    p.add_argument("service", metavar="SERVICE", help="1-64 of A-Z a-z 0-9 . _ -")
    p.add_argument("--from-file", metavar="F",
                   help="read the secret from file F ('-' is stdin; a file named - is ./-)")
    p.add_argument("--raw", action="store_true", help="store the input bytes exactly")
    p.add_argument("--allow-empty", action="store_true",
                   help="store an empty secret (refused otherwise, like the library does)")
    p.set_defaults(func=cmd_put)

    p = _common.add_command(
        subparsers,
        "get",
        help="print a secret (exactly its bytes, no newline)",
        description=(
            "Write exactly the stored secret bytes to stdout, with no newline added.\n"
            'With --json: {"service", "wallet", "secret"} (or "secret_base64" for\n'
            "secrets that are not UTF-8)."
        ),
        epilog=(
            "examples:\n"
            '  export OPENAI_API_KEY="$(portable-creds get openai)"\n'
            "  portable-creds --wallet 0xabc... get openai --json"
        ),
    )
    p.add_argument("service", metavar="SERVICE")
    p.set_defaults(func=cmd_get)

    p = _common.add_command(
        subparsers,
        "list",
        help="list the wallet's credential names (one per line)",
        epilog=(
            "examples:\n"
            "  portable-creds --wallet 0xabc... list\n"
            "  portable-creds list --json | jq -r '.services[]'"
        ),
        aliases=("ls",),
    )
    p.set_defaults(func=cmd_list)

    p = _common.add_command(
        subparsers,
        "delete",
        help="delete one credential",
        aliases=("rm",),
        epilog="examples:\n  portable-creds delete openai\n  portable-creds rm openai --json",
    )
    p.add_argument("service", metavar="SERVICE")
    p.set_defaults(func=cmd_delete)

    p = _common.add_command(
        subparsers,
        "teardown",
        help="delete every credential of the wallet",
        description=(
            "Delete every credential of the wallet (nothing of other wallets).\n"
            "Asks for confirmation on a terminal; scripts must pass --yes."
        ),
        epilog=(
            "examples:\n"
            "  portable-creds --wallet 0xabc... teardown --yes\n"
            '  portable-creds teardown --yes --json     # {"deleted": N, "wallet": ...}'
        ),
    )
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_teardown)

    p = _common.add_command(
        subparsers,
        "rewrap",
        help="re-wrap every credential under the current KEK version",
        description=(
            "Re-wrap each credential's data key under the current key-encryption key,\n"
            "without re-encrypting the payloads: after rotating, pass the new version.\n"
            "Every credential is attempted; any that fail are named and the exit status\n"
            "is non-zero. A value written since rewrap read it is left as written."
        ),
        epilog=(
            "examples:\n"
            "  portable-creds --kek-version 2 rewrap          # rotate to KEK version 2\n"
            "  portable-creds --backend s3://creds --kek-version 2 rewrap --all-wallets\n"
            "  portable-creds --backend s3://creds rewrap --all-wallets --to-keys kms:ARN\n\n"
            "Custody moves (--from-keys/--to-keys SPEC: root-secret[:FILE], signer, kms:ARN;\n"
            "root secret <-> KMS <-> signer, both directions): docs/portability.md"
        ),
    )
    from .copy import add_custody_options, add_fleet_options

    add_fleet_options(p)
    add_custody_options(p)
    p.set_defaults(func=cmd_rewrap)


# -- input -------------------------------------------------------------------------------


def strip_one_newline(data: bytes) -> bytes:
    if data.endswith(b"\r\n"):
        return data[:-2]
    if data.endswith(b"\n"):
        return data[:-1]
    return data


def _read_input(args: argparse.Namespace, service: str, limit: int) -> bytes:
    """The secret bytes, at most ``limit`` + slack read, so a huge input is never buffered."""
    path = getattr(args, "from_file", None)
    if path == "-":  # the usual convention: '-' is stdin (./- names a file called '-')
        path = None
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = fh.read(limit + MAX_READ_SLACK + 1)
        except OSError as exc:
            _common.fail(
                f"cannot read the secret from {path}: {exc.strerror}; check the path",
                code="invalid-input",
            )
    elif sys.stdin is None:
        _common.fail("no stdin to read the secret from; use --from-file F", code="invalid-input")
    elif sys.stdin.isatty():
        import getpass

        try:
            text = getpass.getpass(f"Secret for {service} (input hidden): ")
        except EOFError:
            text = ""
        data = text.encode("utf-8")
    else:
        data = sys.stdin.buffer.read(limit + MAX_READ_SLACK + 1)
    if not _common.flag(args, "raw"):
        data = strip_one_newline(data)
    if len(data) > limit:
        from ..errors import PayloadTooLarge

        raise PayloadTooLarge(
            f"the secret for {service!r} is larger than the maximum of {limit} bytes; "
            "store large files elsewhere and keep only their key here"
        )
    if not data and not _common.flag(args, "allow_empty"):
        _common.fail(
            f'empty secret for {service!r}; pipe it on stdin (echo "$KEY" | portable-creds '
            "put NAME), use --from-file F, or --allow-empty to store an empty value",
            code="invalid-input",
        )
    return data


# -- commands ----------------------------------------------------------------------------


def _not_found(service: str, wallet: str) -> _common.CliError:
    from ..errors import EXIT_CODES

    return _common.CliError(
        f"no credential {service!r} for wallet {wallet}; see 'portable-creds list' for the "
        "stored names (names are case-sensitive)",
        exit_code=EXIT_CODES["not-found"],
    )


def cmd_put(args: argparse.Namespace) -> int:
    from ..names import validate_service

    service = validate_service(args.service)
    with _common.open_store(args) as store:
        secret = _read_input(args, service, store.max_payload)
        store.put(service, secret, allow_empty=_common.flag(args, "allow_empty"))
        if _common.flag(args, "json"):
            _common.print_json({"stored": service, "wallet": store.wallet, "bytes": len(secret)})
        else:
            _common.notice(f"stored {service!r} for {store.wallet} ({len(secret)} bytes)")
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    from ..errors import IntegrityError, NotFound
    from ..names import validate_service

    service = validate_service(args.service)
    with _common.open_store(args) as store:
        try:
            secret = store.get(service).reveal()
        except NotFound:
            raise _not_found(service, store.wallet) from None
        except IntegrityError as exc:
            hint = _kek_version_hint(store, service)
            if hint is None:
                raise
            raise IntegrityError(f"{exc}; {hint}") from None
        if _common.flag(args, "json"):
            out: dict[str, str] = {"service": service, "wallet": store.wallet}
            try:
                out["secret"] = secret.decode("utf-8")
            except UnicodeDecodeError:
                import base64

                out["secret_base64"] = base64.b64encode(secret).decode("ascii")
            _common.print_json(out)
        else:
            sys.stdout.buffer.write(secret)
            sys.stdout.buffer.flush()
    return 0


def _kek_version_hint(store: CredentialStore, service: str) -> str | None:
    """After a rotation, a blob under a newer KEK version of *this* root secret fails to open
    with the old version; say which version to pass. A blob under a version this reader
    retired (``--accept-kek-versions``) is named as such: it may be a replay. The KEK id is in
    the blob's plaintext header (public by design), so this reveals nothing an attacker could
    not read directly.
    """
    import re

    from ..envelope import parse_header
    from ..errors import PortableCredsError
    from ..secret_key import SecretKeySource

    keys = store.keys
    if not isinstance(keys, SecretKeySource):
        return None
    try:
        kek_id = parse_header(store.objects.get(store.key_for(service)).data).kek_id
    except PortableCredsError:
        return None
    match = re.fullmatch(r"sk\.v([0-9]{1,10})\.([0-9a-f]{16})", kek_id)
    if match is None or match.group(2) != keys.fingerprint:
        return None
    version = int(match.group(1))
    if version < keys.version and not keys.accepts(version):
        return (
            f"it is sealed under KEK version {version}, which this reader no longer accepts "
            f"({_common.ENV_ACCEPT_KEK_VERSIONS} / --accept-kek-versions): either it was not "
            "re-wrapped after the rotation, or an old blob was written back (a replay) - check "
            "the audit log before accepting that version again"
        )
    if version <= keys.version:
        return None  # not a newer version: the uniform integrity message stands
    return (
        f"it is sealed under KEK version {version} of this root secret: pass "
        f"--kek-version {version} (or set {_common.ENV_KEK_VERSION}={version})"
    )


def cmd_list(args: argparse.Namespace) -> int:
    with _common.open_store(args) as store:
        services = store.list()
        if _common.flag(args, "json"):
            _common.print_json({"wallet": store.wallet, "services": services})
        else:
            for name in services:
                sys.stdout.write(name + "\n")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from ..errors import NotFound
    from ..names import validate_service

    service = validate_service(args.service)
    with _common.open_store(args) as store:
        try:
            store.delete(service)
        except NotFound:
            raise _not_found(service, store.wallet) from None
        if _common.flag(args, "json"):
            _common.print_json({"deleted": service, "wallet": store.wallet})
        else:
            _common.notice(f"deleted {service!r} of {store.wallet}")
    return 0


def _confirm_teardown(wallet: str, count: int) -> bool:
    sys.stderr.write(
        f"Delete all {count} credential(s) of {wallet}? This cannot be undone. "
        "Type 'yes' to confirm: "
    )
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() == "yes"


def cmd_teardown(args: argparse.Namespace) -> int:
    with _common.open_store(args) as store:
        if not _common.flag(args, "yes"):
            if sys.stdin is None or not sys.stdin.isatty():
                _common.fail(
                    f"refusing to delete every credential of {store.wallet} without "
                    "confirmation; pass --yes",
                    code="usage",
                )
            count = len(store.list())
            if count and not _confirm_teardown(store.wallet, count):
                _common.fail("teardown cancelled; nothing was deleted", code="usage")
        removed = store.teardown()
        if _common.flag(args, "json"):
            _common.print_json({"deleted": removed, "wallet": store.wallet})
        else:
            _common.notice(f"deleted {removed} credential(s) of {store.wallet}")
    return 0


def cmd_rewrap(args: argparse.Namespace) -> int:
    """Every credential is attempted; failures are named per service and make the exit
    non-zero (the first failure's code), after the others were re-wrapped."""
    if _common.flag(args, "all_wallets") or getattr(args, "shard", None):
        from .copy import cmd_rewrap_fleet

        return cmd_rewrap_fleet(args)
    from ..store import RewrapIncomplete

    settings = _common.resolve_settings(args)
    keys = None
    if getattr(args, "from_keys", None) or getattr(args, "to_keys", None):
        from . import _custody  # custody move: --from-keys/--to-keys name the key sources

        keys = _custody.factory(args, settings)
    with _common.open_store(args, settings=settings, keys=keys) as store:
        report = store.rewrap_report()
        changed = len(report.rewrapped)
        if _common.flag(args, "json"):
            doc: dict[str, object] = {"rewrapped": changed, "wallet": store.wallet}
            if report.failed:
                doc["failed"] = {
                    service: {"error": type(exc).__name__, "message": str(exc)}
                    for service, exc in report.failed
                }
            _common.print_json(doc)
        elif not report.failed:
            _common.notice(f"re-wrapped {changed} credential(s) of {store.wallet}")
        if report.failed:
            raise RewrapIncomplete(report)
    return 0
