"""``config show|get|set|unset|path|profiles``, and the global ``--config`` / ``--profile``.

Profiles plug into the CLI's settings resolution as the layer between environment variables
and defaults (``settings_layer``), so every command honours them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from . import _common


def add_global_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("configuration")
    g.add_argument(
        "--config",
        metavar="FILE",
        help="config file [env PORTABLE_CREDS_CONFIG; default "
        "$XDG_CONFIG_HOME/portable-creds/config.toml]",
    )
    g.add_argument(
        "--profile",
        metavar="NAME",
        help="named profile from the config file [env PORTABLE_CREDS_PROFILE; "
        "default: the file's 'profile', else 'default']",
    )


def settings_layer(args: argparse.Namespace) -> Mapping[str, str]:
    from .. import config

    _, values = config.profile_values(vars(args))
    return {k: v for k, v in values.items() if k in config.CORE_KEYS}


def register(subparsers: Any) -> None:
    p = _common.add_command(
        subparsers,
        "config",
        help="show or change settings and profiles",
        description=(
            "Settings come from, in order of precedence: command-line flags, environment\n"
            "variables, the selected profile of the config file, defaults.\n"
            "Secrets (tokens) are masked by 'show'; the file is written 0600."
        ),
        epilog=(
            "examples:\n"
            "  portable-creds config set backend s3://team-creds --profile work\n"
            "  portable-creds --profile work config show\n"
            "  portable-creds config show --json"
        ),
    )
    sub = p.add_subparsers(title="actions", metavar="ACTION", dest="config_action")

    show = _common.add_command(
        sub,
        "show",
        help="every setting, its value and where it came from",
        epilog=(
            "examples:\n"
            "  portable-creds config show\n"
            "  portable-creds --profile work config show --json"
        ),
    )
    show.set_defaults(func=cmd_show)

    gt = _common.add_command(
        sub,
        "get",
        help="print the value of KEY as commands resolve it",
        description=(
            "Print KEY's effective value (flag > environment > profile > default), the value\n"
            "every command uses, and nothing else. Exits 3 (not-found) if it has none.\n"
            "Tokens are masked unless --reveal."
        ),
        epilog=(
            "examples:\n"
            "  portable-creds config get backend\n"
            "  portable-creds --profile work config get wallet --json"
        ),
    )
    gt.add_argument("key", metavar="KEY")
    gt.add_argument("--reveal", action="store_true", help="print a token unmasked")
    gt.set_defaults(func=cmd_get)

    st = _common.add_command(
        sub,
        "set",
        help="set KEY to VALUE in a profile",
        epilog=(
            "examples:\n"
            "  portable-creds config set legacy_url https://legacy:8090 --profile mig\n"
            '  printf %s "$TOKEN" | portable-creds config set legacy_token --profile mig\n'
            "  portable-creds config set audit file:~/.local/state/portable-creds/audit.jsonl"
        ),
    )
    st.add_argument("key", metavar="KEY")
    st.add_argument(
        "value",
        metavar="VALUE",
        nargs="?",
        help="the value; secrets (legacy_token, signer_token) are read from stdin or a hidden "
        "prompt instead, never from the command line",
    )
    st.set_defaults(func=cmd_set)

    un = _common.add_command(
        sub,
        "unset",
        help="remove KEY from a profile",
        epilog="examples:\n  portable-creds config unset legacy_token --profile mig",
    )
    un.add_argument("key", metavar="KEY")
    un.set_defaults(func=cmd_unset)

    path = _common.add_command(
        sub,
        "path",
        help="print the config file path",
        epilog='examples:\n  "$EDITOR" "$(portable-creds config path)"',
    )
    path.set_defaults(func=cmd_path)

    prof = _common.add_command(
        sub,
        "profiles",
        help="list the profiles in the config file",
        epilog=(
            "examples:\n  portable-creds config profiles\n  portable-creds config profiles --json"
        ),
    )
    prof.set_defaults(func=cmd_profiles)

    p.set_defaults(func=cmd_show)


def _target_profile(args: argparse.Namespace) -> str:
    import os

    from .. import config

    explicit = getattr(args, "profile", None) or os.environ.get(config.ENV_PROFILE)
    if explicit:
        return str(explicit)
    doc = config.load(config.config_path(vars(args)))
    return str(doc.get("profile") or config.DEFAULT_PROFILE)


def cmd_show(args: argparse.Namespace) -> int:
    from .. import config

    values = config.resolve(vars(args))
    path = config.config_path(vars(args))
    profile, _ = config.profile_values(vars(args))
    if _common.flag(args, "json"):
        _common.print_json(
            {
                "config_file": str(path),
                "config_file_exists": path.exists(),
                "profile": profile,
                "settings": {
                    k: {"value": v.shown(), "source": v.source, "secret": v.secret}
                    for k, v in values.items()
                },
            }
        )
        return 0
    out = sys.stdout
    out.write(f"config file: {path}{'' if path.exists() else ' (not present)'}\n")
    out.write(f"profile:     {profile}\n")
    width = max(len(k) for k in values)
    for key, v in values.items():
        shown = v.shown()
        out.write(f"{key:<{width}}  {shown if shown is not None else '-':<40}  ({v.source})\n")
    return 0


MAX_SECRET_INPUT = 64 * 1024
"""Far above any session token; a bound so a mistaken pipe is not read into memory whole."""


def _read_secret(key: str) -> str:
    """A secret setting's value from stdin (one trailing newline removed) or a hidden prompt.

    Never from argv: the command line is visible to every user in ``ps`` and lands in shell
    history.
    """
    if sys.stdin is None:
        _common.fail(f"no stdin to read {key} from; pipe it in", code="invalid-input")
    if sys.stdin.isatty():
        import getpass

        try:
            value = getpass.getpass(f"{key} (input hidden): ")
        except EOFError:
            value = ""
    else:
        raw = sys.stdin.buffer.read(MAX_SECRET_INPUT + 1)
        if len(raw) > MAX_SECRET_INPUT:
            _common.fail(
                f"{key} on stdin is larger than {MAX_SECRET_INPUT} bytes", code="invalid-input"
            )
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            _common.fail(f"{key} on stdin is not UTF-8 text", code="invalid-input")
        value = value[:-2] if value.endswith("\r\n") else value.removesuffix("\n")
    if not value.strip():
        _common.fail(
            f'empty {key}; pipe it in: printf %s "$TOKEN" | portable-creds config set {key}',
            code="invalid-input",
        )
    return value


def cmd_get(args: argparse.Namespace) -> int:
    from .. import config

    if args.key not in config.KEYS_BY_NAME:
        _common.fail(
            f"unknown setting {args.key!r}; known: {', '.join(config.KEYS_BY_NAME)}",
            code="configuration",
        )
    v = config.resolve(vars(args))[args.key]
    if v.value is None:
        _common.fail(
            f"{args.key} is not set (no flag, environment variable, profile value or default); "
            f"set it with 'portable-creds config set {args.key} VALUE'",
            code="not-found",
        )
    shown = v.value if _common.flag(args, "reveal") else v.shown()
    if _common.flag(args, "json"):
        _common.print_json(
            {"key": args.key, "value": shown, "source": v.source, "secret": v.secret}
        )
    else:
        sys.stdout.write(f"{shown}\n")
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    from .. import config

    path = config.config_path(vars(args))
    profile = _target_profile(args)
    known = config.KEYS_BY_NAME.get(args.key)
    secret = known is not None and known.secret
    if secret and args.value is not None:
        _common.fail(
            f"{args.key} is a secret: it is read from stdin or a hidden prompt, never the command "
            f"line (visible in ps and shell history); nothing was written. Use: printf %s "
            f'"$TOKEN" | portable-creds config set {args.key}',
            code="usage",
        )
    if args.value is None and not secret:
        _common.fail(f"config set {args.key} needs a VALUE", code="usage")
    value = _read_secret(args.key) if secret else args.value
    config.set_value(path, args.key, value, profile=profile)
    shown = config.mask(value) if secret else value
    if _common.flag(args, "json"):
        _common.print_json(
            {"config_file": str(path), "profile": profile, "key": args.key, "value": shown}
        )
    else:
        _common.notice(f"set {args.key} = {shown} in profile {profile} ({path})")
    return 0


def cmd_unset(args: argparse.Namespace) -> int:
    from .. import config

    path = config.config_path(vars(args))
    profile = _target_profile(args)
    removed = config.unset_value(path, args.key, profile=profile)
    if _common.flag(args, "json"):
        _common.print_json({"profile": profile, "key": args.key, "removed": removed})
    elif removed:
        _common.notice(f"removed {args.key} from profile {profile}")
    else:
        _common.notice(f"{args.key} was not set in profile {profile}")
    return 0


def cmd_path(args: argparse.Namespace) -> int:
    from .. import config

    path = config.config_path(vars(args))
    if _common.flag(args, "json"):
        _common.print_json({"config_file": str(path), "exists": path.exists()})
    else:
        sys.stdout.write(f"{path}\n")
    return 0


def cmd_profiles(args: argparse.Namespace) -> int:
    from .. import config

    names = config.profiles(vars(args))
    if _common.flag(args, "json"):
        _common.print_json({"profiles": names})
    else:
        for name in names:
            sys.stdout.write(f"{name}\n")
    return 0
