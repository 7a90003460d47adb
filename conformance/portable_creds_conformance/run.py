"""One conformance run: the harness, two tenants, the admin view, and the cleanup guarantee.

Tests see this object as the ``pc`` fixture. It owns the run's random prefix: everything the
run writes lives below ``conformance/<random>/``, which is wiped through the admin view after
every test and once more at the end, whatever happened in between.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from portable_creds import names
from portable_creds.driver import Capabilities, ObjectStore
from portable_creds.store import CredentialStore

from .groups import apply_overrides, check_overrides
from .harness import Harness, HarnessContext


def random_wallet() -> str:
    return "0x" + secrets.token_hex(20)


class ConformanceRun:
    """State shared by the tests of one run. Build with ``start``; always ``close``."""

    def __init__(self, harness_cls: type[Harness], target: str, config: Mapping[str, Any]) -> None:
        self.harness_cls = harness_cls
        self.workdir = Path(tempfile.mkdtemp(prefix="pc-conformance-"))  # 0700
        self.context = HarnessContext(
            target=target, config=dict(config), workdir=self.workdir, run_id=secrets.token_hex(6)
        )
        self.harness = harness_cls(self.context)
        self.wallet_a = random_wallet()
        self.wallet_b = random_wallet()
        self._a: CredentialStore | None = None
        self._b: CredentialStore | None = None
        self._admin: ObjectStore | None = None
        self.declared: Capabilities | None = None
        self.setup_error: str | None = None
        self._started = False

    # -- identity of the run -------------------------------------------------------------------

    @property
    def driver(self) -> str:
        return self.harness_cls.driver

    @property
    def target(self) -> str:
        return self.context.target

    @property
    def run_root(self) -> str:
        return self.context.run_root

    @property
    def prefix(self) -> str:
        return self.context.prefix

    @property
    def overrides(self) -> Mapping[str, str]:
        return self.harness.overrides

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._started = True
        try:
            check_overrides(self.harness.overrides)
            self.harness.setup()
            self._admin = self.harness.admin_view()
            self._a = self.harness.open_store(self.wallet_a, prefix=self.prefix)
            self._b = self.harness.open_store(self.wallet_b, prefix=self.prefix)
            self.declared = self.harness.capabilities(self._a)
        except BaseException as exc:
            self.setup_error = f"{type(exc).__name__}: {exc}"
            raise

    def close(self) -> None:
        """Wipe the run's prefix, close everything, let the harness clean up. Never raises
        before every step has been attempted; re-raises the first failure afterwards."""
        errors: list[BaseException] = []
        if self._admin is not None:
            try:
                self.wipe()
            except Exception as exc:
                errors.append(exc)
        for store in (self._a, self._b):
            if store is not None:
                with contextlib.suppress(Exception):
                    store.close()
        if self._admin is not None:
            with contextlib.suppress(Exception):
                self._admin.close()
        if self._started:
            try:
                self.harness.cleanup()
            except Exception as exc:
                errors.append(exc)
        shutil.rmtree(self.workdir, ignore_errors=True)
        if errors:
            raise errors[0]

    # -- what tests use --------------------------------------------------------------------------

    @property
    def a(self) -> CredentialStore:
        """Tenant A's store."""
        assert self._a is not None, "run not started"
        return self._a

    @property
    def b(self) -> CredentialStore:
        """Tenant B's store."""
        assert self._b is not None, "run not started"
        return self._b

    @property
    def admin(self) -> ObjectStore:
        """The unscoped view of the raw bucket."""
        assert self._admin is not None, "run not started"
        return self._admin

    @property
    def capabilities(self) -> Capabilities:
        """Declared capabilities with the harness's overrides applied."""
        assert self.declared is not None, "run not started"
        return apply_overrides(self.declared, self.harness.overrides)

    def open_store(self, wallet: str) -> CredentialStore:
        """Another handle on a tenant's store (same run prefix)."""
        return self.harness.open_store(wallet, prefix=self.prefix)

    def credentials_prefix(self, store: CredentialStore) -> str:
        return names.credentials_prefix(store.wallet, store.prefix)

    def max_payload(self, store: CredentialStore) -> int:
        """The largest secret the store accepts on this backend."""
        from portable_creds import envelope

        limit = store.max_payload
        max_object = self.capabilities.max_object_size
        if max_object is not None:
            overhead = envelope.FIXED_OVERHEAD + envelope.KEK_ID_MAX
            limit = min(limit, max_object - overhead)
        return limit

    def run_keys(self) -> list[str]:
        """Every object key below the run root, through the admin view."""
        return [info.key for info in self.admin.list(self.run_root + "/")]

    def wipe(self) -> None:
        """Delete every object below the run root (admin view, a few threads)."""
        self.delete_keys(self.run_keys())

    def delete_keys(self, keys: Iterable[str]) -> None:
        todo = list(keys)
        if not todo:
            return
        with ThreadPoolExecutor(max_workers=min(8, len(todo))) as pool:
            list(pool.map(self.admin.delete, todo))
