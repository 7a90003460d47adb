"""What every CLI command shares: global options, settings resolution, opening a store, output.

Kept to the standard library at import time: ``portable-creds --help`` imports this module and
every command module, so anything heavy (cryptography, the store, drivers) is imported inside
the functions that need it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, NoReturn

from ..errors import EXIT_CODES, ConfigurationError, PortableCredsError

if TYPE_CHECKING:
    from ..audit import AuditSink
    from ..driver import ObjectStore
    from ..keys import KeySource
    from ..store import CredentialStore

PROG = "portable-creds"

#: Upstream agentKeys' legacy backend default (the CLI's ``--backend http://localhost:8090``).
LEGACY_HTTP_DEFAULT = "http://localhost:8090"

ENV_BACKEND = "PORTABLE_CREDS_BACKEND"
ENV_WALLET = "PORTABLE_CREDS_WALLET"
ENV_HOME = "PORTABLE_CREDS_HOME"
ENV_SECRET_FILE = "PORTABLE_CREDS_SECRET_FILE"
ENV_PREFIX = "PORTABLE_CREDS_PREFIX"
ENV_KEK_VERSION = "PORTABLE_CREDS_KEK_VERSION"
ENV_ACCEPT_KEK_VERSIONS = "PORTABLE_CREDS_ACCEPT_KEK_VERSIONS"
ENV_DEBUG = "PORTABLE_CREDS_DEBUG"
ENV_AGENTKEYS_BACKEND = "AGENTKEYS_CREDENTIAL_BACKEND"
ENV_AGENTKEYS_BUCKET = "AGENTKEYS_BUCKET"
ENV_AGENTKEYS_ROLE = "AGENTKEYS_DATA_ROLE_ARN"

#: ``--scope-enforcement`` values, as ``CredentialStore.scoped(enforcement=...)`` takes them.
SCOPE_ENFORCEMENTS: tuple[str, ...] = ("cloud", "client")

#: Human descriptions of ``errors.EXIT_CODES``, in the order the help epilog and README list them.
EXIT_CODE_MEANINGS: tuple[tuple[str, str], ...] = (
    ("ok", "success"),
    ("error", "unexpected internal error (rerun with --debug for a traceback)"),
    ("usage", "bad command line, or a confirmation was refused"),
    ("not-found", "no such credential"),
    ("access-denied", "the backend refused access (another tenant's data, IAM policy)"),
    ("integrity", "a stored blob failed its integrity check (tampered, moved, wrong key)"),
    ("configuration", "missing or inconsistent configuration, driver not installed"),
    ("remote-unavailable", "backend unreachable or kept failing; a failed put stays in the outbox"),
    ("invalid-input", "bad wallet or service name, empty or oversize secret"),
    ("credentials", "temporary credentials or identity token expired or refused"),
    ("precondition-failed", "a conditional write lost a race"),
    ("key-source", "the key source could not produce a key-encryption key"),
)


def exit_code_epilog() -> str:
    lines = ["exit codes:"]
    for name, meaning in EXIT_CODE_MEANINGS:
        lines.append(f"  {EXIT_CODES[name]:>3}  {name:<20} {meaning}")
    return "\n".join(lines)


class CliError(PortableCredsError):
    """A failure detected by the CLI itself, with the exit code of the matching library error."""

    def __init__(self, message: str, *, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# -- global options ----------------------------------------------------------------------

#: Extra global options contributed by command modules (``add_global_options`` hooks).
_global_option_hooks: list[Callable[[argparse.ArgumentParser], None]] = []
#: Settings layers contributed by command modules (``settings_layer`` hooks), e.g. profiles.
_settings_layers: list[Callable[[argparse.Namespace], Mapping[str, str]]] = []
_parent: argparse.ArgumentParser | None = None


def reset_hooks() -> None:
    global _parent
    _global_option_hooks.clear()
    _settings_layers.clear()
    _parent = None


def add_global_option_hook(hook: Callable[[argparse.ArgumentParser], None]) -> None:
    global _parent
    _global_option_hooks.append(hook)
    _parent = None


def add_settings_layer(layer: Callable[[argparse.Namespace], Mapping[str, str]]) -> None:
    _settings_layers.append(layer)


def global_options() -> argparse.ArgumentParser:
    """The parent parser holding options accepted before *and* after the command name.

    Every default is SUPPRESS so a value given before the command is not overwritten by the
    subparser's default; read them with ``getattr(args, name, None)``.
    """
    global _parent
    if _parent is not None:
        return _parent
    p = Parser(add_help=False, argument_default=argparse.SUPPRESS)
    g = p.add_argument_group("global options (also accepted after the command)")
    g.add_argument(
        "--backend",
        metavar="URL",
        help=f"storage backend: local:///DIR, s3://BUCKET, cos://BUCKET, http://HOST "
        f"or a name (local, s3, http) [env {ENV_BACKEND}; default local]",
    )
    g.add_argument("--wallet", metavar="0x..", help=f"tenant wallet address [env {ENV_WALLET}]")
    g.add_argument(
        "--home",
        metavar="DIR",
        help=f"state directory: root secret, outbox, local store [env {ENV_HOME}]",
    )
    g.add_argument(
        "--secret-file",
        metavar="F",
        help=f"root secret file (32 bytes or 64 hex) [env {ENV_SECRET_FILE}]",
    )
    g.add_argument("--prefix", metavar="P", help=f"storage prefix [env {ENV_PREFIX}; default bots]")
    g.add_argument(
        "--kek-version",
        metavar="N",
        type=int,
        help=f"KEK version to seal with (rotation) [env {ENV_KEK_VERSION}; default 1]",
    )
    g.add_argument(
        "--accept-kek-versions",
        metavar="N[,N]",
        help="KEK versions a read may open, besides the sealing one (retire old versions "
        f"after a rotation) [env {ENV_ACCEPT_KEK_VERSIONS}; default 1..--kek-version]",
    )
    g.add_argument("--json", action="store_true", help="machine-readable output")
    g.add_argument(
        "--debug", action="store_true", help=f"tracebacks for unexpected errors [env {ENV_DEBUG}=1]"
    )
    g.add_argument(
        "--scope",
        metavar="SERVICE[,SERVICE]",
        action="append",
        help="limit the command to these services, with credentials the cloud narrows (repeatable)",
    )
    g.add_argument(
        "--read-only",
        action="store_true",
        help="with --scope: credentials that can only read those services",
    )
    g.add_argument(
        "--scope-enforcement",
        choices=SCOPE_ENFORCEMENTS,
        help="who enforces --scope: the cloud (default; refused where the backend "
        "cannot) or this client only (explicit opt-in)",
    )
    g.add_argument(
        "--no-credential-cache",
        action="store_true",
        help="do not reuse or keep temporary cloud credentials across processes "
        "(<home>/cache/credentials) [env PORTABLE_CREDS_NO_CREDENTIAL_CACHE=1]",
    )
    for hook in _global_option_hooks:
        hook(p)
    _parent = p
    return p


class Parser(argparse.ArgumentParser):
    """argparse with the CLI's one-line error format (usage errors exit 2)."""

    def error(self, message: str) -> NoReturn:
        # Raised, not printed: ``cli.main`` reports every error the same way (a line, or a
        # JSON object under --json).
        raise CliError(f"{message}; see '{self.prog} --help'", exit_code=EXIT_CODES["usage"])


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)

    def _format_action(self, action: argparse.Action) -> str:
        # List the commands themselves, without argparse's "COMMAND" header row above them.
        if isinstance(action, argparse._SubParsersAction):
            return "".join(
                super(_Formatter, self)._format_action(sub) for sub in action._get_subactions()
            )
        return super()._format_action(action)


