"""``run [--env VAR=SERVICE ...] -- CMD ...``: start a command with credentials in its environment.

The secrets go from the store straight into the new process's environment: nothing is written
to disk, printed or logged. The command *replaces* this process (``exec``), so its exit code,
signals and stdin/stdout are its own, and no copy of the secrets lingers in a parent process.
The child inherits the environment minus portable-creds' own settings and tokens
(``portable_creds.childenv``) unless ``--keep-env`` asks for everything; two credentials
competing for one variable are refused, never silently overwritten.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import TYPE_CHECKING, Any, Literal

from . import _common

if TYPE_CHECKING:
    from ..store import CredentialStore, Secret

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def default_env_name(service: str) -> str:
    """Upstream agentKeys' convention: ``<SERVICE upper, '-' -> '_'>_API_KEY``."""
    return service.upper().replace("-", "_") + "_API_KEY"


def register(subparsers: Any) -> None:
    p = _common.add_command(
        subparsers,
        "run",
        help="run a command with credentials injected as environment variables",
        description=(
            "Run CMD with the wallet's credentials in its environment, nothing written anywhere.\n"
            "By default every credential of the wallet is injected as\n"
            "<SERVICE upper, '-' -> '_'>_API_KEY (openai -> OPENAI_API_KEY). --service S picks\n"
            "credentials by name; --env VAR=SERVICE picks the variable name too. The command\n"
            "replaces portable-creds, so its exit code is the exit code. The command does not\n"
            "inherit PORTABLE_CREDS_*, AGENTKEYS_* tokens/keys or *_TOKEN_FILE variables\n"
            "(--keep-env passes them on); two credentials for one variable are an error."
        ),
        epilog=(
            "examples:\n"
            "  portable-creds run -- python agent.py                  # all credentials\n"
            "  portable-creds run --service openai -- ./bot           # OPENAI_API_KEY only\n"
            "  portable-creds run --env GH_TOKEN=github -- gh repo list"
        ),
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="VAR=SERVICE",
        help="inject SERVICE's secret as VAR (repeatable)",
    )
    p.add_argument(
        "--service",
        action="append",
        default=[],
        metavar="SERVICE",
        help="inject SERVICE under its default name (repeatable)",
    )
    p.add_argument(
        "--keep-env",
        action="store_true",
        help=(
            "pass PORTABLE_CREDS_*, AGENTKEYS_* tokens/keys and *_TOKEN_FILE variables on to "
            "the command (default: withheld, so it cannot reach more than it is given)"
        ),
    )
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    p.set_defaults(func=cmd_run)


def _mapping(args: argparse.Namespace) -> dict[str, str] | None:
    """VAR -> SERVICE, or None for "every credential of the wallet"."""
    from ..names import validate_service

    pairs: list[tuple[str, str]] = []
    for spec in args.env:
        var, sep, service = spec.partition("=")
        if not sep or not _ENV_NAME.fullmatch(var):
            _common.fail(
                f"--env {spec!r}: expected VAR=SERVICE with VAR a valid variable name", code="usage"
            )
        pairs.append((var, validate_service(service)))
    for service in args.service:
        pairs.append((_default_var(validate_service(service)), service))
    return _unique(pairs, hint="name one of them with --env VAR=SERVICE") or None


def _unique(pairs: list[tuple[str, str]], *, hint: str, code: str = "usage") -> dict[str, str]:
    """VAR -> SERVICE; refuses two different services for one variable (one would be lost)."""
    mapping: dict[str, str] = {}
    for var, service in pairs:
        other = mapping.setdefault(var, service)
        if other != service:
            _common.fail(
                f"credentials {other!r} and {service!r} would both be injected as {var}; {hint}",
                code=code,
            )
    return mapping


def _default_var(service: str) -> str:
    var = default_env_name(service)
    if not _ENV_NAME.fullmatch(var):
        _common.fail(
            f"credential {service!r} has no valid default variable name ({var!r}); "
            f"use --env NAME={service}",
            code="invalid-input",
        )
    return var


