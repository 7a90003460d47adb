"""The local outbox: sealed blobs waiting for a remote write to succeed.

A ``put`` first journals its sealed blob here, then writes remotely, then retires the entry.
Only sealed bytes are kept, never plaintext; every file is 0600 in a 0700 directory.

Durability is paid where it buys something (see docs/threat-model.md, "Durability of puts"):

* An in-flight entry is one ``pwrite`` into this process's preallocated journal slot (a file
  held under ``flock`` while the process lives), **without** fsync. A process killed (SIGKILL,
  OOM, crash) at any point leaves the record in the kernel's page cache, which outlives the
  process; ``recover`` turns a dead process's slot into an ordinary entry.
* A put that **fails** turns its record into an entry file and fsyncs it (file and directory)
  *before* the failure is reported, so a reported failure survives a power loss too.
* A put that **succeeds** needs no local durability: the remote holds the value.

Ordering and conflicts (issue 12): entries carry a sequence number from a counter file taken
under ``flock`` (monotonic across processes, never the wall clock). When a put succeeds its
record is written in place into ``<id>.last``: the sealed blob this home last made the remote
hold (a delete leaves a "deleted" record instead). A flush is conditional on that state: it
delivers only if the remote still holds exactly that blob (then ``if_match`` its current ETag)
or nothing when this home last left nothing (``if_none_match``); a value written by someone
else since (possibly newer) or a delete is never overwritten unless the caller forces it.
Delete and teardown discard pending entries.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import attrs

from .driver import ObjectStore, StoredObject
from .errors import (
    ConfigurationError,
    NotFound,
    PayloadTooLarge,
    PortableCredsError,
    PreconditionFailed,
)
from .paths import ensure_private_dir, fsync_dir, fsync_file, write_file_atomic

_SUFFIX = ".json"
_LAST = ".last"
_SEQ_FILE = ".seq"
_SLOT = ".slot"
_MAGIC = b"PCOB1\n"
_HEADER = len(_MAGIC) + 8 + 32  # magic, payload length, SHA-256 of the payload
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


@attrs.frozen
class OutboxEntry:
    """One pending write. ``path`` is the file holding the sealed blob and its metadata."""

    path: Path
    seq: int
    backend_id: str
    wallet: str
    service: str
    key: str
    created: float
    superseding: bool = attrs.field(default=True, eq=False)
    """Whether older entries of the same key may exist (to retire when this one is delivered).
    ``False`` only when none existed as this one was added: then none can appear later."""


@attrs.frozen(repr=False)
class LastState:
    """What this home last made the remote hold for one key: ``blob`` (``None``: absent)."""

    seq: int
    blob: bytes | None

    def __repr__(self) -> str:
        held = "absent" if self.blob is None else f"<{len(self.blob)} bytes>"
        return f"LastState(seq={self.seq}, {held})"


@attrs.frozen
class FlushResult:
    delivered: int
    superseded: int
    failed: list[tuple[OutboxEntry, PortableCredsError]]


def _put_file(directory: str, name: str, data: bytes, *, durable: bool) -> None:
    """An entry file, 0600, written whole (``paths.write_file_atomic``)."""
    write_file_atomic(os.path.join(directory, name), data, 0o600, durable=durable)


def _frame(payload: bytes) -> bytes:
    """A self-validating record: written in place with one ``pwrite``; a torn write (a kill in
    the middle) fails the checksum and reads as empty, never as a wrong record."""
    return _MAGIC + len(payload).to_bytes(8, "big") + hashlib.sha256(payload).digest() + payload


def _unframe(raw: bytes) -> bytes | None:
    if not raw.startswith(_MAGIC) or len(raw) < _HEADER:
        return None
    length = int.from_bytes(raw[len(_MAGIC) : len(_MAGIC) + 8], "big")
    payload = raw[_HEADER : _HEADER + length]
    if len(payload) != length or hashlib.sha256(payload).digest() != raw[len(_MAGIC) + 8 : _HEADER]:
        return None
    return payload


def _read_all(path: str) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _write_in_place(path: str, data: bytes) -> None:
    """One ``pwrite`` into an existing file (created 0600 the first time): no new inode, no
    rename, so no filesystem-journal work on the hot path. Stale bytes past the end are
    ignored by ``_unframe``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | _O_CLOEXEC, 0o600)
    try:
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)


