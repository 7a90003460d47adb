"""The configuration file, named profiles, and where every setting came from.

File: ``--config FILE`` > ``$PORTABLE_CREDS_CONFIG`` >
``$XDG_CONFIG_HOME/portable-creds/config.toml``
(``~/.config/...``). It is TOML::

    profile = "work"                 # optional: the profile used when none is selected

    [profiles.default]
    backend = "local"

    [profiles.work]
    backend = "s3://team-creds?region=eu-west-1"
    wallet = "0x..."
    legacy_url = "http://localhost:8090"
    legacy_token = "..."             # secret: masked by 'config show'; the file is kept 0600

Profile: ``--profile NAME`` > ``$PORTABLE_CREDS_PROFILE`` > the file's ``profile`` > ``default``.
Precedence for each setting: command-line flag > environment variable > profile > default, the
same order aws-cli and kubectl use, so a one-off flag always wins and the file holds the
steady state.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .errors import ConfigurationError

ENV_CONFIG = "PORTABLE_CREDS_CONFIG"
ENV_PROFILE = "PORTABLE_CREDS_PROFILE"
DEFAULT_PROFILE = "default"


@attrs.frozen
class Key:
    """One setting: its flag (argparse dest), environment variables (first set wins), default."""

    name: str
    dest: str | None
    env: tuple[str, ...]
    default: str | None
    secret: bool = False
    help: str = ""


KEYS: tuple[Key, ...] = (
    Key(
        "backend",
        "backend",
        ("PORTABLE_CREDS_BACKEND", "AGENTKEYS_CREDENTIAL_BACKEND"),
        "local",
        help="local, s3, cos, http or a URL (local:///DIR, s3://BUCKET, cos://BUCKET, http://HOST)",
    ),
    Key("wallet", "wallet", ("PORTABLE_CREDS_WALLET",), None, help="tenant wallet 0x + 40 hex"),
    Key("home", "home", ("PORTABLE_CREDS_HOME",), None, help="data home (root secret, outbox)"),
    Key(
        "secret_file", "secret_file", ("PORTABLE_CREDS_SECRET_FILE",), None, help="root secret file"
    ),
    Key("prefix", "prefix", ("PORTABLE_CREDS_PREFIX",), "bots", help="storage prefix"),
    Key(
        "kek_version",
        "kek_version",
        ("PORTABLE_CREDS_KEK_VERSION",),
        None,
        help="KEK version to seal with",
    ),
    Key(
        "accept_kek_versions",
        "accept_kek_versions",
        ("PORTABLE_CREDS_ACCEPT_KEK_VERSIONS",),
        None,
        help="KEK versions reads may open besides the sealing one, e.g. 2 or 2,3 (default: 1..N)",
    ),
    Key(
        "legacy_url",
        "legacy_url",
        ("PORTABLE_CREDS_LEGACY_URL",),
        "http://localhost:8090",
        help="legacy agentKeys backend (migrate --from-legacy)",
    ),
    Key(
        "legacy_token",
        None,
        ("PORTABLE_CREDS_LEGACY_TOKEN",),
        None,
        secret=True,
        help="bearer session token for the legacy backend",
    ),
    Key(
        "admin_verify",
        None,
        ("PORTABLE_CREDS_ADMIN_VERIFY",),
        None,
        help=(
            "provisioner arguments for doctor's policy-drift check, e.g. '--bucket B --issuer "
            "URL --flavor rgw' (admin credentials come from the cloud's usual environment)"
        ),
    ),
    Key(
        "signer_url",
        "signer_url",
        ("AGENTKEYS_SIGNER_URL",),
        None,
        help="agentKeys signer (upstream KEKs for migrate --from-upstream)",
    ),
    Key(
        "signer_token",
        None,
        ("AGENTKEYS_SIGNER_TOKEN",),
        None,
        secret=True,
        help="bearer token for the signer",
    ),
    Key(
        "omni_account",
        "omni_account",
        ("AGENTKEYS_OMNI_ACCOUNT",),
        None,
        help="signer omni account (default: derived from the wallet)",
    ),
    Key(
        "audit",
        "audit",
        ("PORTABLE_CREDS_AUDIT",),
        None,
        help="audit sink: file:PATH, stderr, logging[:NAME] or none",
    ),
)
KEYS_BY_NAME = {k.name: k for k in KEYS}
#: Keys the CLI core (``commands/_common.resolve_settings``) takes from the profile layer.
CORE_KEYS = (
    "backend",
    "wallet",
    "home",
    "secret_file",
    "prefix",
    "kek_version",
    "accept_kek_versions",
)


@attrs.frozen
class Value:
    """A resolved setting and where it came from (``--flag``, env var, ``profile X``, default)."""

    key: str
    value: str | None
    source: str
    secret: bool

    def shown(self) -> str | None:
        if self.value is None:
            return None
        return mask(self.value) if self.secret else self.value


def mask(value: str) -> str:
    """Enough to recognise which token is configured, never enough to use it."""
    if len(value) <= 8:
        return "****"
    return f"{value[:2]}****{value[-2:]} ({len(value)} chars)"


#: Values given on the command line (or by any other caller), by option name: ``config``,
#: ``profile`` and each key's ``dest``. A plain mapping, so the config layer knows nothing of
#: the CLI's parser (the CLI passes ``vars(args)``).
Flags = Mapping[str, object]


def _arg(flags: Flags | None, name: str) -> Any:
    return flags.get(name) if flags is not None else None


def config_path(
    flags: Flags | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    environ = os.environ if environ is None else environ
    explicit = _arg(flags, "config") or environ.get(ENV_CONFIG)
    if explicit:
        return Path(explicit).expanduser()
    base = environ.get("XDG_CONFIG_HOME", "")
    root = (
        Path(base)
        if base and os.path.isabs(base)
        else Path(environ.get("HOME") or Path.home()) / ".config"
    )
    return root / "portable-creds" / "config.toml"


def load(path: Path) -> dict[str, Any]:
    """The parsed file; ``{}`` if it does not exist. Unknown keys are an error (typos)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigurationError(f"cannot read the config file {path}: {exc.strerror}") from None
    import tomllib  # here: most CLI processes have no config file to parse (issue 13)

    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"the config file {path} is not valid TOML ({exc}); fix or remove it"
        ) from None
    _validate(doc, path)
    return doc


