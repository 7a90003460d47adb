"""Copying sealed credentials between backends: verified, resumable, without needing the KEKs.

Two modes, chosen from the two sides (``choose_mode``) and shown in the report:

- **verbatim** - same prefix (so the same storage keys, hence the same envelope context) and the
  destination's readers use the source's key source. The sealed bytes are copied as they are
  and verified by byte equality and header parse after reading them back. No KEK is derived and
  no plaintext exists here unless the caller hands over the readers' keys (``source.keys``):
  then each source blob is also opened, so a tampered blob is caught, and the plaintext is
  dropped at once. Without keys the report says payload integrity was not checked.
- **re-seal** - the prefix changes, or the destination has its own keys (a new root secret, a
  signer instead of a root secret, the recovery after a leaked root secret). Each blob is
  opened with the source keys, sealed with the destination keys for its new location, and
  verified by opening what the destination returns.

The rules are ``migrate``'s (see ``portable_creds.migrate``): an item counts only after the
read-back; a rerun finds identical values and writes nothing (no state file: resuming a killed
run is running it again); a differing destination value is a ``conflict`` unless ``overwrite``;
the source is deleted per wallet, only when every item of it verified, and only after the
source and destination were re-read right before the delete and still match what was verified.

Both stores are administrative views (``open_object_store(url, wallet=None)``): copying a
fleet is an operator's job, and tenants' federated identities may not list or write elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import attrs

from . import envelope, names
from .driver import ObjectStore, StoredObject
from .errors import (
    ConfigurationError,
    CredentialsError,
    IntegrityError,
    NotFound,
    PortableCredsError,
    PreconditionFailed,
)
from .keys import KeySource
from .transfer import (
    ALREADY,
    CONFLICT,
    COPY,
    FAILED,
    SKIPPED,
    Item,
    Progress,
    Report,
    WalletResult,
)

VERBATIM = "verbatim"
RESEAL = "re-seal"
VERIFY_LISTING = "listing"
VERIFY_READ = "read"
_WRITTEN = "written"
"""Internal status: stored, waiting for the wallet's verification listing (never reported)."""
DEFAULT_WORKERS = 8
COPIED = COPY.done
WOULD_COPY = COPY.would


@attrs.frozen
class Endpoint:
    """One side of a copy: an (administrative) object store, its layout prefix, its keys.

    ``keys`` on the source: the key source the stored blobs open with (optional in verbatim
    mode, where it only adds payload checks). ``keys`` on the destination: the key source the
    destination's readers will use, when it differs from the source's (forces re-seal).
    """

    objects: ObjectStore
    prefix: str = names.DEFAULT_PREFIX
    keys: KeySource | None = None

    def key(self, wallet: str, service: str) -> str:
        return names.object_key(wallet, service, self.prefix)


def choose_mode(source: Endpoint, destination: Endpoint) -> str:
    """``verbatim`` when the blob's context and keys stay the same, else ``re-seal``."""
    if names.validate_prefix(source.prefix) != names.validate_prefix(destination.prefix):
        return RESEAL
    if destination.keys is not None and destination.keys is not source.keys:
        return RESEAL
    return VERBATIM


@attrs.frozen
class _Entry:
    wallet: str
    service: str
    at_destination: bool | None = None
    """Whether the destination listing showed the key (``None``: not known, read it).

    ``False`` saves the per-item read before writing: the write is then create-only where the
    store can do that, so an object that appeared since the listing is never overwritten (the
    item is retried with a read instead)."""


class _Retry(Exception):
    """A create-only write found the key taken: redo the item, reading the destination."""


@attrs.frozen
class _Written:
    """A verbatim write waiting for the destination listing that verifies it."""

    key: str
    size: int
    md5: str
    sha256: str


def _etag_matches(etag: str, written: _Written) -> bool:
    """An ETag that is the MD5 (S3, RGW, COS simple uploads) or SHA-256 (local) of the bytes."""
    tag = etag.strip('"').lower()
    return hmac.compare_digest(tag, written.md5) or hmac.compare_digest(tag, written.sha256)


