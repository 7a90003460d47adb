"""What ``migrate`` and ``copy`` share: per-item outcomes, the report, progress, rendering.

Both move credentials from somewhere into a store and promise the same things (every item
counts only once read back and verified, reruns skip what is identical, a differing value is
a conflict, the source is deleted per wallet only). One report shape means an operator (and a
script reading ``--json``) sees the same vocabulary for both; only the verb differs
("migrated" / "copied").
"""

from __future__ import annotations

import json
import sys
import threading
from typing import TextIO

import attrs

ALREADY = "already"
CONFLICT = "conflict"
FAILED = "failed"
SKIPPED = "skipped"


@attrs.frozen
class Verb:
    """The words one operation uses: ``migrate`` -> ``migrated`` / ``would-migrate``."""

    name: str
    done: str
    would: str
    harmless: tuple[str, ...] = ()
    """Operation-specific statuses that are fine and do not keep the source (migrate:
    ``ignored``, a blob that is not a source object)."""

    @property
    def statuses(self) -> tuple[str, ...]:
        return (self.done, ALREADY, self.would, CONFLICT, FAILED, SKIPPED, *self.harmless)

    @property
    def ok(self) -> frozenset[str]:
        return frozenset({self.done, ALREADY, self.would, *self.harmless})

    @property
    def verified(self) -> frozenset[str]:
        """Statuses that allow deleting the source (``would`` is a dry run: nothing verified)."""
        return frozenset({self.done, ALREADY, *self.harmless})


MIGRATE = Verb("migrate", "migrated", "would-migrate", ("ignored",))
COPY = Verb("copy", "copied", "would-copy")


@attrs.frozen
class Item:
    """The outcome for one (wallet, service). ``detail`` never contains secret material."""

    wallet: str
    service: str
    source: str
    status: str
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return attrs.asdict(self)


@attrs.frozen
class WalletResult:
    wallet: str
    source_deleted: bool
    detail: str = ""


@attrs.define
class Report:
    source: str
    destination: str
    dry_run: bool
    items: list[Item] = attrs.field(factory=list)
    wallets: list[WalletResult] = attrs.field(factory=list)
    verb: Verb = MIGRATE
    facts: dict[str, object] = attrs.field(factory=dict)
    """Operation-specific top-level facts (copy: mode, whether payloads were checked)."""

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(self.verb.statuses, 0)
        for item in self.items:
            out[item.status] = out.get(item.status, 0) + 1
        return out

    @property
    def ok(self) -> bool:
        return all(item.status in self.verb.ok for item in self.items)

    def wallet_complete(self, wallet: str) -> bool:
        return all(i.status in self.verb.ok for i in self.items if i.wallet == wallet)

    def to_dict(self) -> dict[str, object]:
        return {
            **self.facts,
            "source": self.source,
            "destination": self.destination,
            "dry_run": self.dry_run,
            "ok": self.ok,
            "counts": self.counts(),
            "items": [i.to_dict() for i in self.items],
            "wallets": [attrs.asdict(w) for w in self.wallets],
        }


class Progress:
    """A one-line bar on a terminal; one plain line per item otherwise (logs, CI, pipes).

    Thread-safe: ``copy`` reports items from its worker threads.
    """

    def __init__(
        self, stream: TextIO | None = None, *, enabled: bool = True, label: str = "migrate"
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.label = label
        self.tty = enabled and self.stream.isatty()
        self.total = 0
        self.done = 0
        self._lock = threading.Lock()

    def start(self, total: int) -> None:
        with self._lock:
            self.total += total

    def item(self, item: Item) -> None:
        with self._lock:
            self.done += 1
            if not self.enabled:
                return
            label = f"{item.wallet} {item.service}: {item.status}"
            if self.tty:
                width = 30
                filled = int(width * self.done / max(self.total, 1))
                bar = "#" * filled + "-" * (width - filled)
                self.stream.write(f"\r[{bar}] {self.done}/{self.total} {label[:60]:<60}")
                if self.done >= self.total:
                    self.stream.write("\n")
            else:
                extra = f" ({item.detail})" if item.detail else ""
                self.stream.write(f"{self.label}: [{self.done}/{self.total}] {label}{extra}\n")
            self.stream.flush()

    def note(self, text: str) -> None:
        with self._lock:
            if self.enabled:
                if self.tty:
                    self.stream.write("\n")
                self.stream.write(f"{self.label}: {text}\n")
                self.stream.flush()


def render_text(report: Report) -> str:
    """The human summary (stdout)."""
    lines = [f"source:      {report.source}", f"destination: {report.destination}"]
    for name, value in report.facts.items():
        lines.append(f"{name.replace('_', ' ') + ':':<12} {value}")
    if report.dry_run:
        lines.append("dry run: nothing was written or deleted")
    for item in report.items:
        extra = f"  ({item.detail})" if item.detail else ""
        lines.append(f"  {item.status:<14} {item.wallet} {item.service}{extra}")
    for w in report.wallets:
        if w.source_deleted or w.detail:
            lines.append(
                f"  {w.wallet}: {'source deleted' if w.source_deleted else 'source kept'}"
                + (f" - {w.detail}" if w.detail else "")
            )
    counts = report.counts()
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    lines.append(f"summary: {summary or 'nothing to ' + report.verb.name}")
    return "\n".join(lines) + "\n"


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), sort_keys=True) + "\n"
