"""``CredentialStore``: the public API, bound to one tenant (wallet).

It validates names at the edge, seals before anything leaves the process, routes remote writes
through the outbox so a failed write never loses a secret, and opens blobs only after the
envelope's integrity checks pass. The ``ObjectStore`` below it moves opaque bytes and is what
the cloud's IAM confines to the tenant's prefix.
"""

from __future__ import annotations

import builtins
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal

import attrs

from . import envelope, names
from .driver import ObjectStore
from .errors import (
    AccessDenied,
    ConfigurationError,
    CredentialsError,
    InvalidSecret,
    NotFound,
    PortableCredsError,
    PreconditionFailed,
    SecretNotDelivered,
    TransientError,
)
from .keys import KeySource, WrappingKey
from .outbox import Outbox
from .scoped import ClientScopedStore, Scope

#: Receives one structured event per operation. Never secret material.
AuditHook = Callable[[Mapping[str, object]], None]


@attrs.frozen(repr=False, eq=False)
class Secret:
    """Plaintext secret bytes. ``repr``/``str`` never show them; ``reveal()`` does."""

    _value: bytes

    def reveal(self) -> bytes:
        return self._value

    def reveal_text(self, encoding: str = "utf-8") -> str:
        return self._value.decode(encoding)

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(Secret)  # deliberately uninformative

    def __repr__(self) -> str:
        return f"Secret(<{len(self._value)} bytes>)"

    __str__ = __repr__


def not_delivered_message(service: str, cause: PortableCredsError, path: str, kept: bool) -> str:
    """What a failed put tells the user: what is wrong, and what will (not) fix it."""
    if not kept:
        return (
            f"could not store {service!r} ({cause}); meanwhile a concurrent 'outbox flush' "
            "delivered this write, or a newer write of it from this machine was stored, so "
            "nothing is kept; check with 'portable-creds get'"
        )
    where = f"the sealed secret is kept in the outbox at {path}"
    if isinstance(cause, AccessDenied):
        return (
            f"could not store {service!r}: access denied ({cause}); retrying will not help: "
            "these credentials may not write it (check the role and its policy, the wallet, "
            f"--scope/--read-only). {where}: run 'portable-creds outbox flush' once access is "
            f"fixed, or 'portable-creds outbox drop {service}' to discard it"
        )
    if isinstance(cause, CredentialsError):
        return (
            f"could not store {service!r}: the identity token or temporary credentials were "
            f"refused ({cause}); obtain a fresh token. {where}: run 'portable-creds outbox "
            "flush' after that"
        )
    if isinstance(cause, TransientError):
        return (
            f"could not store {service!r} ({cause}); {where} - run 'portable-creds outbox "
            "flush' once the backend is reachable"
        )
    return (
        f"could not store {service!r} ({cause}); {where} - fix the cause above, then run "
        "'portable-creds outbox flush'"
    )


@attrs.frozen
class RewrapReport:
    """What ``rewrap`` did, per service (failures keep their typed error)."""

    rewrapped: tuple[str, ...]
    current: tuple[str, ...]
    """Already under the current KEK (or deleted since the listing): left alone."""
    failed: tuple[tuple[str, PortableCredsError], ...]


class RewrapIncomplete(PortableCredsError):
    """``rewrap`` went through every credential, but some could not be re-wrapped.

    ``report`` has the details; the exit code is the first failure's (an unreadable blob
    exits 5 like ``get`` would, a concurrent change 10).
    """

    def __init__(self, report: RewrapReport) -> None:
        details = "; ".join(f"{service!r}: {exc}" for service, exc in report.failed)
        super().__init__(
            f"rewrap re-wrapped {len(report.rewrapped)} credential(s) but could not re-wrap "
            f"{len(report.failed)}: {details}. The others are done; fix or delete the failed "
            "ones and run rewrap again",
            request_id=report.failed[0][1].request_id,
        )
        self.exit_code = report.failed[0][1].exit_code
        self.report = report


