"""The conformance harness: a fresh database file per run. That is all a driver needs."""

from __future__ import annotations

try:
    from portable_creds_conformance import Harness
except ImportError as exc:  # an optional dependency: say which extra brings it
    raise ImportError(
        "portable_creds_sqlite.conformance needs the conformance suite: "
        "pip install 'portable-creds-sqlite[conformance]'"
    ) from exc


class SqliteHarness(Harness):
    driver = "sqlite"

    def url(self) -> str:
        return f"sqlite://{self.workdir / 'objects.db'}"
