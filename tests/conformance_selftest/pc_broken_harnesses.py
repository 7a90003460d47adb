"""Deliberately broken drivers, each with one realistic bug, to prove the suite has teeth.

Each harness reuses the local driver and breaks exactly one thing; the self-tests run the
suite against it in a subprocess and assert that the corresponding group FAILS while a control
group still passes (so the failure is about the bug, not a generally broken setup).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import ClassVar

from portable_creds_conformance.harnesses.local import LocalHarness

from portable_creds import envelope, names
from portable_creds.driver import ObjectInfo, ObjectStore, StoredObject
from portable_creds.keys import KeySource
from portable_creds.local import LocalObjectStore
from portable_creds.outbox import Outbox
from portable_creds.store import CredentialStore, Secret


class _Wrapper(ObjectStore):
    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.capabilities = inner.capabilities

    @property
    def backend_id(self) -> str:
        return self.inner.backend_id

    def put(self, key: str, data: bytes, *, if_none_match: bool = False,
            if_match: str | None = None) -> str:
        return self.inner.put(key, data, if_none_match=if_none_match, if_match=if_match)

    def get(self, key: str) -> StoredObject:
        return self.inner.get(key)

    def head(self, key: str) -> ObjectInfo:
        return self.inner.head(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)


class _WrappingHarness(LocalHarness):
    """Wraps every tenant store's objects; the admin view stays honest."""

    def wrap(self, objects: ObjectStore) -> ObjectStore:
        raise NotImplementedError

    def open_store(self, wallet: str, *, prefix: str) -> CredentialStore:
        store = super().open_store(wallet, prefix=prefix)
        return self.rebuild(store, objects=self.wrap(store.objects))


# -- 1. ignores the tenant prefix --------------------------------------------------------------


class IgnoresTenantPrefix(LocalHarness):
    """Every tenant gets an unscoped store, which still claims server-side isolation."""

    def open_store(self, wallet: str, *, prefix: str) -> CredentialStore:
        store = super().open_store(wallet, prefix=prefix)
        unscoped = LocalObjectStore(self.workdir / "objects", wallet=None)
        return self.rebuild(store, objects=unscoped)


# -- 2. does not bind the path into the AAD -----------------------------------------------------

_UNBOUND = envelope.Context(wallet="", service="", storage_key="")


class UnboundStore(CredentialStore):
    """Seals and opens with an empty context: the blob is not bound to where it lives."""

    def seal(self, service: str, secret: bytes | str, *, allow_empty: bool = False) -> bytes:
        service = names.validate_service(service)
        data = secret.encode() if isinstance(secret, str) else bytes(secret)
        kek = self.keys.current_kek(self.wallet, service)
        return envelope.seal(data, kek=kek, context=_UNBOUND, max_payload=self.max_payload)

    def get(self, service: str) -> Secret:
        service = names.validate_service(service)
        stored = self.objects.get(self.key_for(service))
        plaintext = envelope.open_blob(
            stored.data,
            context=_UNBOUND,
            resolve_kek=lambda kek_id: self.keys.kek_for_id(self.wallet, service, kek_id),
            max_payload=self.max_payload,
        )
        return Secret(plaintext)


class NoPathBinding(LocalHarness):
    def open_store(self, wallet: str, *, prefix: str) -> CredentialStore:
        return self.rebuild(super().open_store(wallet, prefix=prefix))

    def rebuild(
        self,
        store: CredentialStore,
        *,
        objects: ObjectStore | None = None,
        keys: KeySource | None = None,
        wallet: str | None = None,
        outbox: Outbox | None = None,
        max_payload: int | None = None,
    ) -> CredentialStore:
        return UnboundStore(
            objects or store.objects,
            keys or store.keys,
            wallet or store.wallet,
            prefix=store.prefix,
            max_payload=max_payload or store.max_payload,
            outbox=outbox or store.outbox,
        )


# -- 3. drops pages when listing ----------------------------------------------------------------


class _FirstPageOnly(_Wrapper):
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return itertools.islice(self.inner.list(prefix), 1000)


class DropsPages(_WrappingHarness):
    def wrap(self, objects: ObjectStore) -> ObjectStore:
        return _FirstPageOnly(objects)


# -- 4. declares conditional writes but ignores the conditions -----------------------------------


class _Unconditional(_Wrapper):
    def put(self, key: str, data: bytes, *, if_none_match: bool = False,
            if_match: str | None = None) -> str:
        return self.inner.put(key, data)


class IgnoresConditions(_WrappingHarness):
    def wrap(self, objects: ObjectStore) -> ObjectStore:
        return _Unconditional(objects)


# -- 5. caches reads, so tampering (and other writers) go unseen ---------------------------------


class _CachingReads(_Wrapper):
    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.cache: dict[str, StoredObject] = {}

    def put(self, key: str, data: bytes, *, if_none_match: bool = False,
            if_match: str | None = None) -> str:
        etag = self.inner.put(key, data, if_none_match=if_none_match, if_match=if_match)
        self.cache[key] = StoredObject(bytes(data), etag)
        return etag

    def get(self, key: str) -> StoredObject:
        if key not in self.cache:
            self.cache[key] = self.inner.get(key)
        return self.cache[key]

    def delete(self, key: str) -> None:
        self.cache.pop(key, None)
        self.inner.delete(key)


class CachesReads(_WrappingHarness):
    def wrap(self, objects: ObjectStore) -> ObjectStore:
        return _CachingReads(objects)


# -- harness configuration used by the self-tests -----------------------------------------------


class WithdrawsIfMatch(LocalHarness):
    """Honest local driver; the harness withdraws if_match with a label."""

    overrides: ClassVar[dict[str, str]] = {"if_match": "pretend: backend X has no if-match"}


class BadOverride(LocalHarness):
    overrides: ClassVar[dict[str, str]] = {"no_such_capability": "typo"}


class FailsSetup(LocalHarness):
    def setup(self) -> None:
        raise RuntimeError("the test server did not start")

    def cleanup(self) -> None:
        mark = self.config.get("cleanup_mark")
        if isinstance(mark, str):
            with open(mark, "w") as fh:
                fh.write("cleaned up")


class DropsPagesInRoot(DropsPages):
    """DropsPages over a directory the test chooses (``root`` in --pc-config), so the test
    can look at what is left after a failing run."""

    def url(self) -> str:
        return f"local://{self.config['root']}"
