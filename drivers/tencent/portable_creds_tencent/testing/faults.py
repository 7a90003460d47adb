"""Fault injection for reliability tests: forced 5xx, added latency, dropped connections,
bodies cut short."""

from __future__ import annotations

import threading
from typing import Literal

import attrs

Target = Literal["cos", "api", "any"]
Kind = Literal["status", "delay", "drop", "drop-after", "cut-body"]


@attrs.define
class FaultRule:
    kind: Kind
    target: Target
    remaining: int
    status: int = 503
    code: str = "ServiceUnavailable"
    seconds: float = 0.0
    body: Literal["xml", "empty"] = "xml"


class Faults:
    """Rules are consumed first-in first-out, one per matching request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self.injected = 0

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 503,
        code: str = "ServiceUnavailable",
        target: Target = "cos",
        body: Literal["xml", "empty"] = "xml",
    ) -> None:
        """The next ``n`` matching requests get ``status`` (error XML or an empty body)."""
        self._add(FaultRule("status", target, n, status=status, code=code, body=body))

    def delay_next(self, n: int = 1, *, seconds: float, target: Target = "cos") -> None:
        self._add(FaultRule("delay", target, n, seconds=seconds))

    def drop_next(self, n: int = 1, *, target: Target = "cos", after: bool = False) -> None:
        """Close the connection without answering; ``after=True`` applies the request first
        (a lost response: the write happened but the client never hears of it)."""
        self._add(FaultRule("drop-after" if after else "drop", target, n))

    def cut_body_next(self, n: int = 1, *, target: Target = "cos") -> None:
        """Apply the request, send the status line, headers (full ``Content-Length``) and half
        the body, then close: what a connection reset mid-response looks like to a client."""
        self._add(FaultRule("cut-body", target, n))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def _add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def take(self, target: Literal["cos", "api"]) -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if rule.target in (target, "any") and rule.remaining > 0:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
                    self.injected += 1
                    return rule
        return None
