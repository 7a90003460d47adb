"""Moving secrets from the legacy backend or upstream agentKeys objects into a CredentialStore.

The rules that make it safe to run, interrupt and run again:

- a secret counts as migrated only after it was read back through the destination store
  (sealed, stored, fetched, opened) and compared byte for byte with the source;
- idempotent and resumable without a state file: before writing, the destination is opened;
  if it already holds the same bytes the item is ``already`` and nothing is written, so a rerun
  after a crash redoes only what did not finish;
- a destination holding *different* bytes is a ``conflict`` and is left alone unless
  ``overwrite`` (someone may have written a newer value there since);
- every object found under a migrated prefix gets a report line, including what cannot be
  migrated (truncated, a 0x02 blob at a 0x01 path, a superseded v1 object...); anything not
  migrated makes the report not ``ok`` (non-zero exit) and keeps that wallet's source;
- the source is deleted only with ``delete_source``, only per wallet, only when every item of
  that wallet verified, only if each source value still equals the destination's when re-read
  right before the delete (a rotation that landed after verification is kept), and (legacy)
  only if the wallet's source listing did not change meanwhile;
- an upstream v1 object converted in place (same store, same key) is first copied, sealed as it
  is, to a local 0600 backup file.
"""

from __future__ import annotations

import abc
import contextlib
import hmac
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import attrs

from . import names, upstream
from .driver import ObjectStore
from .errors import (
    ConfigurationError,
    CredentialsError,
    IntegrityError,
    InvalidName,
    NotFound,
    PortableCredsError,
)
from .legacy import LegacyClient
from .store import CredentialStore
from .transfer import (
    ALREADY,
    CONFLICT,
    FAILED,
    MIGRATE,
    SKIPPED,
    Item,
    Progress,
    Report,
    WalletResult,
    render_json,
    render_text,
)

MIGRATED = MIGRATE.done
WOULD_MIGRATE = MIGRATE.would
IGNORED = "ignored"
"""A portable-creds blob under an upstream prefix (converted in place earlier): not a source."""
OK_STATUSES = MIGRATE.ok
_DELETABLE = MIGRATE.verified

__all__ = [
    "ALREADY",
    "CONFLICT",
    "FAILED",
    "IGNORED",
    "MIGRATED",
    "OK_STATUSES",
    "SKIPPED",
    "WOULD_MIGRATE",
    "Entry",
    "Item",
    "LegacySource",
    "Progress",
    "Report",
    "Source",
    "UpstreamSource",
    "WalletResult",
    "migrate",
    "render_json",
    "render_text",
]


# -- sources ---------------------------------------------------------------------------------


@attrs.frozen
class Entry:
    service: str
    label: str
    """``legacy``, ``upstream-v1``, ``upstream-v2`` or ``upstream-worker``."""
    key: str = ""
    problem: str = ""
    """Why this object cannot be migrated (reported as-is); empty for a credential."""
    problem_status: str = FAILED


class Source(abc.ABC):
    """Where secrets come from. Implementations return plaintext only to ``migrate``."""

    description: str

    @abc.abstractmethod
    def entries(self, wallet: str) -> list[Entry]:
        """The wallet's credentials at the source, sorted by service."""

    @abc.abstractmethod
    def read(self, wallet: str, entry: Entry) -> bytes:
        """The plaintext of one entry."""

    @abc.abstractmethod
    def delete(self, wallet: str, entries: Sequence[Entry], dest: CredentialStore) -> str:
        """Remove the wallet's migrated entries; returns a human note ("" if nothing special)."""

    def prepare_overwrite(self, wallet: str, entry: Entry, dest: CredentialStore) -> bool:
        """Called when the destination holds an unreadable blob. True if it is this entry's
        own source object (in-place conversion) and may be replaced."""
        return False


class LegacySource(Source):
    def __init__(self, client: LegacyClient) -> None:
        self.client = client
        self.description = f"legacy {client.base_url}"

    def entries(self, wallet: str) -> list[Entry]:
        return [Entry(s, "legacy") for s in self.client.list(wallet)]

    def read(self, wallet: str, entry: Entry) -> bytes:
        return self.client.read(wallet, entry.service)

    def delete(self, wallet: str, entries: Sequence[Entry], dest: CredentialStore) -> str:
        # The API only has a whole-wallet teardown: refuse if anything unverified is there now.
        now = set(self.client.list(wallet))
        extra = now - {e.service for e in entries}
        if extra:
            raise _Kept(
                f"{len(extra)} credential(s) appeared at the source since the migration listed "
                "it; not tearing the wallet down - rerun migrate"
            )
        for entry in entries:  # right before the (whole-wallet) teardown
            _still_same(self, wallet, entry, dest)
        self.client.teardown(wallet)
        return "legacy wallet torn down"


class _Kept(Exception):
    """The source was deliberately not deleted; the message says why."""