def _validate(doc: dict[str, Any], path: Path) -> None:
    for top in doc:
        if top not in ("profile", "profiles"):
            raise ConfigurationError(
                f"unknown top-level key {top!r} in {path}; settings go under [profiles.NAME]"
            )
    if "profile" in doc and not isinstance(doc["profile"], str):
        raise ConfigurationError(f"'profile' in {path} must be a string (a profile name)")
    profiles = doc.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigurationError(f"'profiles' in {path} must be a table of [profiles.NAME] tables")
    for name, table in profiles.items():
        if not isinstance(table, dict):
            raise ConfigurationError(f"[profiles.{name}] in {path} must be a table")
        for key, value in table.items():
            if key not in KEYS_BY_NAME:
                raise ConfigurationError(
                    f"unknown setting {key!r} in [profiles.{name}] of {path}; "
                    f"known: {', '.join(KEYS_BY_NAME)}"
                )
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise ConfigurationError(f"{key} in [profiles.{name}] of {path} must be a string")


def profile_name(
    flags: Flags | None, environ: Mapping[str, str], doc: Mapping[str, Any]
) -> tuple[str, bool]:
    """The selected profile and whether it was asked for explicitly (then it must exist)."""
    for value in (_arg(flags, "profile"), environ.get(ENV_PROFILE), doc.get("profile")):
        if value:
            return str(value), True
    return DEFAULT_PROFILE, False


