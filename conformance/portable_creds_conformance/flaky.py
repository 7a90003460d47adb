"""FlakyStore: an ObjectStore wrapper that fails puts on purpose.

The outbox group needs a remote write to fail at a precise moment, against the real driver
underneath: this wrapper forwards everything to the wrapped store and turns the next N puts
into a typed failure, either before anything reaches the backend or after the write landed (a
lost response, the case where a retry must be harmless).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from portable_creds.driver import Capabilities, ObjectInfo, ObjectStore, StoredObject
from portable_creds.errors import PortableCredsError, RemoteUnavailable


def _default_error() -> PortableCredsError:
    return RemoteUnavailable("injected failure (conformance FlakyStore): the backend is down")


class FlakyStore(ObjectStore):
    """Fail the next ``fail_puts`` puts with ``error()``; everything else goes to ``inner``."""

    def __init__(
        self,
        inner: ObjectStore,
        *,
        fail_puts: int = 1,
        after_write: bool = False,
        error: Callable[[], PortableCredsError] = _default_error,
    ) -> None:
        self.inner = inner
        self.capabilities: Capabilities = inner.capabilities
        self.remaining = fail_puts
        self.after_write = after_write
        self.error = error
        self.failed = 0
        self._lock = threading.Lock()

    @property
    def backend_id(self) -> str:
        # The same backend: an outbox entry written through this wrapper is delivered by a
        # later flush through the real store.
        return self.inner.backend_id

    def _take_failure(self) -> bool:
        with self._lock:
            if self.remaining <= 0:
                return False
            self.remaining -= 1
            self.failed += 1
            return True

    def put(
        self, key: str, data: bytes, *, if_none_match: bool = False, if_match: str | None = None
    ) -> str:
        if not self._take_failure():
            return self.inner.put(key, data, if_none_match=if_none_match, if_match=if_match)
        if self.after_write:
            self.inner.put(key, data, if_none_match=if_none_match, if_match=if_match)
        raise self.error()

    def get(self, key: str) -> StoredObject:
        return self.inner.get(key)

    def head(self, key: str) -> ObjectInfo:
        return self.inner.head(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def close(self) -> None:
        self.inner.close()
