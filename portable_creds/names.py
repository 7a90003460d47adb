"""Validation of wallets and service names, and the storage layout built from them.

Everything that becomes part of a storage key passes through here first, so path traversal and
case confusion are impossible further in.
"""

from __future__ import annotations

import re

from .errors import InvalidName

_WALLET_RE = re.compile(r"0x[0-9a-fA-F]{40}")
_SERVICE_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_PREFIX_RE = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")

DEFAULT_PREFIX = "bots"
CREDENTIALS_DIR = "credentials"
SUFFIX = ".enc"
MAX_KEY_LEN = 1024
"""S3's (and COS's) object key limit, in bytes; the local driver enforces the same."""
_FIXED_KEY_PART = len("/0x" + "0" * 40 + "/" + CREDENTIALS_DIR + "/") + 64 + len(SUFFIX)
MAX_PREFIX_LEN = MAX_KEY_LEN - _FIXED_KEY_PART
"""The longest prefix with which the longest service name's key still fits ``MAX_KEY_LEN``."""


def validate_wallet(wallet: str) -> str:
    """Return the canonical (lowercased) wallet, or raise ``InvalidName``."""
    if not isinstance(wallet, str) or not _WALLET_RE.fullmatch(wallet):
        raise InvalidName(
            f"invalid wallet {_shown(wallet)}: expected 0x followed by 40 hex characters"
        )
    return wallet.lower()


def validate_service(service: str) -> str:
    """Return the service name unchanged (case preserved), or raise ``InvalidName``."""
    if (
        not isinstance(service, str)
        or not _SERVICE_RE.fullmatch(service)
        or service.startswith(".")
        or ".." in service
    ):
        raise InvalidName(
            f"invalid service name {_shown(service)}: use 1-64 characters of A-Z a-z 0-9 . _ -, "
            "not starting with '.' and without '..'"
        )
    return service


def validate_prefix(prefix: str) -> str:
    """A storage prefix: slash-separated segments of safe characters, no '.'/'..' segments."""
    if (
        not isinstance(prefix, str)
        or not _PREFIX_RE.fullmatch(prefix)
        or any(seg in (".", "..") for seg in prefix.split("/"))
    ):
        raise InvalidName(
            f"invalid storage prefix {_shown(prefix)}: use segments of A-Z a-z 0-9 . _ - "
            "separated by '/'"
        )
    if len(prefix) > MAX_PREFIX_LEN or any(len(seg) > 255 for seg in prefix.split("/")):
        raise InvalidName(
            f"invalid storage prefix {_shown(prefix)}: at most {MAX_PREFIX_LEN} characters and "
            "255 per segment, so every object key fits the 1024-byte limit of S3/COS keys"
        )
    return prefix


def tenant_prefix(wallet: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``<prefix>/<wallet>/`` - everything a tenant may touch lives below this."""
    return f"{validate_prefix(prefix)}/{validate_wallet(wallet)}/"


def credentials_prefix(wallet: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``<prefix>/<wallet>/credentials/`` - where the tenant's sealed credentials live."""
    return f"{tenant_prefix(wallet, prefix)}{CREDENTIALS_DIR}/"


def object_key(wallet: str, service: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``<prefix>/<wallet lowercased>/credentials/<service>.enc``."""
    return f"{credentials_prefix(wallet, prefix)}{validate_service(service)}{SUFFIX}"


def service_from_key(key: str, wallet: str, prefix: str = DEFAULT_PREFIX) -> str | None:
    """Inverse of ``object_key``; ``None`` for keys that are not a credential of this wallet."""
    base = credentials_prefix(wallet, prefix)
    if not key.startswith(base) or not key.endswith(SUFFIX):
        return None
    name = key[len(base) : -len(SUFFIX)]
    try:
        return validate_service(name)
    except InvalidName:
        return None


def _shown(value: object) -> str:
    """A bounded rendering of a rejected name (names are not secrets, but keep errors short)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