class CredentialStore:
    """Sealed credentials of one tenant in one backend."""

    def __init__(
        self,
        objects: ObjectStore,
        keys: KeySource,
        wallet: str,
        *,
        prefix: str = names.DEFAULT_PREFIX,
        max_payload: int = envelope.DEFAULT_MAX_PAYLOAD,
        outbox: Outbox | None = None,
        audit: AuditHook | None = None,
        scope: Scope | None = None,
    ) -> None:
        self.objects = objects
        self.keys = keys
        self.wallet = names.validate_wallet(wallet)
        self.prefix = names.validate_prefix(prefix)
        self.max_payload = envelope.check_max_payload(max_payload)
        self.outbox = outbox
        self.audit = audit
        self.scope = scope
        self._credentials_prefix = names.credentials_prefix(self.wallet, self.prefix)

    def __repr__(self) -> str:
        return f"CredentialStore(backend={self.objects.backend_id!r}, wallet={self.wallet!r})"

    def __enter__(self) -> CredentialStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the backend's connections (idempotent). ``with open_store(...)`` calls it.

        Pending outbox entries stay on disk; ``flush`` delivers them from any later store.
        """
        self.objects.close()

    # -- helpers -------------------------------------------------------------------------

    def key_for(self, service: str) -> str:
        """``<prefix>/<wallet>/credentials/<service>.enc`` (the service is validated here)."""
        return self._key(names.validate_service(service))

    def _key(self, service: str) -> str:
        """``key_for`` of an already validated service name."""
        return f"{self._credentials_prefix}{service}{names.SUFFIX}"

    def _context(self, service: str) -> envelope.Context:
        return envelope.Context(self.wallet, service, self._key(service))

    def _resolver(self, service: str) -> Callable[[str], WrappingKey]:
        return lambda kek_id: self.keys.kek_for_id(self.wallet, service, kek_id)

    def _not_found(self, service: str, cause: NotFound) -> NotFound:
        """``NotFound`` in the caller's terms: a driver's message names the storage key, which
        leaks the layout (prefix, wallet directory, suffix) into logs and user messages."""
        return NotFound(
            f"no credential {service!r} for wallet {self.wallet}", request_id=cause.request_id
        )

    def _emit(
        self, operation: str, service: str | None, outcome: str, error: Exception | None = None
    ) -> None:
        if self.audit is None:
            return
        event: dict[str, object] = {
            "operation": operation,
            "wallet": self.wallet,
            "service": service,
            "backend": self.objects.backend_id,
            "outcome": outcome,
        }
        if isinstance(error, PortableCredsError):
            event["error"] = type(error).__name__
            event["request_id"] = error.request_id
        self.audit(event)

    def _audited(self, operation: str, service: str | None, fn: Callable[[], object]) -> object:
        try:
            result = fn()
        except Exception as exc:
            self._emit(operation, service, "error", exc)
            raise
        self._emit(operation, service, "ok")
        return result

    # -- operations ----------------------------------------------------------------------

    def seal(self, service: str, secret: bytes | str, *, allow_empty: bool = False) -> bytes:
        """The sealed blob ``put`` stores (also for callers that ship blobs themselves).

        An empty secret is refused (``InvalidSecret``) unless ``allow_empty``: an empty value
        is almost always an unset variable or an empty pipe, and stored it would read back as
        a valid, useless credential. The CLI refuses it the same way (``put --allow-empty``).
        """
        service = names.validate_service(service)
        data = secret.encode() if isinstance(secret, str) else bytes(secret)
        if not data and not allow_empty:
            raise InvalidSecret(
                f"empty secret for {service!r}; pass allow_empty=True to store an empty value"
            )
        kek = self.keys.current_kek(self.wallet, service)
        return envelope.seal(
            data, kek=kek, context=self._context(service), max_payload=self.max_payload
        )

    def put(self, service: str, secret: bytes | str, *, allow_empty: bool = False) -> None:
        """Seal and store. On a remote failure the sealed blob stays in the outbox.

        Raises ``SecretNotDelivered`` (carrying the typed cause) when the outbox holds it, and
        ``InvalidSecret`` for an empty secret unless ``allow_empty`` (see ``seal``).
        The journal entry is written without fsync and made durable only if the remote write
        fails (see ``portable_creds.outbox``): a successful put costs no local fsync.
        """

        def run() -> None:
            svc = names.validate_service(service)
            # Only an allowed empty secret needs the keyword, so a subclass overriding
            # seal(service, secret) keeps working for everything else.
            blob = (
                self.seal(svc, secret, allow_empty=True)
                if allow_empty and not secret
                else self.seal(svc, secret)
            )
            key = self._key(svc)
            outbox = self.outbox
            if outbox is None:
                self.objects.put(key, blob)
                return
            entry = outbox.add(
                backend_id=self.objects.backend_id, wallet=self.wallet, service=svc, key=key,
                blob=blob, durable=False,
            )
            try:
                self.objects.put(key, blob)
            except PortableCredsError as exc:
                try:
                    kept = outbox.persist(entry)
                except OSError as os_exc:
                    lost = PortableCredsError(
                        f"{exc.message}; and the sealed secret could not be made durable in "
                        f"the outbox at {entry.path} ({os_exc.strerror}): store it again once "
                        "the disk and the backend are healthy",
                        request_id=exc.request_id,
                    )
                    lost.exit_code = exc.exit_code
                    raise lost from exc
                where = str(kept or entry.path)
                raise SecretNotDelivered(
                    not_delivered_message(svc, exc, where, kept is not None),
                    cause=exc,
                    outbox_path=where,
                ) from exc
            except BaseException:
                outbox.persist(entry)  # an unexpected failure is reported too: keep it
                raise
            outbox.delivered(entry)

        self._audited("put", service, run)

    def get(self, service: str) -> Secret:
        """Read and open one credential.

        Raises ``NotFound`` if it does not exist, ``IntegrityError`` if the stored blob fails
        its checks (tampered, truncated, moved from another tenant or service, or sealed under
        a key this store's key source does not have), ``InvalidName`` for a bad service name.
        """

        def run() -> Secret:
            svc = names.validate_service(service)
            try:
                stored = self.objects.get_capped(
                    self._key(svc), max_size=envelope.max_blob_size(self.max_payload)
                )
            except NotFound as exc:
                raise self._not_found(svc, exc) from None
            plaintext = envelope.open_blob(
                stored.data,
                context=self._context(svc),
                resolve_kek=self._resolver(svc),
                max_payload=self.max_payload,
            )
            return Secret(plaintext)

        result = self._audited("get", service, run)
        assert isinstance(result, Secret)
        return result

    def get_many(self, services: Iterable[str], *, max_workers: int = 16) -> dict[str, Secret]:
        """Read several credentials concurrently (bounded thread pool); fails on the first error."""
        wanted = list(dict.fromkeys(services))
        if not wanted:
            return {}
        from concurrent.futures import ThreadPoolExecutor  # only get_many needs threads

        with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(wanted)))) as pool:
            return dict(zip(wanted, pool.map(self.get, wanted), strict=True))

    def list(self) -> list[str]:
        """Names of the tenant's stored credentials, sorted."""

        result = self._audited("list", None, self._list_services)
        assert isinstance(result, list)
        return result

    def _list_services(self) -> builtins.list[str]:
        if self.scope is not None:  # scoped credentials cannot list: probe the scope
            return sorted(s for s in self.scope.services if self.exists(s))
        found = set()
        for info in self.objects.list(self._credentials_prefix):
            service = names.service_from_key(info.key, self.wallet, self.prefix)
            if service is not None:
                found.add(service)
        return sorted(found)

    def exists(self, service: str) -> bool:
        """Whether the credential is stored. Not audited and does not open the blob.

        Cheaper than ``get`` (one metadata request). Failures other than absence
        (``AccessDenied``, ``RemoteUnavailable``, ``InvalidName``...) raise rather than read as
        "no": a caller deciding whether to write must not mistake an outage for absence.
        """
        try:
            self.objects.head(self.key_for(service))
        except NotFound:
            return False
        return True

    def delete(self, service: str) -> None:
        """Delete one credential; ``NotFound`` if it does not exist (nor waits in the outbox).

        Pending outbox writes of it are discarded first, so no later flush resurrects it.
        """

        def run() -> None:
            key = self.key_for(service)
            backend = self.objects.backend_id
            dropped, seq = 0, 0
            if self.outbox is not None:
                dropped, seq = self.outbox.forget(backend_id=backend, key=key)
            try:
                self.objects.head(key)
            except NotFound as exc:
                if not dropped:
                    raise self._not_found(service, exc) from None
            else:
                self.objects.delete(key)
            if self.outbox is not None:
                self.outbox.deleted(backend_id=backend, key=key, seq=seq)

        self._audited("delete", service, run)

    def teardown(self) -> int:
        """Delete every credential of this tenant (nothing else). Returns how many.

        Every pending outbox write of the tenant (in this backend) is discarded too.
        """

        def run() -> int:
            backend = self.objects.backend_id
            if self.outbox is not None:
                self.outbox.discard_prefix(backend_id=backend, prefix=self._credentials_prefix)
            services = self._list_services()
            for service in services:
                key = self.key_for(service)
                seq = 0
                if self.outbox is not None:
                    _, seq = self.outbox.forget(backend_id=backend, key=key)
                self.objects.delete(key)
                if self.outbox is not None:
                    self.outbox.deleted(backend_id=backend, key=key, seq=seq)
            return len(services)

        result = self._audited("teardown", None, run)
        assert isinstance(result, int)
        return result

    def rewrap(self) -> int:
        """Re-wrap every credential's DEK under the current KEK; payloads are not re-encrypted.

        Returns how many blobs changed. Every credential is attempted even if some fail; then
        ``RewrapIncomplete`` names each failed service (``rewrap_report`` returns the same
        without raising). A concurrent write is never overwritten: see ``rewrap_report``.
        """
        report = self.rewrap_report()
        if report.failed:
            raise RewrapIncomplete(report)
        return len(report.rewrapped)

    def rewrap_report(self) -> RewrapReport:
        """``rewrap``, reporting per service instead of raising for one that failed.

        Where the backend has if-match the write is conditional on the ETag read. Where it
        has not (the legacy backend; COS unless ``if_match=true``) the blob is read again right
        before the write and the write is skipped if it changed, so an update that landed
        since the first read is kept; the remaining window is the one request between that
        re-read and the write (docs/threat-model.md, "Rotation"). A credential deleted meanwhile
        is never written back.
        """
        rewrapped: builtins.list[str] = []
        current: builtins.list[str] = []
        failed: builtins.list[tuple[str, PortableCredsError]] = []
        try:
            for service in self._list_services():
                try:
                    outcome = self._rewrap_one(service)
                except PortableCredsError as exc:
                    failed.append((service, exc))  # typed: report it, go on with the rest
                    continue
                (rewrapped if outcome else current).append(service)
        except Exception as exc:  # listing failed, or something unexpected: stop, audited
            self._emit("rewrap", None, "error", exc)
            raise
        report = RewrapReport(tuple(rewrapped), tuple(current), tuple(failed))
        self._emit("rewrap", None, "error" if failed else "ok", failed[0][1] if failed else None)
        return report

    def _rewrap_one(self, service: str) -> bool:
        """True if re-wrapped, False if already current or gone; raises what went wrong."""
        key = self.key_for(service)
        cap = envelope.max_blob_size(self.max_payload)  # bounded reads, as in get
        try:
            stored = self.objects.get_capped(key, max_size=cap)
        except NotFound:
            return False  # deleted since the listing: nothing to rotate
        kek = self.keys.current_kek(self.wallet, service)
        if envelope.parse_header(stored.data).kek_id == kek.kek_id:
            return False
        blob = envelope.rewrap(
            stored.data,
            context=self._context(service),
            resolve_kek=self._resolver(service),
            new_kek=kek,
        )
        if self.objects.capabilities.if_match:
            self.objects.put(key, blob, if_match=stored.etag)
            return True
        try:
            latest = self.objects.get_capped(key, max_size=cap)
        except NotFound:
            return False  # deleted meanwhile: writing would bring it back
        if not hmac.compare_digest(latest.data, stored.data):
            raise PreconditionFailed(
                f"{service!r} was written by someone else while it was being re-wrapped; it "
                "was left as they wrote it - run rewrap again"
            )
        self.objects.put(key, blob)
        return True

    def flush(self, *, force: bool = False) -> int:
        """Deliver this tenant's pending outbox writes; returns how many were delivered.

        Each write is conditional on the remote still holding what this machine last wrote
        there (see ``Outbox.flush``); ``force=True`` overwrites whatever is there. Raises the
        first delivery error after trying every entry, so nothing is skipped.
        """
        if self.outbox is None:
            return 0
        outbox = self.outbox

        def run() -> int:
            result = outbox.flush(self.objects, wallet=self.wallet, force=force)
            if result.failed:
                raise result.failed[0][1]
            return result.delivered

        delivered = self._audited("flush", None, run)
        assert isinstance(delivered, int)
        return delivered

    def scoped(
        self,
        services: Sequence[str],
        *,
        read_only: bool = True,
        enforcement: Literal["cloud", "client"] = "cloud",
    ) -> CredentialStore:
        """A store limited to ``services`` (reads only, by default).

        ``enforcement="cloud"`` asks the identity service for credentials that only allow those
        objects, so the limit holds even for a bare SDK holding them; backends that cannot do
        that raise ``ConfigurationError``. ``enforcement="client"`` is an explicit opt-in to a
        limit enforced by this process only.
        """
        wanted = tuple(dict.fromkeys(names.validate_service(s) for s in services))
        if not wanted:
            raise ConfigurationError("a scoped store needs at least one service")
        keys = [self.key_for(s) for s in wanted]
        if enforcement == "cloud":
            objects = self.objects.scoped(keys, read_only=read_only)
        elif enforcement == "client":
            objects = ClientScopedStore(self.objects, keys, read_only=read_only)
        else:
            raise ConfigurationError(
                f"unknown enforcement {enforcement!r}: use 'cloud' or 'client'"
            )
        return CredentialStore(
            objects,
            self.keys,
            self.wallet,
            prefix=self.prefix,
            max_payload=self.max_payload,
            outbox=None if read_only else self.outbox,
            audit=self.audit,
            scope=Scope(wanted, read_only, enforcement),
        )
