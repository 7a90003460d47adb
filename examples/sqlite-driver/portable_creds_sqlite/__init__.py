"""A portable-creds driver storing objects in one SQLite file: ``sqlite:///abs/path.db``.

Written against the public plugin API only. Each store has its own connection (WAL mode, so
readers do not block the writer); conditional writes are single statements, so they are atomic
across threads and processes. Tenant scoping is the driver's own check (see ``_allowed``).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

from portable_creds.driver import (
    Capabilities,
    Driver,
    ObjectInfo,
    ObjectStore,
    StoredObject,
    StoreTarget,
)
from portable_creds.errors import (
    AccessDenied,
    ConfigurationError,
    InvalidName,
    NotFound,
    PreconditionFailed,
    TransientError,
)

PAGE = 256  # listing reads pages of this many rows, like a cloud API would
_WALLET = re.compile(r"0x[0-9a-fA-F]{40}")
_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS objects (key TEXT PRIMARY KEY, data BLOB NOT NULL, etag TEXT)"
)


def _check_key(key: str) -> list[str]:
    """Keys are '/'-separated non-empty segments; '.', '..' and control characters are refused."""
    segments = key.split("/") if isinstance(key, str) else []
    if not segments or any(s in ("", ".", "..") or any(ord(c) < 32 for c in s) for s in segments):
        raise InvalidName(f"invalid storage key {key!r}: use '/'-separated names, no '.' or '..'")
    return segments


def _allowed(segments: list[str], wallet: str) -> bool:
    """The tenant's keys: its wallet is a directory segment and no other wallet appears."""
    return wallet in segments[:-1] and all(
        s == wallet or not _WALLET.fullmatch(s) for s in segments
    )


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    """SQLite errors -> portable_creds errors, by result code (never by message)."""
    try:
        yield
    except sqlite3.Error as exc:
        code = getattr(exc, "sqlite_errorcode", 0)
        if code & 0xFF == sqlite3.SQLITE_CONSTRAINT:  # the primary key: create-only lost
            raise PreconditionFailed("the object already exists") from None
        if code & 0xFF in _BUSY:
            raise TransientError("the SQLite database is busy; retry") from exc
        raise ConfigurationError(f"SQLite error {getattr(exc, 'sqlite_errorname', code)}") from exc


class SqliteObjectStore(ObjectStore):
    capabilities = Capabilities(create_only=True, if_match=True)

    def __init__(self, path: Path, *, wallet: str | None) -> None:
        self.path, self.wallet = path, wallet
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))  # created private, before SQLite
        self._lock = threading.Lock()
        with _mapped():
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout = 10000")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute(_SCHEMA)

    @property
    def backend_id(self) -> str:
        return f"sqlite:{self.path}"

    def _key(self, key: str) -> str:
        segments = _check_key(key)
        if self.wallet is not None and not _allowed(segments, self.wallet):
            raise AccessDenied(f"access denied to {key!r} for wallet {self.wallet}")
        return key

    def _run(self, sql: str, *args: object) -> tuple[list[tuple[object, ...]], int]:
        """Execute and fetch under the lock (one connection, many threads): rows, rowcount."""
        with self._lock, _mapped():
            cur = self._db.execute(sql, args)
            return cur.fetchall(), cur.rowcount

    def put(self, key: str, data: bytes, *, if_none_match: bool = False,
            if_match: str | None = None) -> str:
        key, etag = self._key(key), secrets.token_hex(16)
        if if_none_match:
            self._run("INSERT INTO objects VALUES (?, ?, ?)", key, bytes(data), etag)
        elif if_match is not None:
            _, count = self._run("UPDATE objects SET data = ?, etag = ? WHERE key = ? AND etag = ?",
                                 bytes(data), etag, key, if_match)
            if count != 1:
                raise PreconditionFailed(f"{key!r} is absent or changed (ETag mismatch)")
        else:
            self._run("INSERT INTO objects VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                      "data = excluded.data, etag = excluded.etag", key, bytes(data), etag)
        return etag

    def get(self, key: str) -> StoredObject:
        rows, _ = self._run("SELECT data, etag FROM objects WHERE key = ?", self._key(key))
        if not rows:
            raise NotFound(f"no object at {key!r}")
        data, etag = rows[0]
        assert isinstance(data, bytes) and isinstance(etag, str)
        return StoredObject(data, etag)

    def head(self, key: str) -> ObjectInfo:
        sql = "SELECT length(data), etag FROM objects WHERE key = ?"
        rows, _ = self._run(sql, self._key(key))
        if not rows:
            raise NotFound(f"no object at {key!r}")
        size, etag = rows[0]
        assert isinstance(size, int) and isinstance(etag, str)
        return ObjectInfo(key, size, etag)

    def delete(self, key: str) -> None:
        self._run("DELETE FROM objects WHERE key = ?", self._key(key))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        if self.wallet is not None:
            complete = prefix.split("/")[:-1]
            if not _allowed([*complete, ""], self.wallet):
                raise AccessDenied(f"access denied to list {prefix!r} for wallet {self.wallet}")
        return self._pages(prefix)

    def _pages(self, prefix: str) -> Iterator[ObjectInfo]:
        after = ""
        while True:
            rows, _ = self._run(
                "SELECT key, length(data), etag FROM objects WHERE substr(key, 1, ?) = ? "
                "AND key > ? ORDER BY key LIMIT ?", len(prefix), prefix, after, PAGE)
            for key, size, etag in rows:
                assert isinstance(key, str) and isinstance(size, int) and isinstance(etag, str)
                if self.wallet is None or _allowed(key.split("/"), self.wallet):
                    yield ObjectInfo(key, size, etag)
            if len(rows) < PAGE:
                return
            after = str(rows[-1][0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


class SqliteDriver(Driver):
    """``sqlite:///abs/path.db``; ``wallet=None`` opens the administrative view."""

    name = "sqlite"

    def open_object_store(self, target: StoreTarget) -> ObjectStore:
        path = unquote(urlsplit(target.url).path)
        if not path.startswith("/"):
            raise ConfigurationError(f"{target.url!r}: use sqlite:///absolute/path.db")
        try:
            return SqliteObjectStore(Path(path), wallet=target.wallet)
        except OSError as exc:
            raise ConfigurationError(f"cannot open {path}: {exc.strerror}") from None


__all__ = ["SqliteDriver", "SqliteObjectStore", "__version__"]

__version__ = "0.1.0"
