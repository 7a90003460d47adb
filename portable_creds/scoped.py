"""Client-side scoping: a wrapper that refuses out-of-scope keys before they leave the process.

This is the honest fallback for backends whose identity service cannot narrow credentials
(the local driver, Tencent role-per-tenant mode). It protects against mistakes in *this*
process only: the underlying credentials still reach everything the tenant can. Callers must
opt in (``enforcement="client"``), and ``doctor`` says which enforcement is in force.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import attrs

from .driver import ObjectInfo, ObjectStore, StoredObject
from .errors import AccessDenied


@attrs.frozen
class Scope:
    """What a scoped store may do: read (and write unless ``read_only``) these services."""

    services: tuple[str, ...]
    read_only: bool
    enforcement: str
    """``"cloud"`` (the identity service narrowed the credentials) or ``"client"``."""


class ClientScopedStore(ObjectStore):
    """Refuses every key outside ``keys``, every write if read-only, and every listing."""

    def __init__(self, inner: ObjectStore, keys: Sequence[str], *, read_only: bool) -> None:
        self.inner = inner
        self.keys = frozenset(keys)
        self.read_only = read_only
        self.capabilities = attrs.evolve(inner.capabilities, scoped_credentials="client")

    @property
    def backend_id(self) -> str:
        return self.inner.backend_id

    def _check(self, key: str, *, write: bool) -> None:
        if key not in self.keys:
            raise AccessDenied(f"{key} is outside this scoped store (client-side scope)")
        if write and self.read_only:
            raise AccessDenied(f"this scoped store is read-only; cannot modify {key}")

    def put(
        self, key: str, data: bytes, *, if_none_match: bool = False, if_match: str | None = None
    ) -> str:
        self._check(key, write=True)
        return self.inner.put(key, data, if_none_match=if_none_match, if_match=if_match)

    def get(self, key: str) -> StoredObject:
        self._check(key, write=False)
        return self.inner.get(key)

    def get_capped(self, key: str, *, max_size: int) -> StoredObject:
        self._check(key, write=False)
        return self.inner.get_capped(key, max_size=max_size)

    def head(self, key: str) -> ObjectInfo:
        self._check(key, write=False)
        return self.inner.head(key)

    def delete(self, key: str) -> None:
        self._check(key, write=True)
        self.inner.delete(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        raise AccessDenied("listing is outside every scoped store; name the services instead")

    def close(self) -> None:
        self.inner.close()
