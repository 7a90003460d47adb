"""``portable-creds``: the command-line interface (a stable contract other tools script).

stdout carries data only (a secret for ``get``, names for ``list``, JSON with ``--json``);
everything for humans goes to stderr. Expected failures are one stderr line
``portable-creds: error: <what failed>; <what to do>`` and a documented exit code; no traceback
unless ``--debug``. Startup imports only argparse and the light command modules, so ``--help``
is fast and never touches a cloud SDK.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any, NoReturn

from .commands import _common
from .errors import EXIT_CODES, PortableCredsError

#: Command modules under ``portable_creds.commands``, in help order. A module that is not
#: (yet) present is skipped; see ``portable_creds/commands/__init__.py`` for the contract.
COMMAND_MODULES: tuple[str, ...] = (
    "credentials",
    "creds",
    "outbox",
    "migrate",
    "copy",
    "run",
    "config",
    "doctor",
    "audit",
    "admin",
    "conformance",
    "demo",
    "completion",
)

#: The command words (names and aliases) each command module registers, so running one command
#: imports only its module (plus ``HOOK_MODULES``) instead of all of them.
#: tests/cli/test_parser_fastpath.py checks this against what the modules actually register.
COMMAND_WORDS: dict[str, tuple[str, ...]] = {
    "credentials": ("put", "get", "list", "ls", "delete", "rm", "teardown", "rewrap"),
    "creds": ("creds",),
    "outbox": ("outbox",),
    "migrate": ("migrate",),
    "copy": ("copy",),
    "run": ("run",),
    "config": ("config",),
    "doctor": ("doctor",),
    "audit": ("audit",),
    "admin": ("admin",),
    "conformance": ("conformance",),
    "demo": ("demo",),
    "completion": ("completion",),
}

#: Modules contributing global options or a settings layer (``add_global_options``,
#: ``settings_layer``): every command needs those, so they are always imported.
HOOK_MODULES: tuple[str, ...] = ("config", "audit")

DESCRIPTION = """\
Client-side encrypted, tenant-isolated credential storage on S3, Tencent COS or a local
directory. Secrets are sealed on this machine before they are stored.

examples:
  echo "$KEY" | portable-creds --wallet 0xabc... put openai
  portable-creds --wallet 0xabc... get openai
  portable-creds --wallet 0xabc... list --json
  portable-creds demo
