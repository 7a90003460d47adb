"""The conformance harness: a fresh database file per run. That is all a driver needs."""

from __future__ import annotations

from portable_creds_conformance import Harness


class SqliteHarness(Harness):
    driver = "sqlite"

    def url(self) -> str:
        return f"sqlite://{self.workdir / 'objects.db'}"
