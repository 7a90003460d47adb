"""A backend that fails on purpose, for the CLI's outbox and error-path tests.

Installed "by path": this directory holds a ``*.dist-info`` with an entry point in
``portable_creds.drivers``, so putting it on ``PYTHONPATH`` makes the real registry find it.
``flaky:///ROOT?down=FLAG`` stores like the local driver under ROOT, but every operation
raises ``RemoteUnavailable`` while the file FLAG exists - a backend that went away and came
back. ``?crash=FLAG`` raises a plain ``RuntimeError`` instead (an unexpected failure), and
``?deny=FLAG`` refuses writes with ``AccessDenied`` (a policy that does not allow them).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

from portable_creds.driver import Driver, ObjectInfo, ObjectStore, StoredObject, StoreTarget
from portable_creds.errors import AccessDenied, RemoteUnavailable
from portable_creds.local import LocalObjectStore


class FlakyObjectStore(ObjectStore):
    def __init__(self, inner: LocalObjectStore, down: str | None, crash: str | None,
                 deny: str | None = None) -> None:
        self.inner = inner
        self.deny = deny
        self.down = down
        self.crash = crash
        self.capabilities = inner.capabilities

    @property
    def backend_id(self) -> str:
        return f"flaky:{self.inner.root}"

    def _check(self) -> None:
        if self.crash and os.path.exists(self.crash):
            raise RuntimeError("flaky test driver: crash requested (secret-free message)")
        if self.down and os.path.exists(self.down):
            raise RemoteUnavailable(
                "the flaky test backend is down; remove the flag file to bring it back"
            )

    def put(self, key: str, data: bytes, *, if_none_match: bool = False,
            if_match: str | None = None) -> str:
        self._check()
        if self.deny and os.path.exists(self.deny):
            raise AccessDenied(f"put {key}: access denied by the flaky test backend's policy")
        return self.inner.put(key, data, if_none_match=if_none_match, if_match=if_match)

    def get(self, key: str) -> StoredObject:
        self._check()
        return self.inner.get(key)

    def head(self, key: str) -> ObjectInfo:
        self._check()
        return self.inner.head(key)

    def delete(self, key: str) -> None:
        self._check()
        self.inner.delete(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        self._check()
        return self.inner.list(prefix)


class FlakyDriver(Driver):
    name = "flaky"

    def open_object_store(self, target: StoreTarget) -> ObjectStore:
        parts = urlsplit(target.url)
        params = dict(parse_qsl(parts.query))
        inner = LocalObjectStore(parts.path, wallet=target.wallet)
        return FlakyObjectStore(
            inner, params.get("down"), params.get("crash"), params.get("deny")
        )

    @classmethod
    def admin_main(cls, argv: list[str]) -> int:
        """Echo the argv it received as JSON; exit with the code given after ``--exit``."""
        sys.stdout.write(json.dumps({"driver": cls.name, "argv": argv}) + "\n")
        if "--exit" in argv:
            return int(argv[argv.index("--exit") + 1])
        return 0