"""


#: The documentation site (the same URL as ``Documentation`` in pyproject's ``project.urls``):
#: the help must not point at files of a checkout, which no wheel contains.
DOCS_URL = "https://portable-creds.github.io/portable-creds/"


def _module_of(command: str | None) -> str | None:
    """The command module registering ``command`` (a name or an alias), ``None`` if unknown."""
    for module, words in COMMAND_WORDS.items():
        if command in words:
            return module
    return None


def _load_modules(names: Sequence[str] = COMMAND_MODULES) -> list[ModuleType]:
    modules = []
    for name in names:
        full = f"{__package__}.commands.{name}"
        try:
            modules.append(importlib.import_module(full))
        except ModuleNotFoundError as exc:
            if exc.name != full:  # the module exists but something it imports does not
                raise
    return modules


class _Discarded:
    """Stands in for the parsers of commands this invocation does not run: accepts and ignores
    every call a command module makes while registering (add_argument, set_defaults...)."""

    def __getattr__(self, name: str) -> Any:
        return self._ignore

    def _ignore(self, *args: Any, **kwargs: Any) -> _Discarded:
        return self


class _OnlyCommand:
    """The top-level subparsers, building a real parser only for ``wanted`` (or its alias).

    Building every command's parser (each copies the global options) is a noticeable part of
    a cold ``portable-creds get``; the other commands' help is not needed to run this one.
    """

    def __init__(self, real: Any, wanted: str) -> None:
        self._real = real
        self._wanted = wanted
        self.matched = False

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if name == self._wanted or self._wanted in kwargs.get("aliases", ()):
            self.matched = True
            return self._real.add_parser(name, **kwargs)
        return _Discarded()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _SilentParser(argparse.ArgumentParser):
    """Pre-parses quietly: the real parser reports usage errors, once."""

    def error(self, message: str) -> NoReturn:
        raise ValueError(message)


def _command_in(argv: Sequence[str]) -> str | None:
    """The command word of ``argv`` (after the global options), ``None`` if unsure."""
    pre = _SilentParser(add_help=False, parents=[_common.global_options()])
    try:
        _, rest = pre.parse_known_args(list(argv))
    except (ValueError, SystemExit):
        return None
    words = [w for w in rest if not w.startswith("-")]
    return words[0] if words else None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The CLI's parser. With ``argv``, only the command it names gets a real subparser
    (everything else about parsing is identical); without, every command (help, completion).
    """
    _common.reset_hooks()
    # The global options (hooks included) must be complete before the command word is found.
    hooks = _load_modules(COMMAND_MODULES if argv is None else HOOK_MODULES)
    for module in hooks:
        hook = getattr(module, "add_global_options", None)
        if hook is not None:
            _common.add_global_option_hook(hook)
        layer = getattr(module, "settings_layer", None)
        if layer is not None:
            _common.add_settings_layer(layer)
    wanted = _command_in(argv) if argv is not None else None
    owner = _module_of(wanted)
    if argv is not None and owner is None:  # not a command name (a typo, or --help)
        return build_parser()
    modules = hooks if owner is None else _load_modules(
        [m for m in COMMAND_MODULES if m == owner or m in HOOK_MODULES]
    )
    parser = _common.Parser(
        prog=_common.PROG,
        description=DESCRIPTION,
        epilog=_common.exit_code_epilog()
        + f"\n\nDocumentation: {DOCS_URL} (user guide, API reference, format)",
        formatter_class=_common.formatter(),
        parents=[_common.global_options()],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    if wanted is None:
        for module in modules:
            module.register(subparsers)
        return parser
    only = _OnlyCommand(subparsers, wanted)
    for module in modules:
        module.register(only)
    if not only.matched:  # not a command name (a typo, or --help): the full parser explains
        return build_parser()
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _debug(args: argparse.Namespace | None) -> bool:
    return bool(args is not None and getattr(args, "debug", False)) or os.environ.get(
        _common.ENV_DEBUG, ""
    ) not in ("", "0")


#: Exit code -> its name in ``EXIT_CODES`` (the names scripts match on), plus Ctrl-C.
EXIT_NAMES: dict[int, str] = {**{code: name for name, code in EXIT_CODES.items()},
                              130: "interrupted"}


def _json_errors(args: argparse.Namespace | None, argv: Sequence[str] | None) -> bool:
    """Whether errors go out as JSON: ``--json`` was given to portable-creds itself.

    Before parsing succeeded (a usage error) the raw arguments decide; anything after ``--``
    belongs to another program (``run -- CMD --json``).
    """
    if args is not None:
        return bool(getattr(args, "json", False))
    tokens = list(sys.argv[1:] if argv is None else argv)
    return "--json" in (tokens[: tokens.index("--")] if "--" in tokens else tokens)


def _report(message: str, code: int, *, as_json: bool, exc: BaseException | None = None) -> None:
    """One error on stderr: the usual line, or with --json one object scripts can parse,
    ``{"error": ..., "exit_code": N, "exit_name": "not-found", "type": ..., "request_id": ...}``.
    """
    if not as_json:
        print(f"{_common.PROG}: error: {message}", file=sys.stderr)
        return
    obj: dict[str, object] = {
        "error": message,
        "exit_code": code,
        "exit_name": EXIT_NAMES.get(code, "error"),
    }
    if isinstance(exc, PortableCredsError) and not isinstance(exc, _common.CliError):
        obj["type"] = type(exc).__name__
        if exc.request_id:
            obj["request_id"] = exc.request_id
    print(json.dumps(obj, sort_keys=True), file=sys.stderr)


def _quiet_sdk_loggers() -> None:
    """SDKs log refused refreshes with tracebacks; our one-line error already says it all."""
    import logging

    for name in ("botocore.credentials", "botocore.hooks", "qcloud_cos", "tencentcloud"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(sys.argv[1:] if argv is None else argv)
    args: argparse.Namespace | None = None
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:
            if not getattr(args, "forward_unknown", False):
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            args.argv = extra + list(getattr(args, "argv", []))
        if not _debug(args):
            _quiet_sdk_loggers()
        func = getattr(args, "func", None)
        if func is None:
            parser.print_help(sys.stderr)
            return EXIT_CODES["usage"]
        code = func(args)
        sys.stdout.flush()
        return int(code)
    except PortableCredsError as exc:
        _report(_one_line(str(exc)), exc.exit_code, as_json=_json_errors(args, argv), exc=exc)
        if _debug(args):
            import traceback

            traceback.print_exc()
        return exc.exit_code
    except KeyboardInterrupt:
        _report("interrupted", 130, as_json=_json_errors(args, argv))
        return 130
    except BrokenPipeError:
        # The reader went away (``list | head``): not an error worth a message.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_CODES["error"]
    except Exception as exc:
        # Deliberately only the type (and OSError's file/reason): an unexpected exception's
        # text could carry anything, and stderr must never carry secret material.
        what = type(exc).__name__
        if isinstance(exc, OSError) and exc.strerror:
            what += f" ({exc.strerror}{': ' + str(exc.filename) if exc.filename else ''})"
        _report(
            f"unexpected {what}; rerun with --debug for a traceback and report it if it persists",
            EXIT_CODES["error"],
            as_json=_json_errors(args, argv),
        )
        if _debug(args):
            import traceback

            traceback.print_exc()
        return EXIT_CODES["error"]


if __name__ == "__main__":
    sys.exit(main())