class _Slot:
    """This process's preallocated journal slot: one file, held under an exclusive ``flock``
    for the process's life, rewritten in place for every in-flight put.

    A slot whose lock can be taken belongs to a dead process: ``Outbox.recover`` turns its
    record (if whole) into an ordinary pending entry.
    """

    def __init__(self, directory: str) -> None:
        self.pid = os.getpid()
        self.path = os.path.join(directory, f"{self.pid}-{secrets.token_hex(4)}{_SLOT}")
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, 0o600)
        try:
            os.fchmod(self.fd, 0o600)
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            os.close(self.fd)
            os.unlink(self.path)
            raise
        self.busy = threading.Lock()
        self.payload = b""

    def write(self, payload: bytes) -> None:
        self.payload = payload
        os.pwrite(self.fd, _frame(payload), 0)

    def clear(self) -> None:
        self.payload = b""
        os.pwrite(self.fd, b"\0" * len(_MAGIC), 0)

    def dispose(self) -> None:
        """At exit (or when the outbox is collected): remove the slot unless a put is in
        flight; a slot left behind (a kill) is recovered by the next reader."""
        if self.pid != os.getpid() or not self.busy.acquire(blocking=False):
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.close(self.fd)


def key_id(backend_id: str, key: str) -> str:
    """Short stable id of (backend, key): entry file names carry it, so lookups need no reads."""
    return hashlib.sha256(f"{backend_id}\n{key}".encode()).hexdigest()[:16]


def _seq_of_name(name: str) -> int:
    head = name.split("-", 1)[0]
    return int(head) if name.endswith(_SUFFIX) and head.isdigit() else 0