class UpstreamSource(Source):
    """Upstream 0x01/0x02 objects in an object store opened administratively.

    ``worker_kek``: the static ``AGENTKEYS_WORKER_KEK_HEX`` of upstream's second 0x02 writer,
    ``agentkeys-worker-creds``. It stores at the v2 path with the service *lowercased* in the
    key but authenticates the service as the caller spelled it; ``worker_services`` names those
    spellings (``OpenRouter``) so such objects can be opened and migrated under that name.
    """

    def __init__(
        self,
        objects: ObjectStore,
        kek: upstream.UpstreamKek,
        *,
        backup_dir: Path,
        worker_kek: bytes | None = None,
        worker_services: Sequence[str] = (),
    ) -> None:
        self.objects = objects
        self.kek = kek
        self.backup_dir = backup_dir
        self.worker_kek = worker_kek
        self.worker_names = {s.lower(): s for s in worker_services if s != s.lower()}
        self.description = f"upstream {objects.backend_id}"

    def entries(self, wallet: str) -> list[Entry]:
        out = []
        for found in upstream.survey(self.objects, wallet):
            if found.problem:
                status = IGNORED if found.ignorable else FAILED
                label = "upstream" if found.version is None else f"upstream-v{found.version}"
                out.append(Entry(found.service, label, found.key, found.problem, status))
            elif found.version == upstream.V2 and found.service in self.worker_names:
                out.append(Entry(self.worker_names[found.service], "upstream-worker", found.key))
            else:
                out.append(Entry(found.service, f"upstream-v{found.version}", found.key))
        return out

    def _stored_service(self, entry: Entry) -> str:
        return entry.service.lower() if entry.label == "upstream-worker" else entry.service

    def read(self, wallet: str, entry: Entry) -> bytes:
        stored = self.objects.get_capped(entry.key, max_size=upstream.SURVEY_MAX_BYTES)
        if entry.label == "upstream-worker":
            if self.worker_kek is None:
                raise ConfigurationError(
                    f"{entry.key}: --worker-service {entry.service} needs --worker-kek-file"
                )
            return upstream.open_blob(
                stored.data,
                kek=self.worker_kek,
                wallet=wallet,
                service=entry.service,
                expect=upstream.V2,
            )
        version = upstream.V2 if entry.label == "upstream-v2" else upstream.V1
        try:
            return upstream.open_blob(
                stored.data,
                kek=self.kek(wallet, entry.service),
                wallet=wallet,
                service=entry.service,
                expect=version,
            )
        except IntegrityError:
            if version != upstream.V2:
                raise
        if self.worker_kek is not None:
            with contextlib.suppress(IntegrityError):
                return upstream.open_blob(
                    stored.data,
                    kek=self.worker_kek,
                    wallet=wallet,
                    service=entry.service,
                    expect=upstream.V2,
                )
        raise IntegrityError(_v2_unopened(entry.service, worker=self.worker_kek is not None))

    def _in_place(self, entry: Entry, dest: CredentialStore) -> bool:
        return (
            dest.objects.backend_id == self.objects.backend_id
            and dest.key_for(entry.service) == entry.key
        )

    def prepare_overwrite(self, wallet: str, entry: Entry, dest: CredentialStore) -> bool:
        if not self._in_place(entry, dest):
            return False
        stored = self.objects.get(entry.key)
        if upstream.blob_version(stored.data) is None:
            return False
        target = self.backup_dir / entry.key
        _write_private(target, stored.data)
        return True

    def delete(self, wallet: str, entries: Sequence[Entry], dest: CredentialStore) -> str:
        # Not a source object, or already replaced by the converted blob: nothing to delete.
        doomed = [e for e in entries if not e.problem and not self._in_place(e, dest)]
        for entry in doomed:  # all still equal, before the first delete...
            _still_same(self, wallet, entry, dest)
        removed = 0
        for entry in doomed:  # ...and each one again right before its own delete
            try:
                _still_same(self, wallet, entry, dest)
            except _Kept as kept:
                raise _Kept(f"{kept} ({removed} object(s) deleted before this one)") from None
            self.objects.delete(entry.key)
            removed += 1
        return f"{removed} upstream object(s) deleted"


def _v2_unopened(service: str, *, worker: bool) -> str:
    """Why a 0x02 object did not open: name upstream's second writer instead of "tampered"."""
    tried = "the signer-derived KEK" + (" or the worker KEK (--worker-kek-file)" if worker else "")
    hint = (
        "if agentkeys-worker-creds wrote it for a service spelled with capitals (it lowercases "
        "the key but authenticates the original spelling), pass --worker-service NAME"
        if worker
        else "agentkeys-worker-creds writes 0x02 objects under its static "
        "AGENTKEYS_WORKER_KEK_HEX, not the signer: pass --worker-kek-file FILE to open them"
    )
    return (
        f"integrity check failed: the 0x02 object for {service!r} opens with neither "
        f"{tried}: {hint}; otherwise it "
        "was altered or sealed under another key"
    )


def _still_same(source: Source, wallet: str, entry: Entry, dest: CredentialStore) -> None:
    """Re-read source and destination now; ``_Kept`` unless they still hold equal values."""
    try:
        now = source.read(wallet, entry)
        there = dest.get(entry.service).reveal()
    except PortableCredsError as exc:
        raise _Kept(f"re-reading {entry.service!r} before deleting failed ({exc})") from None
    if not hmac.compare_digest(now, there):
        raise _Kept(
            f"{entry.service!r} changed at the source or the destination since it was "
            "verified; not deleting - rerun migrate"
        )