@attrs.frozen
class _Verified:
    """What a verified item looked like, for the re-check right before deleting the source."""

    source_digest: bytes
    dest_digest: bytes
    in_place: bool


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class _Copier:
    """The per-item work, shared by the worker threads (it holds no per-item state)."""

    def __init__(
        self,
        source: Endpoint,
        destination: Endpoint,
        *,
        mode: str,
        open_payloads: bool,
        dry_run: bool,
        overwrite: bool,
        max_payload: int,
        verify: str = VERIFY_READ,
    ) -> None:
        self.verify = verify
        self.written: dict[tuple[str, str], _Written] = {}
        self.source = source
        self.destination = destination
        self.mode = mode
        self.open_payloads = open_payloads
        self.dry_run = dry_run
        self.overwrite = overwrite
        self.max_payload = max_payload
        self.source_keys = source.keys
        self.dest_keys = destination.keys or source.keys
        self.same_backend = source.objects.backend_id == destination.objects.backend_id
        self.verified: dict[tuple[str, str], _Verified] = {}

    # -- envelope helpers (the only places plaintext exists) -------------------------------

    def _open(self, keys: KeySource, blob: bytes, wallet: str, service: str, key: str) -> bytes:
        return envelope.open_blob(
            blob,
            context=envelope.Context(wallet, service, key),
            resolve_kek=lambda kek_id: keys.kek_for_id(wallet, service, kek_id),
            max_payload=self.max_payload,
        )

    # -- one item -----------------------------------------------------------------------------

    def run(self, entry: _Entry) -> Item:
        try:
            try:
                return self._verbatim(entry) if self.mode == VERBATIM else self._reseal(entry)
            except _Retry:
                entry = attrs.evolve(entry, at_destination=None)
                return self._verbatim(entry) if self.mode == VERBATIM else self._reseal(entry)
        except (CredentialsError, ConfigurationError) as exc:
            return self._item(entry, FAILED, str(exc))

    def _item(self, entry: _Entry, status: str, detail: str = "") -> Item:
        return Item(entry.wallet, entry.service, self.mode, status, detail)

    def _read_dest(self, key: str, entry: _Entry) -> StoredObject | None:
        if entry.at_destination is False:
            return None
        try:
            return self.destination.objects.get(key)
        except NotFound:
            return None

    def _write(self, key: str, blob: bytes, current: StoredObject | None) -> None:
        """Create-only where the store can (a concurrent writer wins, we report a conflict);
        compare-and-swap when replacing where it can."""
        caps = self.destination.objects.capabilities
        if current is None and caps.create_only:
            self.destination.objects.put(key, blob, if_none_match=True)
        elif current is not None and caps.if_match:
            self.destination.objects.put(key, blob, if_match=current.etag)
        else:
            self.destination.objects.put(key, blob)

    def _verbatim(self, entry: _Entry) -> Item:
        wallet, service = entry.wallet, entry.service
        key = self.source.key(wallet, service)
        try:
            blob = self.source.objects.get(key).data
        except PortableCredsError as exc:
            return self._item(entry, FAILED, f"reading the source failed: {exc}")
        try:
            envelope.parse_header(blob)
        except (IntegrityError, ValueError):
            return self._item(entry, FAILED, "the source object is not a sealed credential")
        if self.open_payloads and self.source_keys is not None:
            try:
                self._open(self.source_keys, blob, wallet, service, key)
            except PortableCredsError:
                return self._item(
                    entry,
                    FAILED,
                    "the source blob does not open with the readers' keys (tampered, or "
                    "sealed under other keys); not copied",
                )
        try:
            current = self._read_dest(key, entry)
        except PortableCredsError as exc:
            return self._item(entry, FAILED, f"reading the destination failed: {exc}")
        if current is not None:
            if hmac.compare_digest(current.data, blob):
                self.verified[(wallet, service)] = _Verified(_digest(blob), _digest(blob), False)
                return self._item(entry, ALREADY)
            if not self.overwrite:
                return self._item(
                    entry,
                    CONFLICT,
                    "the destination holds a different blob; use --overwrite to replace it",
                )
        if self.dry_run:
            return self._item(entry, WOULD_COPY)
        return self._store_and_verify(entry, key, blob, current, expect=blob)

    def _store_and_verify(
        self,
        entry: _Entry,
        key: str,
        blob: bytes,
        current: StoredObject | None,
        *,
        expect: bytes,
        source_blob: bytes | None = None,
        plaintext: bytes | None = None,
        in_place: bool = False,
    ) -> Item:
        try:
            self._write(key, blob, current)
        except PreconditionFailed:
            if entry.at_destination is False:
                raise _Retry from None
            return self._item(
                entry, CONFLICT, "the destination changed while copying; rerun to compare again"
            )
        except PortableCredsError as exc:
            return self._item(entry, FAILED, f"writing the destination failed: {exc}")
        if self.verify == VERIFY_LISTING and plaintext is None:
            md5 = hashlib.md5(blob, usedforsecurity=False).hexdigest()
            sha = hashlib.sha256(blob).hexdigest()
            self.written[(entry.wallet, entry.service)] = _Written(key, len(blob), md5, sha)
            return self._item(entry, _WRITTEN)
        try:
            readback = self.destination.objects.get(key).data
        except PortableCredsError as exc:
            return self._item(entry, FAILED, f"read-back verification failed: {exc}")
        if not hmac.compare_digest(readback, expect):
            return self._item(
                entry, FAILED, "read-back verification failed: the destination returned other bytes"
            )
        try:
            envelope.parse_header(readback)
            if plaintext is not None:
                assert self.dest_keys is not None
                opened = self._open(self.dest_keys, readback, entry.wallet, entry.service, key)
                if not hmac.compare_digest(opened, plaintext):
                    raise IntegrityError("different plaintext")
        except (PortableCredsError, ValueError):
            return self._item(
                entry, FAILED, "read-back verification failed: the stored blob does not open"
            )
        src = source_blob if source_blob is not None else blob
        self.verified[(entry.wallet, entry.service)] = _Verified(
            _digest(src), _digest(readback), in_place
        )
        return self._item(entry, COPIED, "re-sealed in place" if in_place else "")

    def _reseal(self, entry: _Entry) -> Item:
        wallet, service = entry.wallet, entry.service
        src_key = self.source.key(wallet, service)
        dst_key = self.destination.key(wallet, service)
        assert self.source_keys is not None and self.dest_keys is not None
        try:
            source_blob = self.source.objects.get(src_key).data
        except PortableCredsError as exc:
            return self._item(entry, FAILED, f"reading the source failed: {exc}")
        in_place = self.same_backend and src_key == dst_key
        try:
            plaintext = self._open(self.source_keys, source_blob, wallet, service, src_key)
        except PortableCredsError:
            if in_place and self._opens_at_destination(source_blob, wallet, service, dst_key):
                # Re-sealed in place by an earlier run: the source *is* the new blob.
                digest = _digest(source_blob)
                self.verified[(wallet, service)] = _Verified(digest, digest, True)
                return self._item(entry, ALREADY, "re-sealed in place earlier")
            return self._item(
                entry,
                FAILED,
                "the source blob does not open with the source keys (tampered, or sealed "
                "under other keys); not copied",
            )
        try:
            current = self._read_dest(dst_key, entry)
        except PortableCredsError as exc:
            return self._item(entry, FAILED, f"reading the destination failed: {exc}")
        if current is not None:
            try:
                existing: bytes | None = self._open(
                    self.dest_keys, current.data, wallet, service, dst_key
                )
            except PortableCredsError:
                existing = None
            if existing is not None and hmac.compare_digest(existing, plaintext):
                self.verified[(wallet, service)] = _Verified(
                    _digest(source_blob), _digest(current.data), in_place
                )
                return self._item(entry, ALREADY)
            # The source object itself (in-place re-seal): replacing it is the point.
            own = in_place and hmac.compare_digest(current.data, source_blob)
            if not own and not self.overwrite:
                what = "a different value" if existing is not None else "a blob that does not open"
                return self._item(
                    entry,
                    CONFLICT,
                    f"the destination holds {what}; use --overwrite to replace it",
                )
        if self.dry_run:
            return self._item(entry, WOULD_COPY, "in place" if in_place else "")
        blob = envelope.seal(
            plaintext,
            kek=self.dest_keys.current_kek(wallet, service),
            context=envelope.Context(wallet, service, dst_key),
            max_payload=self.max_payload,
        )
        return self._store_and_verify(
            entry,
            dst_key,
            blob,
            current,
            expect=blob,
            source_blob=source_blob,
            plaintext=plaintext,
            in_place=in_place,
        )

    def _opens_at_destination(self, blob: bytes, wallet: str, service: str, key: str) -> bool:
        assert self.dest_keys is not None
        try:
            self._open(self.dest_keys, blob, wallet, service, key)
        except PortableCredsError:
            return False
        return True

    def verify_written(self, wallet: str, items: list[Item]) -> list[Item]:
        """Settle the wallet's ``written`` items from one listing of the destination.

        A listed object whose size matches and whose ETag is the MD5 or SHA-256 of the bytes
        written holds exactly those bytes (which were header-parsed before writing). Anything
        else - an ETag of another kind (multipart, SSE-KMS), a missing key, a failed listing -
        is read back with a GET and compared byte for byte instead.
        """
        if not any(i.status == _WRITTEN for i in items):
            return items
        listed: dict[str, tuple[int, str]] = {}
        try:
            base = names.credentials_prefix(wallet, self.destination.prefix)
            listed = {o.key: (o.size, o.etag) for o in self.destination.objects.list(base)}
        except PortableCredsError:
            pass
        out = []
        for item in items:
            if item.status != _WRITTEN:
                out.append(item)
                continue
            written = self.written.pop((wallet, item.service))
            size, etag = listed.get(written.key, (-1, ""))
            if size == written.size and _etag_matches(etag, written):
                out.append(self._settle(item, written))
            else:
                out.append(self._read_back(item, written))
        return out

    def _settle(self, item: Item, written: _Written) -> Item:
        digest = bytes.fromhex(written.sha256)
        self.verified[(item.wallet, item.service)] = _Verified(digest, digest, False)
        return attrs.evolve(item, status=COPIED)

    def _read_back(self, item: Item, written: _Written) -> Item:
        try:
            data = self.destination.objects.get(written.key).data
        except PortableCredsError as exc:
            return attrs.evolve(item, status=FAILED, detail=f"read-back verification failed: {exc}")
        if not hmac.compare_digest(hashlib.sha256(data).hexdigest(), written.sha256):
            return attrs.evolve(
                item,
                status=FAILED,
                detail="read-back verification failed: the destination returned other bytes",
            )
        return self._settle(item, written)

    # -- the re-check before deleting ---------------------------------------------------------

    def still_verified(self, entry: _Entry) -> str:
        """ "" if source and destination still hold what was verified, else why not."""
        done = self.verified.get((entry.wallet, entry.service))
        if done is None:
            return f"{entry.service} was not verified"
        src_key = self.source.key(entry.wallet, entry.service)
        dst_key = self.destination.key(entry.wallet, entry.service)
        try:
            src = self.source.objects.get(src_key).data
            dst = self.destination.objects.get(dst_key).data
        except PortableCredsError as exc:
            return f"re-reading {entry.service} before deleting failed: {exc}"
        if not hmac.compare_digest(_digest(dst), done.dest_digest):
            return f"{entry.service} changed at the destination since it was verified"
        if not done.in_place and not hmac.compare_digest(_digest(src), done.source_digest):
            return f"{entry.service} changed at the source since it was verified"
        return ""


