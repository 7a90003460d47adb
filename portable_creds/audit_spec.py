"""The grammar of an audit sink spec (``file:PATH``, ``stderr``, ``logging[:NAME]``, ``none``).

On its own, with no imports of ours but the errors, so the config layer can check an ``audit``
value without importing the sinks: ``audit`` reads its spec through ``config``, and ``config``
importing ``audit`` back would make the two a cycle.
"""

from __future__ import annotations

from typing import Literal

from .errors import ConfigurationError

SinkKind = Literal["none", "stderr", "logging", "file"]


def parse_sink_spec(spec: str) -> tuple[SinkKind, str]:
    """``(kind, argument)``: the logger name for ``logging``, the path for ``file``, else ``""``.

    Raises ``ConfigurationError`` for anything else (a typo must not silently log nowhere).
    """
    spec = spec.strip()
    if spec in ("", "none", "off"):
        return "none", ""
    if spec == "stderr":
        return "stderr", ""
    if spec == "logging" or spec.startswith("logging:"):
        return "logging", spec.partition(":")[2]
    path = spec[5:] if spec.startswith("file:") else spec
    if path.startswith(("/", "~", ".")):
        return "file", path
    raise ConfigurationError(
        f"unknown audit sink {path!r}; use file:/path/audit.jsonl, stderr, logging[:NAME] or none"
    )