def _write_private(path: Path, data: bytes) -> None:
    from .paths import ensure_private_dir, write_file_atomic

    ensure_private_dir(path.parent)
    write_file_atomic(path, data, 0o600)  # a backup is whole or absent, never half-written


# -- the engine ------------------------------------------------------------------------------


def migrate(
    source: Source,
    wallets: Iterable[str],
    open_destination: Callable[[str], CredentialStore],
    *,
    dry_run: bool = False,
    overwrite: bool = False,
    delete_source: bool = False,
    progress: Progress | None = None,
) -> Report:
    """Migrate every credential of each wallet from ``source`` into its destination store."""
    progress = progress or Progress(enabled=False)
    destination_label = ""
    report = Report(source=source.description, destination="", dry_run=dry_run)
    for raw_wallet in wallets:
        wallet = names.validate_wallet(raw_wallet)
        try:
            entries = source.entries(wallet)
        except (CredentialsError, ConfigurationError):
            raise  # the same for every wallet: stop with the typed error, nothing was done
        except PortableCredsError as exc:
            report.items.append(Item(wallet, "*", "", FAILED, f"listing the source failed: {exc}"))
            report.wallets.append(WalletResult(wallet, False, "source listing failed"))
            continue
        dest = open_destination(wallet)
        destination_label = destination_label or dest.objects.backend_id
        progress.start(len(entries))
        items = []
        for entry in entries:
            item = _one(source, wallet, entry, dest, dry_run=dry_run, overwrite=overwrite)
            progress.item(item)
            items.append(item)
        report.items.extend(items)
        report.wallets.append(
            _maybe_delete(source, wallet, entries, items, dest, delete_source, dry_run, progress)
        )
    report.destination = destination_label
    return report


def _maybe_delete(
    source: Source,
    wallet: str,
    entries: list[Entry],
    items: list[Item],
    dest: CredentialStore,
    delete_source: bool,
    dry_run: bool,
    progress: Progress,
) -> WalletResult:
    if not delete_source:
        return WalletResult(wallet, False)
    if dry_run:
        return WalletResult(wallet, False, "dry run: source kept")
    if not all(i.status in _DELETABLE for i in items):
        note = "source kept: not every object of this wallet was migrated and verified"
        progress.note(f"{wallet}: {note}")
        return WalletResult(wallet, False, note)
    try:
        note = source.delete(wallet, entries, dest)
    except _Kept as kept:
        progress.note(f"{wallet}: {kept}")
        return WalletResult(wallet, False, str(kept))
    except PortableCredsError as exc:
        progress.note(f"{wallet}: deleting the source failed: {exc}")
        return WalletResult(wallet, False, f"deleting the source failed: {exc}")
    return WalletResult(wallet, True, note)


def _one(
    source: Source,
    wallet: str,
    entry: Entry,
    dest: CredentialStore,
    *,
    dry_run: bool,
    overwrite: bool,
) -> Item:
    def item(status: str, detail: str = "") -> Item:
        return Item(wallet, entry.service, entry.label, status, detail)

    if entry.problem:
        return item(entry.problem_status, entry.problem)

    try:
        names.validate_service(entry.service)
    except InvalidName:
        return item(
            SKIPPED,
            "service name not valid in portable-creds (1-64 of A-Z a-z 0-9 . _ -); "
            "rename it at the source",
        )
    try:
        plaintext = source.read(wallet, entry)
    except PortableCredsError as exc:
        return item(FAILED, f"reading the source failed: {exc}")

    replace_foreign = False
    try:
        current = dest.get(entry.service).reveal()
    except NotFound:
        current = None
    except IntegrityError:
        try:
            replace_foreign = source.prepare_overwrite(wallet, entry, dest)
        except PortableCredsError as exc:
            return item(FAILED, f"backing up the in-place source failed: {exc}")
        if not replace_foreign and not overwrite:
            return item(
                CONFLICT,
                "the destination holds a blob that does not open; use --overwrite to replace it",
            )
        current = None
    except PortableCredsError as exc:
        return item(FAILED, f"reading the destination failed: {exc}")

    if current is not None:
        if hmac.compare_digest(current, plaintext):
            return item(ALREADY)
        if not overwrite:
            return item(
                CONFLICT, "the destination holds a different value; use --overwrite to replace it"
            )
    if dry_run:
        return item(WOULD_MIGRATE, "in place" if replace_foreign else "")
    try:
        dest.put(entry.service, plaintext, allow_empty=True)  # copy what the source holds
    except PortableCredsError as exc:
        return item(FAILED, f"writing the destination failed: {exc}")
    try:
        readback = dest.get(entry.service).reveal()
    except PortableCredsError as exc:
        return item(FAILED, f"read-back verification failed: {exc}")
    if not hmac.compare_digest(readback, plaintext):
        return item(
            FAILED, "read-back verification failed: the destination returned different bytes"
        )
    return item(MIGRATED, "converted in place (original backed up)" if replace_foreign else "")