def list_services(objects: ObjectStore, wallet: str, prefix: str) -> tuple[list[str], list[str]]:
    """(valid service names, other keys) under the wallet's ``credentials/`` prefix."""
    base = names.credentials_prefix(wallet, prefix)
    services, others = [], []
    for info in objects.list(base):
        service = names.service_from_key(info.key, wallet, prefix)
        if service is None:
            others.append(info.key)
        else:
            services.append(service)
    return sorted(set(services)), others


def _listed(destination: Endpoint, wallet: str) -> set[str] | None:
    """The services the destination holds for ``wallet``; ``None`` if it cannot be listed."""
    try:
        services, _ = list_services(destination.objects, wallet, destination.prefix)
    except PortableCredsError:
        return None
    return set(services)


def copy(
    source: Endpoint,
    destination: Endpoint,
    wallets: Iterable[str],
    *,
    dry_run: bool = False,
    overwrite: bool = False,
    delete_source: bool = False,
    open_payloads: bool = True,
    verify: str = VERIFY_LISTING,
    workers: int = DEFAULT_WORKERS,
    max_payload: int = envelope.ABSOLUTE_MAX_PAYLOAD,
    progress: Progress | None = None,
) -> Report:
    """Copy every credential of each wallet from ``source`` to ``destination``.

    ``open_payloads=False`` keeps verbatim mode from opening blobs even when ``source.keys``
    is given (no KEK derived, no plaintext on this machine). ``verify``: how a verbatim write
    is verified - ``"listing"`` (one destination listing per wallet after its writes: size and
    an ETag equal to the MD5/SHA-256 of the bytes, else a GET) or ``"read"`` (a GET of every
    object, compared byte for byte). Re-sealed blobs are always read back and opened.
    ``workers`` bounds the threads doing requests; the stores' clients are shared by them
    (connection reuse).
    """
    mode = choose_mode(source, destination)
    if mode == RESEAL and source.keys is None:
        raise ConfigurationError(
            "re-sealing (the prefix or the key source changes) needs the source's keys to open "
            "the blobs: give the source key source (--from-secret-file)"
        )
    if mode == VERBATIM and source.objects.backend_id == destination.objects.backend_id:
        raise ConfigurationError(
            "source and destination are the same location with the same keys: nothing to copy"
        )
    if workers < 1:
        raise ConfigurationError("workers must be 1 or more")
    if verify not in (VERIFY_LISTING, VERIFY_READ):
        raise ConfigurationError(f"verify={verify!r}: use 'listing' or 'read'")
    progress = progress or Progress(enabled=False, label="copy")
    checked = mode == RESEAL or (open_payloads and source.keys is not None)
    copier = _Copier(
        source,
        destination,
        mode=mode,
        open_payloads=open_payloads,
        dry_run=dry_run,
        overwrite=overwrite,
        max_payload=envelope.check_max_payload(max_payload),
        verify=verify,
    )
    report = Report(
        source=source.objects.backend_id,
        destination=destination.objects.backend_id,
        dry_run=dry_run,
        verb=COPY,
        facts={
            "mode": mode,
            "payload_checked": checked,
            "verify": verify if mode == VERBATIM else "open",
        },
    )
    if not checked:
        report.facts["note"] = (
            "payload integrity not checked (no keys on this machine): blobs were verified by "
            "byte equality and header parse only"
        )
    ordered = list(dict.fromkeys(names.validate_wallet(w) for w in wallets))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        listings = {
            w: pool.submit(list_services, source.objects, w, source.prefix) for w in ordered
        }
        # Where writes can be create-only, a taken key shows up as a refused write (then the
        # item is compared with a read), so nothing needs listing first; a dry run must look.
        prelist = dry_run or not destination.objects.capabilities.create_only
        present = {w: pool.submit(_listed, destination, w) for w in ordered if prelist}
        pending: list[tuple[str, list[_Entry], list[Future[Item]], list[Item]]] = []
        for wallet in ordered:
            extra: list[Item] = []
            try:
                services, others = listings[wallet].result()
            except (CredentialsError, ConfigurationError):
                raise  # the same for every wallet: stop with the typed error
            except PortableCredsError as exc:
                extra.append(Item(wallet, "*", mode, FAILED, f"listing the source failed: {exc}"))
                pending.append((wallet, [], [], extra))
                continue
            extra.extend(
                Item(wallet, key.rsplit("/", 1)[-1], mode, SKIPPED, "not a credential object")
                for key in others
            )
            there = present[wallet].result() if prelist else set()
            entries = [_Entry(wallet, s, None if there is None else s in there) for s in services]
            progress.start(len(entries))

            def one(entry: _Entry) -> Item:
                item = copier.run(entry)
                if item.status != _WRITTEN:
                    progress.item(item)
                return item

            pending.append((wallet, entries, [pool.submit(one, e) for e in entries], extra))
        for wallet, entries, futures, extra in pending:
            done = [f.result() for f in futures]
            settled = copier.verify_written(wallet, done)
            for before, after in zip(done, settled, strict=True):
                if before.status == _WRITTEN:
                    progress.item(after)
            items = settled + extra
            report.items.extend(items)
            report.wallets.append(
                _maybe_delete(
                    copier, pool, wallet, entries, items, delete_source, dry_run, progress
                )
            )
    return report


