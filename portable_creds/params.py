"""Typed URL parameters for drivers: ``?duration=900&if_match=true``, checked once, at open."""

from __future__ import annotations

from collections.abc import Mapping

from .errors import ConfigurationError


def int_param(
    params: Mapping[str, str], name: str, default: int, lo: int, hi: int, *, scheme: str
) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(
            f"{scheme}:// parameter {name}={raw!r} must be an integer"
        ) from None
    if not lo <= value <= hi:
        raise ConfigurationError(f"{scheme}:// parameter {name}={value} must be within {lo}..{hi}")
    return value


def float_param(
    params: Mapping[str, str], name: str, default: float, hi: float, *, scheme: str
) -> float:
    """A positive number up to ``hi`` (timeouts)."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{scheme}:// parameter {name}={raw!r} must be a number") from None
    if not 0 < value <= hi:
        raise ConfigurationError(f"{scheme}:// parameter {name}={value} must be within (0, {hi}]")
    return value


def bool_param(params: Mapping[str, str], name: str, default: bool, *, scheme: str) -> bool:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{scheme}:// parameter {name}={raw!r} must be true or false")
