"""The local outbox: sealed blobs waiting for a remote write to succeed.

A ``put`` first lands its sealed blob here (a 0600 file, written atomically and fsynced), then
writes remotely, then removes the entry. So a crash or a remote failure at any point leaves the
secret recoverable: it is either stored remotely or still here. Only sealed bytes are kept, never
plaintext. Entries carry a monotonic sequence number so an old pending write can never overwrite
a newer one that already reached the store.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import time
from pathlib import Path

import attrs

from .driver import ObjectStore
from .errors import ConfigurationError, PortableCredsError, PreconditionFailed
from .paths import ensure_private_dir, write_file_atomic

_SUFFIX = ".json"


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


@attrs.frozen
class FlushResult:
    delivered: int
    superseded: int
    failed: list[tuple[OutboxEntry, PortableCredsError]]


class Outbox:
    """A directory of pending sealed writes, shared by every store using the same home."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def _ensure_dir(self) -> None:
        try:
            ensure_private_dir(self.directory)  # <home> too, if missing: 0700, not umask
            os.chmod(self.directory, 0o700)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create the outbox directory {self.directory}: {exc.strerror}; "
                "set PORTABLE_CREDS_HOME to a writable directory"
            ) from None

    def add(
        self, *, backend_id: str, wallet: str, service: str, key: str, blob: bytes
    ) -> OutboxEntry:
        self._ensure_dir()
        seq = time.time_ns()
        created = seq / 1e9
        path = self.directory / f"{seq:020d}-{secrets.token_hex(4)}{_SUFFIX}"
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
        write_file_atomic(path, json.dumps(record, sort_keys=True).encode())
        return OutboxEntry(path, seq, backend_id, wallet, service, key, created)

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
        for path in sorted(self.directory.glob(f"*{_SUFFIX}")):
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

    def discard(self, *, backend_id: str, key: str, up_to_seq: int | None = None) -> int:
        """Drop entries for ``key`` (all, or those not newer than ``up_to_seq``)."""
        dropped = 0
        for entry in self.pending(backend_id=backend_id):
            if entry.key == key and (up_to_seq is None or entry.seq <= up_to_seq):
                self.remove(entry)
                dropped += 1
        return dropped

    def flush(self, objects: ObjectStore, *, wallet: str | None = None) -> FlushResult:
        """Deliver pending writes for ``objects``' backend: the newest entry per key wins.

        Older entries for a key are superseded (removed without writing), so flushing never
        moves a credential backwards in time.
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
                objects.put(entry.key, blob)
            except PreconditionFailed as exc:  # pragma: no cover - unconditional put
                failed.append((entry, exc))
                continue
            except PortableCredsError as exc:
                failed.append((entry, exc))
                continue
            self.remove(entry)
            delivered += 1
        return FlushResult(delivered, superseded, failed)
