"""An in-memory ObjectStore for testing CredentialStore logic, with failure injection.

This is a test double for our own ``ObjectStore`` interface (not for any SDK): the store logic
above it is what is under test here. Drivers are tested against real endpoints elsewhere.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator

from portable_creds.driver import Capabilities, ObjectInfo, ObjectStore, StoredObject
from portable_creds.errors import (
    NotFound,
    PortableCredsError,
    PreconditionFailed,
    RemoteUnavailable,
)


class MemoryStore(ObjectStore):
    capabilities = Capabilities(create_only=True, if_match=True)

    def __init__(self, name: str = "mem") -> None:
        self.name = name
        self.objects: dict[str, bytes] = {}
        self.fail_puts = 0
        self.failure: PortableCredsError = RemoteUnavailable("injected failure: endpoint down")
        self.put_calls = 0
        self._lock = threading.Lock()

    @property
    def backend_id(self) -> str:
        return f"memory:{self.name}"

    def put(
        self, key: str, data: bytes, *, if_none_match: bool = False, if_match: str | None = None
    ) -> str:
        with self._lock:
            self.put_calls += 1
            if self.fail_puts:
                self.fail_puts -= 1
                raise self.failure
            if if_none_match and key in self.objects:
                raise PreconditionFailed("exists")
            if if_match is not None and (
                key not in self.objects or _etag(self.objects[key]) != if_match
            ):
                raise PreconditionFailed("changed")
            self.objects[key] = bytes(data)
            return _etag(data)

    def get(self, key: str) -> StoredObject:
        with self._lock:
            if key not in self.objects:
                raise NotFound(f"no object {key}")
            data = self.objects[key]
            return StoredObject(data, _etag(data))

    def head(self, key: str) -> ObjectInfo:
        obj = self.get(key)
        return ObjectInfo(key, len(obj.data), obj.etag)

    def delete(self, key: str) -> None:
        with self._lock:
            self.objects.pop(key, None)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        with self._lock:
            items = sorted((k, v) for k, v in self.objects.items() if k.startswith(prefix))
        for k, v in items:
            yield ObjectInfo(k, len(v), _etag(v))


def _etag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]