def formatter() -> type[argparse.HelpFormatter]:
    return _Formatter


def add_command(
    subparsers: Any,
    name: str,
    *,
    help: str,
    description: str | None = None,
    epilog: str | None = None,
    aliases: tuple[str, ...] = (),
) -> argparse.ArgumentParser:
    """Add a command that accepts the global options too (``put x --wallet ...``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help,
        description=description or help,
        epilog=epilog,
        parents=[global_options()],
        formatter_class=_Formatter,
        aliases=list(aliases),
    )
    return parser


def flag(args: argparse.Namespace, name: str) -> bool:
    return bool(getattr(args, name, False))


# -- settings --------------------------------------------------------------------------


class Settings(NamedTuple):
    """Where the CLI stores and with whose identity, after flags > env > layers > defaults."""

    backend: str
    backend_source: str
    wallet: str | None
    home: Path | None
    secret_file: Path | None
    prefix: str
    kek_version: int | None
    accept_kek_versions: tuple[int, ...] | None = None
    """``None``: every version from 1 to the sealing one; else these plus the sealing one."""


def backend_from_name(value: str, env: Mapping[str, str], origin: str) -> str:
    """A backend URL from a URL or a short name (``local``, ``s3``, ``http``, ``cos``).

    Short names follow upstream agentKeys: ``s3`` takes its bucket from ``AGENTKEYS_BUCKET``
    (and the data role from ``AGENTKEYS_DATA_ROLE_ARN``), ``http`` is the legacy backend at
    upstream's default address.
    """
    value = value.strip()
    if "://" in value:
        from ..urls import reject_userinfo

        reject_userinfo(value, f"backend URL from {origin}")
        return value
    name = value.lower()
    if name == "local":
        return "local://"
    if name in ("s3", "aws", "cos", "tencent"):
        bucket = env.get(ENV_AGENTKEYS_BUCKET, "").strip()
        if not bucket:
            scheme = "s3" if name in ("s3", "aws") else "cos"
            raise ConfigurationError(
                f"{origin}={value} needs a bucket; set {ENV_AGENTKEYS_BUCKET} or use "
                f"--backend {scheme}://BUCKET"
            )
        if name in ("s3", "aws"):
            from urllib.parse import quote

            role = env.get(ENV_AGENTKEYS_ROLE, "").strip()
            return f"s3://{bucket}" + (f"?role_arn={quote(role, safe=':/')}" if role else "")
        return f"cos://{bucket}"
    if name == "http":
        return LEGACY_HTTP_DEFAULT
    raise ConfigurationError(
        f"unknown backend {value!r} in {origin}; use local, s3, http or a URL such as "
        "local:///DIR, s3://BUCKET, cos://BUCKET, http://HOST:PORT"
    )


def _first(*candidates: tuple[str | None, str]) -> tuple[str | None, str]:
    for value, source in candidates:
        if value not in (None, ""):
            return value, source
    return None, "default"


def resolve_settings(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Settings:
    """Precedence: command-line flag > PORTABLE_CREDS_* > AGENTKEYS_* > layers > defaults."""
    env = os.environ if env is None else env
    layer: dict[str, str] = {}
    for fn in reversed(_settings_layers):  # earlier-registered layers win
        layer.update({k: v for k, v in fn(args).items() if v})

    raw_backend, source = _first(
        (getattr(args, "backend", None), "--backend"),
        (env.get(ENV_BACKEND), ENV_BACKEND),
        (env.get(ENV_AGENTKEYS_BACKEND), ENV_AGENTKEYS_BACKEND),
        (layer.get("backend"), "profile"),
    )
    backend = backend_from_name(raw_backend, env, source) if raw_backend else "local://"

    wallet, _ = _first(
        (getattr(args, "wallet", None), "--wallet"),
        (env.get(ENV_WALLET), ENV_WALLET),
        (layer.get("wallet"), "profile"),
    )
    home, _ = _first(
        (getattr(args, "home", None), "--home"),
        (env.get(ENV_HOME), ENV_HOME),
        (layer.get("home"), "profile"),
    )
    secret_file, _ = _first(
        (getattr(args, "secret_file", None), "--secret-file"),
        (env.get(ENV_SECRET_FILE), ENV_SECRET_FILE),
        (layer.get("secret_file"), "profile"),
    )
    prefix, _ = _first(
        (getattr(args, "prefix", None), "--prefix"),
        (env.get(ENV_PREFIX), ENV_PREFIX),
        (layer.get("prefix"), "profile"),
        # Exactly like open_store: an explicit prefix wins, else the URL's ?prefix=.
        (_url_prefix(backend), "backend URL"),
    )
    kek_raw: Any = getattr(args, "kek_version", None)
    kek_src = "--kek-version"
    if kek_raw is None:
        kek_raw, kek_src = _first(
            (env.get(ENV_KEK_VERSION), ENV_KEK_VERSION), (layer.get("kek_version"), "profile")
        )
    kek_version: int | None = None
    if kek_raw is not None:
        try:
            kek_version = int(kek_raw)
        except ValueError:
            raise ConfigurationError(
                f"{kek_src}={kek_raw!r} is not a number; use a KEK version such as 1 or 2"
            ) from None
        if kek_version < 1:
            raise ConfigurationError(f"{kek_src}={kek_version} must be 1 or more")
    accept_raw, accept_src = _first(
        (getattr(args, "accept_kek_versions", None), "--accept-kek-versions"),
        (env.get(ENV_ACCEPT_KEK_VERSIONS), ENV_ACCEPT_KEK_VERSIONS),
        (layer.get("accept_kek_versions"), "profile"),
    )
    accept: tuple[int, ...] | None = None
    if accept_raw is not None:
        from ..config import parse_kek_versions

        accept = parse_kek_versions(accept_raw, accept_src)
    return Settings(
        backend=backend,
        backend_source=source,
        wallet=wallet,
        home=Path(home).expanduser() if home else None,
        secret_file=Path(secret_file).expanduser() if secret_file else None,
        prefix=prefix or "bots",
        kek_version=kek_version,
        accept_kek_versions=accept,
    )


def _url_prefix(url: str) -> str | None:
    from urllib.parse import parse_qsl, urlsplit

    try:
        return dict(parse_qsl(urlsplit(url).query)).get("prefix")
    except ValueError:
        return None  # the driver reports the malformed URL


def require_wallet(settings: Settings) -> str:
    if not settings.wallet:
        raise ConfigurationError(f"no wallet given; pass --wallet 0x<40 hex> or set {ENV_WALLET}")
    return settings.wallet


def notice(message: str) -> None:
    """One line for the human on stderr (never on stdout, which carries data)."""
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


class ScopeRequest(NamedTuple):
    """What ``--scope`` / ``--read-only`` / ``--scope-enforcement`` ask for."""

    services: tuple[str, ...]
    read_only: bool
    enforcement: str


def scope_request(args: argparse.Namespace) -> ScopeRequest | None:
    """The requested scope, ``None`` without ``--scope``; usage errors for half-given options."""
    from ..names import validate_service

    raw: list[str] = list(getattr(args, "scope", None) or [])
    services = tuple(
        dict.fromkeys(
            validate_service(part.strip())
            for item in raw
            for part in item.split(",")
            if part.strip()
        )
    )
    read_only = flag(args, "read_only")
    enforcement = getattr(args, "scope_enforcement", None)
    if not services:
        if raw:
            fail(
                "--scope needs at least one service name, e.g. --scope openai,github", code="usage"
            )
        if read_only or enforcement is not None:
            given = "--read-only" if read_only else "--scope-enforcement"
            fail(f"{given} only applies to a scope; add --scope SERVICE[,SERVICE]", code="usage")
        return None
    return ScopeRequest(services, read_only, enforcement or "cloud")


def apply_scope(store: CredentialStore, request: ScopeRequest | None) -> CredentialStore:
    """``store`` narrowed to ``request`` (the unchanged store for ``None``)."""
    if request is None:
        return store
    enforcement: Literal["cloud", "client"] = (
        "client" if request.enforcement == "client" else "cloud"
    )
    try:
        scoped = store.scoped(
            request.services, read_only=request.read_only, enforcement=enforcement
        )
    except ConfigurationError:
        caps = store.objects.capabilities
        if enforcement != "cloud" or caps.scoped_credentials == "cloud":
            raise
        raise ConfigurationError(
            f"--scope: backend {store.objects.backend_id} cannot narrow its credentials in "
            f"the cloud (scoped_credentials={caps.scoped_credentials!r}); add "
            "--scope-enforcement client to accept a limit this client enforces alone, or use "
            "a backend that can (s3:// with role_arn)"
        ) from None
    if enforcement == "client":
        notice(
            "the scope is enforced by this client only: the credentials it uses still reach "
            "every credential of the wallet"
        )
    return scoped


def open_store(
    args: argparse.Namespace,
    *,
    wallet: str | None = None,
    settings: Settings | None = None,
    scoped: bool = True,
    keys: KeySource | Callable[[ObjectStore], KeySource] | None = None,
) -> CredentialStore:
    """The ``CredentialStore`` the global options and environment describe.

    With ``--scope`` (and ``scoped=True``) it is the scoped store: every operation of the
    command runs with credentials limited to those services (read-only with ``--read-only``).
    ``keys``: a key source (or ``opener.KeysFactory``) instead of the configured one.
    """
    from ..opener import open_store as _open

    request = scope_request(args) if scoped else None
    settings = settings or resolve_settings(args)
    store = _open(
        settings.backend,
        wallet=wallet or require_wallet(settings),
        token=legacy_token(args, settings),
        keys=keys if keys is not None else key_source(settings),
        home=settings.home,
        prefix=settings.prefix,
        on_notice=notice,
        # Every operation on the store emits one event (put/get/list/delete ...), never secrets.
        audit=_audit_sink(args),
        # Fresh processes reuse the STS session of the previous one (like the AWS CLI).
        credential_cache=not flag(args, "no_credential_cache"),
    )
    try:
        return apply_scope(store, request)
    except BaseException:
        store.close()
        raise


def _audit_sink(args: argparse.Namespace) -> AuditSink | None:
    """The configured audit sink, ``None`` without one. The audit module is imported only when
    a sink is configured: a cold ``get`` without one should not pay for it (issue 13)."""
    from ..config import setting

    if not setting("audit", vars(args)):
        return None
    from ..audit import sink_for_cli

    return sink_for_cli(args)


def is_legacy(url: str) -> bool:
    return url.split(":", 1)[0].lower() in ("http", "https")


def legacy_token(args: argparse.Namespace, settings: Settings) -> str | None:
    """The legacy backend's bearer token for ``http(s)://`` backends, else ``None``.

    ``PORTABLE_CREDS_LEGACY_TOKEN`` > the profile's ``legacy_token``, so a token kept in a
    profile works like the environment variable. Other backends get no token here: for them
    ``token`` means an OIDC identity token, which comes from the URL's ``token_file``.
    """
    if not is_legacy(settings.backend):
        return None
    from ..config import setting

    return setting("legacy_token", vars(args))


def key_source(settings: Settings) -> KeySource | None:
    """The key source for an explicit root secret file, KEK version or accepted versions;
    ``None`` = the default.

    ``accept_kek_versions`` narrows what reads open (the sealing version is always accepted):
    after a rotation and ``rewrap``, it is what stops a replayed blob sealed under a retired
    version from opening (docs/threat-model.md, "Rollback and replay").

    With neither, the opener's default applies (``<home>/root.key``, created 0600 on first
    use for the local backend only). An explicit secret file must already exist: creating one
    on a mistyped path would seal new secrets under a key nobody backs up.
    """
    if (
        settings.secret_file is None
        and settings.kek_version is None
        and settings.accept_kek_versions is None
    ):
        return None
    from .. import paths
    from ..opener import default_key_source
    from ..secret_key import SecretKeySource

    accepted = settings.accept_kek_versions
    # Naming accepted versions without a sealing version seals with the newest of them:
    # "--accept-kek-versions 2" must not keep sealing (and so accepting) version 1.
    version = settings.kek_version or (max(accepted) if accepted else 1)
    path = settings.secret_file
    if path is None:
        # Same creation rules and notice as the default, then reload at the asked version.
        default_key_source(settings.home, create=is_local(settings.backend), on_notice=notice)
        path = paths.root_key_path(settings.home)
    elif not os.path.lexists(path):
        raise ConfigurationError(
            f"root secret file {path} does not exist; create one with "
            f"'(umask 077; head -c 32 /dev/urandom > {path})', or unset --secret-file/"
            f"{ENV_SECRET_FILE} to use the default"
        )
    return SecretKeySource.from_file(path, version, accept_versions=settings.accept_kek_versions)


def is_local(url: str) -> bool:
    return url.split(":", 1)[0].lower() == "local"


# -- output ------------------------------------------------------------------------------


def print_json(value: object) -> None:
    sys.stdout.write(json.dumps(value, indent=None, sort_keys=True) + "\n")
    sys.stdout.flush()


def fail(message: str, *, code: str) -> NoReturn:
    raise CliError(message, exit_code=EXIT_CODES[code])
