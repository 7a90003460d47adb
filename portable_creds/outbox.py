"""The local outbox: sealed blobs waiting for a remote write to succeed.

A ``put`` first journals its sealed blob here (a 0600 file made visible by an atomic rename),
then writes remotely, then retires the entry. Only sealed bytes are kept, never plaintext.

Durability is paid where it buys something (see docs/threat-model.md, "Durability of puts"):

* Journal entries are written **without** fsync on the way in. A process killed (SIGKILL,
  OOM, crash) at any point leaves the file in the kernel's page cache, which outlives the
  process, so the in-flight secret is still recoverable by ``flush``.
* A put that **fails** fsyncs its entry (file and directory) *before* the failure is reported,
  so a reported failure survives a power loss too.
* A put that **succeeds** needs no local durability: the remote holds the value.

Ordering and conflicts (issue 12): entries carry a sequence number from a counter file taken
under ``flock`` (monotonic across processes, never the wall clock). When a put succeeds its
entry is not deleted but renamed to ``<id>.last``: the sealed blob this home last made the
remote hold (a delete leaves a "deleted" record instead). That costs one rename and no new
file. A flush is conditional on that state: it delivers only if the remote still holds exactly
that blob (then ``if_match`` its current ETag) or nothing when this home last left nothing
(``if_none_match``); a value written by someone else since (possibly newer) or a delete is never
overwritten unless the caller forces it. Delete and teardown discard pending entries.
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
import time
from collections.abc import Iterator
from pathlib import Path

import attrs

from .driver import ObjectStore
from .errors import ConfigurationError, NotFound, PortableCredsError, PreconditionFailed

_SUFFIX = ".json"
_LAST = ".last"
_SEQ_FILE = ".seq"
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


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(path: Path, data: bytes, mode: int, *, durable: bool) -> Path:
    tmp = path.with_name(f".tmp-{path.name}-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def write_file_atomic(path: Path, data: bytes, mode: int = 0o600, *, durable: bool = True) -> None:
    """Temp file in the same directory, (fsync), rename, (fsync the directory).

    ``durable=False`` skips both fsyncs: the rename is still atomic for every reader and
    survives the death of this process, but not necessarily a power loss.
    """
    tmp = _write_temp(path, data, mode, durable=durable)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(path.parent)


def _put_file(directory: str, name: str, data: bytes, *, durable: bool) -> None:
    """``write_file_atomic`` for the hot path: plain string paths, 0600."""
    final = os.path.join(directory, name)
    tmp = os.path.join(directory, f".tmp-{name}-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, final)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        _fsync_dir(Path(directory))


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

    def _ensure_dir(self) -> None:
        if self._ready and os.path.isdir(self._dir):
            return
        self._ready = True
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
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
            _put_file(self._dir, name, json.dumps(record).encode(), durable=durable)
        return OutboxEntry(
            self.directory / name, seq, backend_id, wallet, service, key, created, older
        )

    def persist(self, entry: OutboxEntry) -> bool:
        """fsync ``entry`` and its directory; ``False`` if it is gone (superseded meanwhile)."""
        try:
            fd = os.open(entry.path, os.O_RDONLY | _O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(self.directory)
        return True

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
        """Pending entries, oldest first, optionally filtered."""
        if not self.directory.is_dir():
            return []
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
        try:
            fd = os.open(os.path.join(self._dir, f"{kid}{_LAST}"), os.O_RDONLY | _O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
        finally:
            os.close(fd)
        try:
            record = json.loads(b"".join(chunks))
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
        """``entry`` reached the remote: it becomes the key's last state (one rename), and
        every older pending write of the same key is retired (superseded).

        The success path of every put: no lock, no fsync, no new file. A race between two
        successful puts of one key may leave the older blob as the last state; that only
        makes a later flush refuse (the remote then holds the other blob), never clobber.
        """
        kid = key_id(entry.backend_id, entry.key)
        with contextlib.suppress(FileNotFoundError):  # a concurrent flush retired it
            os.replace(entry.path, os.path.join(self._dir, f"{kid}{_LAST}"))
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
        _put_file(self._dir, f"{key_id(backend_id, key)}{_LAST}", json.dumps(record).encode(),
                  durable=False)

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
        try:
            current = objects.get(entry.key)
        except NotFound:
            current = None
        if current is not None and current.data == blob:
            self.delivered(entry)  # an earlier attempt landed (lost response, crash)
            return "delivered"
        expected = None if last is None else last.blob
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


def _holds(objects: ObjectStore, key: str, blob: bytes) -> bool:
    """Whether the remote already holds exactly ``blob`` at ``key``."""
    try:
        return objects.get(key).data == blob
    except NotFound:
        return False


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