def _maybe_delete(
    copier: _Copier,
    pool: ThreadPoolExecutor,
    wallet: str,
    entries: Sequence[_Entry],
    items: Sequence[Item],
    delete_source: bool,
    dry_run: bool,
    progress: Progress,
) -> WalletResult:
    if not delete_source:
        return WalletResult(wallet, False)
    if dry_run:
        return WalletResult(wallet, False, "dry run: source kept")

    def kept(note: str) -> WalletResult:
        progress.note(f"{wallet}: source kept - {note}")
        return WalletResult(wallet, False, note)

    if not items or not all(i.status in COPY.verified for i in items):
        return kept("not every credential of this wallet was verified")
    source = copier.source
    try:
        now, others = list_services(source.objects, wallet, source.prefix)
    except PortableCredsError as exc:
        return kept(f"re-listing the source failed: {exc}")
    if set(now) != {e.service for e in entries} or others:
        return kept("the source changed since it was listed; rerun copy")
    problems = [p for p in pool.map(copier.still_verified, entries) if p]
    if problems:
        return kept(problems[0])
    doomed = [
        source.key(wallet, e.service)
        for e in entries
        if not copier.verified[(wallet, e.service)].in_place
    ]
    failed = source.objects.delete_many(doomed) if doomed else {}
    if failed:
        key, error = next(iter(failed.items()))
        return kept(f"deleting {len(failed)} source object(s) failed, first {key}: {error}")
    in_place = len(entries) - len(doomed)
    note = f"{len(doomed)} source object(s) deleted"
    return WalletResult(
        wallet, True, note + (f", {in_place} re-sealed in place" if in_place else "")
    )