def profile_values(
    flags: Flags | None = None, environ: Mapping[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    environ = os.environ if environ is None else environ
    path = config_path(flags, environ)
    doc = load(path)
    name, explicit = profile_name(flags, environ, doc)
    profiles = doc.get("profiles", {})
    if name not in profiles:
        if explicit:
            known = ", ".join(sorted(profiles)) or "none"
            raise ConfigurationError(
                f"profile {name!r} is not defined in {path} (profiles: {known}); create it with "
                f"'portable-creds config set KEY VALUE --profile {name}'"
            )
        return name, {}
    return name, {k: str(v) for k, v in profiles[name].items()}


def resolve(
    flags: Flags | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Value]:
    """Every known setting with its value and source: flag > env > profile > default."""
    environ = os.environ if environ is None else environ
    profile, values = profile_values(flags, environ)
    out: dict[str, Value] = {}
    for key in KEYS:
        flag_value = _arg(flags, key.dest) if key.dest else None
        if flag_value not in (None, ""):
            out[key.name] = Value(
                key.name, str(flag_value), "--" + key.name.replace("_", "-"), key.secret
            )
            continue
        env_hit = next(((e, environ[e]) for e in key.env if environ.get(e)), None)
        if env_hit is not None:
            out[key.name] = Value(key.name, env_hit[1], env_hit[0], key.secret)
        elif values.get(key.name):
            out[key.name] = Value(key.name, values[key.name], f"profile {profile}", key.secret)
        else:
            out[key.name] = Value(key.name, key.default, "default", key.secret)
    return out


def setting(
    name: str, flags: Flags | None = None, environ: Mapping[str, str] | None = None
) -> str | None:
    return resolve(flags, environ)[name].value


def _edit(path: Path) -> Any:
    """The file as a ``tomlkit`` document, which round-trips comments, order and formatting:
    ``config set`` must change one value, not rewrite the file the user annotated."""
    import tomlkit

    load(path)  # validates (and reports a broken file) exactly as every reader does
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return tomlkit.document()
    return tomlkit.parse(text)


def set_value(path: Path, key: str, value: str, *, profile: str = DEFAULT_PROFILE) -> None:
    """Write one setting into a profile. The file is 0600 (it may hold tokens), its dir 0700.

    Everything else in the file (comments, other profiles, order) is kept as it was.
    """
    import tomlkit

    if key not in KEYS_BY_NAME:
        raise ConfigurationError(f"unknown setting {key!r}; known: {', '.join(KEYS_BY_NAME)}")
    if not profile or any(c in profile for c in "[]. \"'"):
        raise ConfigurationError(f"invalid profile name {profile!r}: use letters, digits, - and _")
    value = _check_value(key, value)
    doc = _edit(path)
    if "profiles" not in doc:
        doc["profiles"] = tomlkit.table(is_super_table=True)
    profiles = doc["profiles"]
    if profile not in profiles:
        profiles[profile] = tomlkit.table()
    profiles[profile][key] = value
    _write_private(path, tomlkit.dumps(doc).encode())


def _check_value(key: str, value: str) -> str:
    """Reject what would only fail later, at the first command that reads it."""
    if key == "wallet":
        from .names import validate_wallet

        return validate_wallet(value)
    if key == "prefix":
        from .names import validate_prefix

        return validate_prefix(value)
    if key in ("backend", "legacy_url", "signer_url"):
        from .urls import reject_userinfo

        reject_userinfo(value, key)  # never written to the file, never echoed
    if key == "kek_version" and (not value.isdigit() or int(value) < 1):
        raise ConfigurationError(f"kek_version must be a whole number >= 1, not {value!r}")
    if key == "accept_kek_versions":
        return ",".join(str(v) for v in parse_kek_versions(value, key))
    if key == "audit":
        from .audit_spec import parse_sink_spec

        parse_sink_spec(value)
    if key == "omni_account" and (
        len(value) != 64 or any(c not in "0123456789abcdefABCDEF" for c in value)
    ):
        raise ConfigurationError("omni_account must be 64 hex characters")
    return value


def unset_value(path: Path, key: str, *, profile: str = DEFAULT_PROFILE) -> bool:
    """Remove one setting from a profile; ``False`` if it was not set. Keeps the rest as is."""
    import tomlkit

    doc = _edit(path)
    table = doc.get("profiles", {}).get(profile, {})
    if key not in table:
        return False
    del table[key]
    _write_private(path, tomlkit.dumps(doc).encode())
    return True


def _write_private(path: Path, data: bytes) -> None:
    from .paths import ensure_private_dir, write_file_atomic

    try:
        ensure_private_dir(path.parent)
        write_file_atomic(path, data, 0o600)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot write the config file {path}: {exc.strerror or exc}; use --config FILE "
            "to pick a writable location"
        ) from None


def profiles(
    flags: Flags | None = None, environ: Mapping[str, str] | None = None
) -> list[str]:
    environ = os.environ if environ is None else environ
    return sorted(load(config_path(flags, environ)).get("profiles", {}))


def parse_kek_versions(raw: str, origin: str) -> tuple[int, ...]:
    """``"2"``, ``"2,3"`` or ``"2-4"`` (ranges inclusive) -> sorted distinct versions >= 1."""
    versions: set[int] = set()
    for part in raw.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi if sep else lo)
        except ValueError:
            raise ConfigurationError(
                f"{origin}={raw!r}: use KEK versions like 2 or 2,3 or 2-3"
            ) from None
        if first < 1 or last < first or last - first > 1000:
            raise ConfigurationError(
                f"{origin}={raw!r}: versions are whole numbers >= 1, ranges low-high"
            )
        versions.update(range(first, last + 1))
    return tuple(sorted(versions))
