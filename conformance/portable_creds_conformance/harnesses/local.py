"""The harness for the built-in ``local`` driver: a fresh directory per run.

The local driver enforces tenant scoping in its storage layer (a handle opened for one wallet
cannot reach keys below another wallet's segment), so it declares ``server_side_isolation`` and
the isolation-storage group runs against it.
"""

from __future__ import annotations

from typing import ClassVar

from ..harness import Harness


class LocalHarness(Harness):
    driver = "local"
    targets: ClassVar[tuple[str, ...]] = ("tmpdir",)

    def url(self) -> str:
        return f"local://{self.workdir / 'objects'}"
