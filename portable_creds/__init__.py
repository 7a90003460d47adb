"""portable-creds: client-side encrypted, tenant-isolated credential storage.

Importing this package stays light: no cloud SDK (and not even the cryptography backend) is
imported until a store is opened; drivers load through entry points on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    AccessDenied,
    ConfigurationError,
    CredentialsError,
    ExpiredCredentials,
    IntegrityError,
    InvalidName,
    InvalidSecret,
    InvalidToken,
    KeySourceError,
    NotFound,
    PayloadTooLarge,
    PortableCredsError,
    PreconditionFailed,
    RemoteUnavailable,
    SecretNotDelivered,
    TransientError,
)

if TYPE_CHECKING:
    from .opener import open_store
    from .secret_key import SecretKeySource
    from .store import CredentialStore, Secret

#: The distribution's version; pyproject.toml reads it from here (the one place it is written).
__version__ = "0.1.0"

_LAZY = {
    "open_store": ("opener", "open_store"),
    "CredentialStore": ("store", "CredentialStore"),
    "Secret": ("store", "Secret"),
    "SecretKeySource": ("secret_key", "SecretKeySource"),
}

__all__ = [
    "AccessDenied",
    "ConfigurationError",
    "CredentialStore",
    "CredentialsError",
    "ExpiredCredentials",
    "IntegrityError",
    "InvalidName",
    "InvalidSecret",
    "InvalidToken",
    "KeySourceError",
    "NotFound",
    "PayloadTooLarge",
    "PortableCredsError",
    "PreconditionFailed",
    "RemoteUnavailable",
    "Secret",
    "SecretKeySource",
    "SecretNotDelivered",
    "TransientError",
    "open_store",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module 'portable_creds' has no attribute {name!r}")
