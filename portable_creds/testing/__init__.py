"""Test tooling shipped with the library: real local servers implementing documented protocols.

Nothing here is imported by ``import portable_creds``; modules in this package may need the
``dev`` extra (coincurve, pycryptodome) and import those lazily. Exports are resolved lazily
too, so ``python -m portable_creds.testing.signer_server`` runs cleanly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .signer_server import SignerServer

__all__ = ["SignerServer"]

_LAZY = {"SignerServer": ("signer_server", "SignerServer")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