class Outbox:
    """A directory of pending sealed writes, shared by every store using the same home."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self._dir = os.fspath(self.directory)
        self._ready = False
        self._slot: _Slot | None = None
        self._slot_guard = threading.Lock()

    def _claim_slot(self) -> _Slot | None:
        """This process's slot, if no other thread is using it (else ``None``: a file entry)."""
        with self._slot_guard:
            slot = self._slot
            if slot is None or slot.pid != os.getpid():
                try:
                    slot = self._slot = _Slot(self._dir)
                except OSError:
                    return None
                weakref.finalize(self, slot.dispose)
        return slot if slot.busy.acquire(blocking=False) else None

    def _slot_of(self, entry: OutboxEntry) -> _Slot | None:
        slot = self._slot
        if slot is not None and os.fspath(entry.path) == slot.path:
            return slot
        return None

    def _ensure_dir(self) -> None:
        if self._ready and os.path.isdir(self._dir):
            return
        self._ready = True
        try:
            ensure_private_dir(self.directory)  # <home> too, if missing: 0700, not umask
            os.chmod(self.directory, 0o700)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create the outbox directory {self.directory}: {exc.strerror}; "
                "set PORTABLE_CREDS_HOME to a writable directory"
            ) from None

    # -- the sequence counter (also the lock serialising journal updates) -------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        """Hold the outbox lock; yields the counter file's descriptor."""
        self._ensure_dir()
        fd = os.open(os.path.join(self._dir, _SEQ_FILE), os.O_RDWR | os.O_CREAT | _O_CLOEXEC,
                     0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)  # closing the last descriptor releases the flock

    def _next_seq(self, fd: int, kid: str) -> tuple[int, bool]:
        """Next sequence number (lock held), and whether entries of ``kid`` exist already.

        The number is above the counter, every entry and ``kid``'s last state: taking the
        maximum with what is on disk keeps the order right even if the counter itself was
        lost (it is never fsynced; failed entries are).
        """
        try:
            counter = int(os.pread(fd, 32, 0).decode("ascii").strip() or "0")
        except (ValueError, UnicodeDecodeError):
            counter = 0
        highest, same_key = 0, False
        tail = f"-{kid}{_SUFFIX}"
        for name in os.listdir(self._dir):
            seq = _seq_of_name(name)
            if seq:
                highest = max(highest, seq)
                # Names of older versions carry no key id: assume they may be this key's.
                same_key = same_key or name.endswith(tail) or len(name) != len(tail) + 20
        last = self.last_state_by_id(kid)
        seq = max(counter, highest, last.seq if last else 0) + 1
        os.pwrite(fd, f"{seq:020d}\n".encode(), 0)
        return seq, same_key

    # -- entries ------------------------------------------------------------------------

    def add(
        self,
        *,
        backend_id: str,
        wallet: str,
        service: str,
        key: str,
        blob: bytes,
        durable: bool = True,
    ) -> OutboxEntry:
        """Journal a pending write. ``durable=False``: no fsync (call ``persist`` on failure)."""
        kid = key_id(backend_id, key)
        created = time.time()  # display only; ordering uses ``seq``
        if self._slot is None and not durable:
            self._ensure_dir()
            self.recover()  # once per process: slots of writers killed earlier
        with self._locked() as fd:
            seq, older = self._next_seq(fd, kid)
            name = f"{seq:020d}-{kid}{_SUFFIX}"
            record = {
                "format": 1,
                "seq": seq,
                "backend_id": backend_id,
                "wallet": wallet,
                "service": service,
                "key": key,
                "created": created,
                "blob": base64.b64encode(blob).decode("ascii"),
            }
            payload = json.dumps(record).encode()
            slot = None if durable else self._claim_slot()
            if slot is not None:
                slot.write(payload)
                path = Path(slot.path)
            else:
                _put_file(self._dir, name, payload, durable=durable)
                path = self.directory / name
        return OutboxEntry(path, seq, backend_id, wallet, service, key, created, older)

    def persist(self, entry: OutboxEntry) -> Path | None:
        """Make ``entry`` durable (fsync file and directory) and return where it is kept;
        ``None`` if it is gone (delivered by a concurrent flush, or superseded meanwhile).

        An entry in this process's slot becomes an ordinary entry file first.
        """
        slot = self._slot_of(entry)
        if slot is not None:
            try:
                name = f"{entry.seq:020d}-{key_id(entry.backend_id, entry.key)}{_SUFFIX}"
                _put_file(self._dir, name, slot.payload, durable=True)
                slot.clear()
            finally:
                slot.busy.release()
            return self.directory / name
        if not fsync_file(entry.path):
            return None
        fsync_dir(self.directory)
        return entry.path

    def recover(self) -> int:
        """Turn the slots of dead processes into ordinary pending entries; returns how many.

        A process killed during a put leaves its in-flight entry in its slot; the slot's lock
        died with it, which is how a dead slot is told from a live one.
        """
        if not self.directory.is_dir():
            return 0
        recovered = 0
        own = self._slot.path if self._slot is not None else None
        for name in os.listdir(self._dir):
            path = os.path.join(self._dir, name)
            if not name.endswith(_SLOT) or path == own:
                continue
            try:
                fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its process is alive: an in-flight put
                raw = b""
                while chunk := os.read(fd, 1 << 20):
                    raw += chunk
                payload = _unframe(raw)
                if payload is not None:
                    try:
                        record = json.loads(payload)
                        name_out = (
                            f"{int(record['seq']):020d}-"
                            f"{key_id(str(record['backend_id']), str(record['key']))}{_SUFFIX}"
                        )
                    except (ValueError, KeyError, TypeError):
                        name_out = None
                    if name_out is not None:
                        _put_file(self._dir, name_out, payload, durable=True)
                        recovered += 1
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            finally:
                os.close(fd)
        return recovered

    def _load(self, path: Path) -> tuple[OutboxEntry, bytes] | None:
        try:
            record = json.loads(path.read_bytes())
            entry = OutboxEntry(
                path,
                int(record["seq"]),
                str(record["backend_id"]),
                str(record["wallet"]),
                str(record["service"]),
                str(record["key"]),
                float(record["created"]),
            )
            return entry, base64.b64decode(record["blob"], validate=True)
        except FileNotFoundError:
            return None  # delivered by a concurrent flush
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None  # not ours / unreadable: left in place for a human to inspect

    def pending(
        self, *, backend_id: str | None = None, wallet: str | None = None
    ) -> list[OutboxEntry]:
        """Pending entries, oldest first, optionally filtered (dead processes' slots first
        become entries; live processes' in-flight puts are not pending)."""
        if not self.directory.is_dir():
            return []
        self.recover()
        out = []
        for path in sorted(self.directory.glob(f"*{_SUFFIX}"), key=lambda p: _seq_of_name(p.name)):
            loaded = self._load(path)
            if loaded is None:
                continue
            entry = loaded[0]
            if backend_id is not None and entry.backend_id != backend_id:
                continue
            if wallet is not None and entry.wallet != wallet:
                continue
            out.append(entry)
        return out

    def read_blob(self, entry: OutboxEntry) -> bytes:
        loaded = self._load(entry.path)
        if loaded is None:
            raise FileNotFoundError(str(entry.path))
        return loaded[1]

    def remove(self, entry: OutboxEntry) -> None:
        entry.path.unlink(missing_ok=True)

    def _remove_older(self, kid: str, below: int) -> int:
        """Drop entries of ``kid`` with a sequence number below ``below``."""
        dropped = 0
        tail = f"-{kid}{_SUFFIX}"
        for name in os.listdir(self._dir):
            if name.endswith(tail) and _seq_of_name(name) < below:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self._dir, name))
                    dropped += 1
        return dropped

    def discard(self, *, backend_id: str, key: str, up_to_seq: int | None = None) -> int:
        """Drop entries for ``key`` (all, or those not newer than ``up_to_seq``)."""
        dropped = 0
        for entry in self.pending(backend_id=backend_id):
            if entry.key == key and (up_to_seq is None or entry.seq <= up_to_seq):
                self.remove(entry)
                dropped += 1
        return dropped

    def discard_prefix(self, *, backend_id: str, prefix: str) -> int:
        """Drop every entry for keys under ``prefix`` (a wallet's credentials: teardown)."""
        dropped = 0
        for entry in self.pending(backend_id=backend_id):
            if entry.key.startswith(prefix):
                self.remove(entry)
                dropped += 1
        return dropped

    # -- what this home last made the remote hold ------------------------------------------

    def last_state_by_id(self, kid: str) -> LastState | None:
        raw = _read_all(os.path.join(self._dir, f"{kid}{_LAST}"))
        if raw is None:
            return None
        payload = _unframe(raw) if raw.startswith(_MAGIC) else raw
        if payload is None:
            return None  # torn by a kill mid-write: as if unknown, flush compares blobs
        try:
            record = json.loads(payload)
            blob = record.get("blob")
            return LastState(
                int(record["seq"]),
                None if blob is None else base64.b64decode(blob, validate=True),
            )
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            return None

    def last_state(self, backend_id: str, key: str) -> LastState | None:
        return self.last_state_by_id(key_id(backend_id, key))

    def delivered(self, entry: OutboxEntry) -> None:
        """``entry`` reached the remote: it becomes the key's last state, and every older
        pending write of the same key is retired (superseded).

        The success path of every put: for an entry in this process's slot, two in-place
        writes (the key's last state, the slot's header), no new file, no rename, no fsync.
        A race between two successful puts of one key may leave the older blob as the last
        state; that only makes a later flush refuse (the remote holds the other), never clobber.
        """
        kid = key_id(entry.backend_id, entry.key)
        last = os.path.join(self._dir, f"{kid}{_LAST}")
        slot = self._slot_of(entry)
        if slot is not None:
            try:
                _write_in_place(last, _frame(slot.payload))
                slot.clear()
            finally:
                slot.busy.release()
        else:
            with contextlib.suppress(FileNotFoundError):  # a concurrent flush retired it
                os.replace(entry.path, last)
        if entry.superseding:
            self._remove_older(kid, entry.seq + 1)

    def forget(self, *, backend_id: str, key: str) -> tuple[int, int]:
        """A delete of ``key`` begins: drop every pending write of it (none may resurrect it).

        Returns (entries dropped, the delete's sequence number for ``deleted``).
        """
        kid = key_id(backend_id, key)
        with self._locked() as fd:
            seq, _ = self._next_seq(fd, kid)
            dropped = self._remove_older(kid, seq)
        # Entries written by older versions (other file names) are matched by content.
        dropped += self.discard(backend_id=backend_id, key=key, up_to_seq=seq)
        return dropped, seq

    def deleted(self, *, backend_id: str, key: str, seq: int) -> None:
        """The remote no longer holds ``key`` (a delete with sequence number ``seq`` finished)."""
        self._ensure_dir()
        record = {"format": 1, "seq": seq, "backend_id": backend_id, "key": key, "blob": None}
        _write_in_place(
            os.path.join(self._dir, f"{key_id(backend_id, key)}{_LAST}"),
            _frame(json.dumps(record).encode()),
        )

    # -- flush --------------------------------------------------------------------------

    def flush(
        self, objects: ObjectStore, *, wallet: str | None = None, force: bool = False
    ) -> FlushResult:
        """Deliver pending writes for ``objects``' backend: the newest entry per key wins.

        Older entries for a key are superseded (removed without writing). Each delivery is
        conditional on the remote still holding what this home last made it hold, so a
        flush never overwrites a value written (or deleted) since; ``force=True`` overwrites
        anyway. Backends without conditional writes are refused unless forced.
        """
        entries = self.pending(backend_id=objects.backend_id, wallet=wallet)
        newest: dict[str, OutboxEntry] = {}
        for entry in entries:
            newest[entry.key] = entry  # oldest first, so the last one seen is the newest
        delivered = superseded = 0
        failed: list[tuple[OutboxEntry, PortableCredsError]] = []
        for entry in entries:
            if newest[entry.key] is not entry:
                self.remove(entry)
                superseded += 1
                continue
            try:
                blob = self.read_blob(entry)
            except FileNotFoundError:
                continue
            try:
                outcome = self._deliver(objects, entry, blob, force=force)
            except PortableCredsError as exc:
                failed.append((entry, exc))
                continue
            if outcome == "superseded":
                superseded += 1
            else:
                delivered += 1
        return FlushResult(delivered, superseded, failed)

    def _deliver(self, objects: ObjectStore, entry: OutboxEntry, blob: bytes, *,
                 force: bool) -> str:
        last = self.last_state(entry.backend_id, entry.key)
        if last is not None and last.seq >= entry.seq:
            # A newer put or a delete from this home already finished (or this very entry
            # was delivered and a crash came before its file was renamed).
            self.remove(entry)
            return "superseded" if last.seq > entry.seq else "delivered"
        expected = None if last is None else last.blob
        # Only equality with one of two known blobs matters: never read more than the larger.
        current = _read_capped(objects, entry.key, max(len(blob), len(expected or b"")))
        if current is not None and current.data == blob:
            self.delivered(entry)  # an earlier attempt landed (lost response, crash)
            return "delivered"
        unchanged = (current is None and expected is None) or (
            current is not None and current.data == expected
        )
        caps = objects.capabilities
        if force:
            objects.put(entry.key, blob)
        elif not unchanged:
            raise PreconditionFailed(
                f"pending write of {entry.service!r} for {entry.wallet} (from "
                f"{_when(entry.created)}) not delivered: the backend's value "
                + ("was deleted" if current is None else "changed")
                + " since this machine last wrote it, so the pending value may be older; "
                f"check it with 'portable-creds --wallet {entry.wallet} get {entry.service}', "
                "then run 'portable-creds outbox flush --force' to overwrite it or "
                f"'portable-creds --wallet {entry.wallet} outbox drop {entry.service}' to "
                "discard the pending write"
            )
        elif (current is None and not caps.create_only) or (
            current is not None and not caps.if_match
        ):
            raise PreconditionFailed(
                f"pending write of {entry.service!r} for {entry.wallet} not delivered: backend "
                f"{objects.backend_id} cannot write conditionally ("
                + ("create-only" if current is None else "if-match")
                + "), so the flush could overwrite a value written meanwhile; check it, then "
                "run 'portable-creds outbox flush --force'"
            )
        else:
            try:
                if current is None:
                    objects.put(entry.key, blob, if_none_match=True)
                else:
                    objects.put(entry.key, blob, if_match=current.etag)
            except PreconditionFailed:
                if _holds(objects, entry.key, blob):  # a concurrent flush delivered it
                    self.delivered(entry)
                    return "delivered"
                raise PreconditionFailed(
                    f"pending write of {entry.service!r} for {entry.wallet} not delivered: "
                    "the backend's value changed during the flush; retry "
                    "'portable-creds outbox flush'"
                ) from None
        self.delivered(entry)
        return "delivered"


def _read_capped(objects: ObjectStore, key: str, cap: int) -> StoredObject | None:
    """The remote object (``None``: absent); one larger than ``cap`` reads as an empty
    placeholder, which equals no blob (blobs are never empty)."""
    try:
        return objects.get_capped(key, max_size=cap)
    except NotFound:
        return None
    except PayloadTooLarge:
        return StoredObject(data=b"", etag="")


def _holds(objects: ObjectStore, key: str, blob: bytes) -> bool:
    """Whether the remote already holds exactly ``blob`` at ``key``."""
    current = _read_capped(objects, key, len(blob))
    return current is not None and current.data == blob


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
