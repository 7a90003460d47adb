"""portable-creds-conformance: one pytest plugin that proves a driver round-trips, isolates
tenants and detects tampering.

Driver authors implement a ``Harness`` (a few lines), register it under the entry-point group
``portable_creds_conformance.harnesses``, and run ``portable-creds conformance --driver NAME``
(or ``pytest -p portable_creds_conformance.plugin --pc-driver NAME --pyargs
portable_creds_conformance.suite``). See docs/conformance.md.
"""

from __future__ import annotations

from .flaky import FlakyStore
from .groups import GROUPS, Group
from .harness import BAD_TOKEN_KINDS, BadTokenKind, Harness, HarnessContext

#: The distribution's version; pyproject.toml reads it from here (the one place it is written).
__version__ = "0.1.0"

__all__ = [
    "BAD_TOKEN_KINDS",
    "GROUPS",
    "BadTokenKind",
    "FlakyStore",
    "Group",
    "Harness",
    "HarnessContext",
]