def _fetch(
    store: CredentialStore, services: list[str], request: _common.ScopeRequest | None
) -> tuple[dict[str, Secret], str]:
    """The secrets of ``services``, read through a read-only scope of exactly them.

    With an explicit ``--scope`` the user's enforcement choice applies (and its errors and
    notice, like every other command). Without one, the cloud enforces it where the backend
    can narrow credentials, and this client does elsewhere - no notice: no credentials leave
    this process, so a client-side limit is all that can matter here.
    """
    if not services:  # nothing injected: a scope needs at least one service
        return {}, "nobody"
    if request is not None:
        reader = _common.apply_scope(
            store, _common.ScopeRequest(tuple(services), True, request.enforcement)
        )
        enforcement = request.enforcement
    else:
        caps = store.objects.capabilities.scoped_credentials
        auto: Literal["cloud", "client"] = "cloud" if caps == "cloud" else "client"
        reader = store.scoped(services, read_only=True, enforcement=auto)
        enforcement = auto
    try:
        secrets = reader.get_many(services)
    finally:
        if reader.objects is not store.objects and enforcement == "cloud":
            reader.close()  # a cloud-scoped store has its own client; the store stays open
    return secrets, ("the cloud" if enforcement == "cloud" else "this client")


def cmd_run(args: argparse.Namespace) -> int:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        _common.fail(
            "no command given; use: portable-creds run [--env VAR=SERVICE] -- CMD ...", code="usage"
        )
    mapping = _mapping(args)
    request = _common.scope_request(args)  # an explicit --scope (may be None)
    from ..audit import Recorder, sink_for_cli

    sink = sink_for_cli(args)
    from ..childenv import child_environment

    env: dict[bytes, bytes] = dict(os.environb)
    withheld: list[str] = []
    if not args.keep_env:
        env, withheld = child_environment(os.environb)
    # The fetch runs with a read-only scope of exactly the injected services (run never
    # writes): enforced by the cloud where the backend can narrow its credentials, else by
    # this client - silently, since nothing leaves this process.
    with (
        _common.open_store(args, scoped=False) as store,
        Recorder(sink, "run", wallet=store.wallet, backend=store.objects.backend_id),
    ):
        if mapping is None:
            names = list(request.services) if request is not None else store.list()
            mapping = _unique(
                [(_default_var(s), s) for s in names if request is None or store.exists(s)],
                hint="pick the credentials with --env VAR=SERVICE",
                code="invalid-input",
            )
        services = sorted(set(mapping.values()))
        if request is not None:
            outside = sorted(set(services) - set(request.services))
            if outside:
                _common.fail(
                    f"run would inject {', '.join(outside)}, outside --scope; add them to "
                    "--scope or drop them",
                    code="usage",
                )
        secrets, enforced_by = _fetch(store, services, request)
        for var, service in mapping.items():
            value = secrets[service].reveal()
            if b"\x00" in value:
                _common.fail(
                    f"credential {service!r} contains a NUL byte and cannot be an environment "
                    "variable; read it with 'portable-creds get' instead",
                    code="invalid-input",
                )
            env[var.encode()] = value
    if _common.flag(args, "debug"):
        scope = (
            f"read-only scope of {len(services)} service(s), enforced by {enforced_by}"
            if services
            else "nothing to fetch"
        )
        _common.notice(f"injecting {', '.join(sorted(mapping))} into {cmd[0]} ({scope})")
        if withheld:
            _common.notice(f"not passed on to {cmd[0]}: {', '.join(withheld)} (see --keep-env)")
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(cmd[0], cmd, env)  # type: ignore[arg-type]  # noqa: S606 - bytes env: POSIX
    except FileNotFoundError:
        print(f"{_common.PROG}: error: command not found: {cmd[0]}", file=sys.stderr)
        return 127
    except PermissionError:
        print(f"{_common.PROG}: error: permission denied: {cmd[0]}", file=sys.stderr)
        return 126
    return 0  # pragma: no cover - exec does not return
