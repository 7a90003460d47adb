"""The local driver: a directory tree as an object store, the embedded default backend.

Storage key ``a/b/c`` is the file ``<root>/a/b/c``. What the driver guarantees, and how:

* **No partial files, ever.** Every write goes to a private temporary file in the target's
  directory, is fsynced, then renamed (or hard-linked, for create-only) over the name and the
  directory is fsynced. Readers open one inode and read it whole, so they see the old bytes or
  the new bytes, never a mix. Temporary and lock files carry the reserved segment prefix
  ``.pc~``, which no key may use, so they are never listed nor addressable.
* **Conditional writes are atomic across threads and processes.** Every mutation of a
  directory (put, conditional put, delete) holds an exclusive ``flock`` on that directory's
  lock file while it checks and renames, so an if-match compare-and-swap cannot interleave with
  another writer. Create-only additionally uses ``link(2)``, which fails if the name exists, so
  exactly one of any number of racers wins even without the lock. ETags are SHA-256 of content.
* **Private on disk.** Directories are 0700 and files 0600, set with ``chmod``/``fchmod`` so
  the umask cannot widen them.
* **Tenant scoping, enforced by the storage layer itself.** A store opened for wallet ``W`` may
  touch a key only if ``W`` is one of its segments, not the last one (there is something
  *below* ``W``), and no segment is any other wallet (``0x`` + 40 hex digits, any case). The
  prefix in front of ``W`` is free, so configurable layouts such as ``conformance/run1/bots/W/``
  work. Two tenants' key sets are disjoint: a key both could touch would need a segment equal to
  each wallet, which the second condition forbids; and a wallet spelled in another case is a
  different, forbidden segment, so case-insensitive filesystems cannot be used to alias either.
  Listing is allowed only for prefixes whose complete segments already satisfy the rule
  (``<...>/W/`` or deeper); anything else is ``AccessDenied``, as is every out-of-scope key.
  A store opened without a wallet is an administrative view with no scoping.

POSIX only (``flock``, ``link``, directory fsync).
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import hashlib
import os
import re
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

from . import names, paths
from .driver import Capabilities, Driver, ObjectInfo, ObjectStore, StoredObject, StoreTarget
from .errors import (
    AccessDenied,
    ConfigurationError,
    InvalidName,
    NotFound,
    PortableCredsError,
    PreconditionFailed,
    TransientError,
)

RESERVED_PREFIX = ".pc~"
"""Segment prefix reserved for the driver's own temporary and lock files."""
LOCK_NAME = RESERVED_PREFIX + "lock"
TEMP_PREFIX = RESERVED_PREFIX + "tmp."
STALE_TEMP_SECONDS = 15 * 60
"""A temp file this old was left by a writer that died (a live one keeps it for milliseconds)."""

MAX_KEY_BYTES = 1024  # S3's limit, so keys stay portable between backends
MAX_SEGMENT_BYTES = 255  # NAME_MAX on common filesystems

_WALLET_SHAPED = re.compile(r"0x[0-9a-fA-F]{40}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_TEMP_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


def etag_of(data: bytes) -> str:
    """The ETag the local driver gives ``data``: its SHA-256, hex."""
    return hashlib.sha256(data).hexdigest()


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidName(f"invalid {what} {_shown(value)}: expected a string")
    if _CONTROL.search(value) or "\\" in value:
        raise InvalidName(
            f"invalid {what} {_shown(value)}: control characters and backslashes are not allowed"
        )
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidName(f"invalid {what} {_shown(value)}: not valid UTF-8") from None
    if len(encoded) > MAX_KEY_BYTES:
        raise InvalidName(f"invalid {what}: longer than {MAX_KEY_BYTES} bytes")
    if value.startswith("/"):
        raise InvalidName(
            f"invalid {what} {_shown(value)}: keys are relative to the store; drop the leading '/'"
        )
    return value


def _check_segment(segment: str, value: str, what: str) -> None:
    if segment == "":
        raise InvalidName(
            f"invalid {what} {_shown(value)}: empty path segment ('//' or a trailing '/')"
        )
    if segment in (".", ".."):
        raise InvalidName(f"invalid {what} {_shown(value)}: '.' and '..' segments are not allowed")
    if segment.startswith(RESERVED_PREFIX):
        raise InvalidName(
            f"invalid {what} {_shown(value)}: segments starting with {RESERVED_PREFIX!r} are "
            "reserved for the local driver's temporary files"
        )
    if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
        raise InvalidName(
            f"invalid {what}: a path segment is longer than {MAX_SEGMENT_BYTES} bytes"
        )


def split_key(key: str) -> list[str]:
    """Validate a storage key and return its segments, or raise ``InvalidName``."""
    _check_text(key, "storage key")
    if key == "":
        raise InvalidName("invalid storage key '': a key cannot be empty")
    segments = key.split("/")
    for segment in segments:
        _check_segment(segment, key, "storage key")
    return segments


def split_prefix(prefix: str) -> tuple[list[str], str]:
    """Validate a listing prefix: (complete directory segments, trailing partial segment)."""
    _check_text(prefix, "listing prefix")
    *complete, partial = prefix.split("/")
    for segment in complete:
        _check_segment(segment, prefix, "listing prefix")
    return complete, partial


def tenant_may_access(segments: list[str], wallet: str) -> bool:
    """The scoping rule (see the module docstring) for a key's segments."""
    below_wallet = False
    for index, segment in enumerate(segments):
        if _WALLET_SHAPED.fullmatch(segment):
            if segment != wallet:
                return False
            if index < len(segments) - 1:
                below_wallet = True
    return below_wallet


def tenant_may_list(complete: list[str], wallet: str) -> bool:
    """A listing prefix is in scope if its complete segments already name the tenant's area."""
    return tenant_may_access([*complete, ""], wallet)


_NOT_OURS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
_RETRYABLE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EAGAIN, errno.EINTR})


@contextlib.contextmanager
def _fs_errors(key: str, root: Path) -> Iterator[None]:
    """Turn filesystem failures into the typed errors callers (and the CLI) branch on."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if exc.errno in _NOT_OURS:
            raise ConfigurationError(
                f"local store {root} cannot be used for {key!r}: {reason}; check the "
                "directory's owner and permissions, or choose another root (local:///abs/path)"
            ) from None
        if exc.errno in _RETRYABLE:
            raise TransientError(
                f"local store {root} failed for {key!r}: {reason}; free space or fix the "
                "filesystem, then retry"
            ) from None
        raise PortableCredsError(f"local store {root} failed for {key!r}: {reason}") from None


class _DirLock:
    """Exclusive ``flock`` on a directory's lock file, serialising that directory's mutations.

    ``flock`` locks belong to the open file description, so separate opens conflict between
    threads of one process as well as between processes.
    """

    def __init__(self, directory: Path) -> None:
        self._path = directory / LOCK_NAME
        self._fd = -1

    def __enter__(self) -> None:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            os.fchmod(fd, paths.PRIVATE_FILE_MODE)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def __exit__(self, *exc: object) -> None:
        fd, self._fd = self._fd, -1
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


class LocalObjectStore(ObjectStore):
    """A directory tree as an object store; ``wallet=None`` is the administrative view."""

    capabilities = Capabilities(
        create_only=True,
        if_match=True,
        federation=False,
        server_side_isolation=True,
        scoped_credentials="client",
    )

    def __init__(self, root: paths.PathArg, *, wallet: str | None = None) -> None:
        self.wallet = None if wallet is None else names.validate_wallet(wallet)
        try:
            self.root = paths.ensure_private_dir(root).resolve()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot use {os.fspath(root)!r} as the local store root: "
                f"{exc.strerror or exc}; pick a writable directory (local:///abs/path)"
            ) from None
        self._swept: set[Path] = set()

    def __repr__(self) -> str:
        return f"LocalObjectStore(root={str(self.root)!r}, wallet={self.wallet!r})"

    @property
    def backend_id(self) -> str:
        return f"local:{self.root}"

    # -- validation and scoping ------------------------------------------------------------

    def _segments(self, key: str) -> list[str]:
        segments = split_key(key)
        if self.wallet is not None and not tenant_may_access(segments, self.wallet):
            raise AccessDenied(
                f"access denied to {key!r}: a store opened for wallet {self.wallet} may only "
                f"use keys below '<prefix>/{self.wallet}/'"
            )
        return segments

    def _path(self, segments: list[str]) -> Path:
        return self.root.joinpath(*segments)

    def _conflict(self, key: str) -> InvalidName:
        return InvalidName(
            f"storage key {key!r} conflicts with existing keys on the local backend: a name "
            "cannot be both an object and a directory of other objects; choose another key"
        )

    # -- writes ----------------------------------------------------------------------------

    def _ensure_parent(self, segments: list[str], key: str) -> Path:
        directory = self.root
        for segment in segments[:-1]:
            directory = directory / segment
            try:
                os.mkdir(directory, paths.PRIVATE_DIR_MODE)
            except FileExistsError:
                if not directory.is_dir() or directory.is_symlink():
                    raise self._conflict(key) from None
                continue
            os.chmod(directory, paths.PRIVATE_DIR_MODE)
            paths.fsync_dir(directory.parent)
        return directory

    def _sweep_stale_temps(self, directory: Path) -> None:
        """Remove temp files a killed writer left behind; once per directory per store.

        They were never visible as objects, but they would accumulate.
        """
        self._swept.add(directory)
        cutoff = time.time() - STALE_TEMP_SECONDS
        with contextlib.suppress(OSError), os.scandir(directory) as entries:
            for entry in entries:
                if entry.name.startswith(TEMP_PREFIX) and entry.is_file(follow_symlinks=False):
                    with contextlib.suppress(OSError):
                        if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                            os.unlink(entry.path)

    def _write_temp(self, directory: Path, data: bytes) -> Path:
        while True:
            temp = directory / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
            try:
                fd = os.open(temp, _TEMP_FLAGS, paths.PRIVATE_FILE_MODE)
            except FileExistsError:
                continue
            break
        try:
            os.fchmod(fd, paths.PRIVATE_FILE_MODE)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        os.close(fd)
        return temp

    def _current_etag(self, path: Path) -> str | None:
        try:
            return etag_of(self._read(path))
        except NotFound:
            return None

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> str:
        with _fs_errors(key, self.root):
            return self._put(key, data, if_none_match=if_none_match, if_match=if_match)

    def _put(self, key: str, data: bytes, *, if_none_match: bool, if_match: str | None) -> str:
        segments = self._segments(key)
        if if_none_match and if_match is not None:
            raise ConfigurationError(
                "put: pass either if_none_match=True (create-only) or if_match=etag, not both"
            )
        payload = bytes(data)
        path = self._path(segments)
        directory = self._ensure_parent(segments, key)
        if directory not in self._swept:
            self._sweep_stale_temps(directory)
        temp = self._write_temp(directory, payload)
        leftover: Path | None = temp
        try:
            with _DirLock(directory):
                if path.is_dir() and not path.is_symlink():
                    raise self._conflict(key)
                if if_none_match:
                    try:
                        os.link(temp, path)
                    except FileExistsError:
                        raise PreconditionFailed(
                            f"create-only put of {key!r} lost: the object already exists"
                        ) from None
                else:
                    if if_match is not None:
                        current = self._current_etag(path)
                        if current is None or current != if_match.strip('"'):
                            raise PreconditionFailed(
                                f"conditional put of {key!r} lost: the object "
                                + ("no longer exists" if current is None else "changed meanwhile")
                                + "; re-read it and retry"
                            )
                    os.replace(temp, path)
                    leftover = None
        finally:
            if leftover is not None:
                with contextlib.suppress(OSError):
                    os.unlink(leftover)
        paths.fsync_dir(directory)
        return etag_of(payload)

    def delete(self, key: str) -> None:
        with _fs_errors(key, self.root):
            self._delete(key)

    def _delete(self, key: str) -> None:
        segments = self._segments(key)
        path = self._path(segments)
        directory = path.parent
        if not directory.is_dir():
            return
        with _DirLock(directory):
            try:
                st = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                return
            if not stat.S_ISREG(st.st_mode):
                return  # a directory of other keys is not an object: nothing to delete
            os.unlink(path)
        paths.fsync_dir(directory)

    # -- reads -----------------------------------------------------------------------------

    def _read(self, path: Path) -> bytes:
        try:
            fd = os.open(path, _READ_FLAGS)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound(f"no object at {self._key_of(path)!r}") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a symlink: never an object of ours
                raise NotFound(f"no object at {self._key_of(path)!r}") from None
            raise
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise NotFound(f"no object at {self._key_of(path)!r}")
            chunks: list[bytes] = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def _key_of(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def get(self, key: str) -> StoredObject:
        with _fs_errors(key, self.root):
            data = self._read(self._path(self._segments(key)))
        return StoredObject(data=data, etag=etag_of(data))

    def head(self, key: str) -> ObjectInfo:
        with _fs_errors(key, self.root):
            data = self._read(self._path(self._segments(key)))
        return ObjectInfo(key=key, size=len(data), etag=etag_of(data))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        complete, partial = split_prefix(prefix)
        if self.wallet is not None and not tenant_may_list(complete, self.wallet):
            raise AccessDenied(
                f"access denied to list {prefix!r}: a store opened for wallet {self.wallet} "
                f"may only list below '<prefix>/{self.wallet}/'"
            )
        with _fs_errors(prefix, self.root):
            keys = sorted(self._collect(complete, partial), key=lambda k: k.encode("utf-8"))
        return self._infos(keys)

    def _collect(self, complete: builtins.list[str], partial: str) -> Iterator[str]:
        base = self.root.joinpath(*complete)
        start = "".join(f"{s}/" for s in complete)
        stack: builtins.list[tuple[Path, str, bool]] = [(base, start, True)]
        while stack:
            directory, key_prefix, top = stack.pop()
            try:
                entries = list(os.scandir(directory))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                name = entry.name
                if name.startswith(RESERVED_PREFIX) or (top and not name.startswith(partial)):
                    continue
                key = key_prefix + name
                try:
                    segments = split_key(key)  # skips names no key could have produced
                except InvalidName:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), key + "/", False))
                elif entry.is_file(follow_symlinks=False) and (
                    self.wallet is None or tenant_may_access(segments, self.wallet)
                ):
                    yield key

    def list_wallets(self, prefix: str) -> Iterator[str]:
        """Wallet directories under ``<root>/<prefix>/`` holding at least one object.

        Administrative only: a tenant store has no business enumerating other tenants.
        """
        from .fleet import is_canonical_wallet

        if self.wallet is not None:
            raise AccessDenied(
                f"access denied: a store opened for wallet {self.wallet} cannot list wallets"
            )
        base = self.root.joinpath(*split_key(names.validate_prefix(prefix)))
        try:
            entries = sorted(os.scandir(base), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return iter(())
        found = [
            e.name
            for e in entries
            if is_canonical_wallet(e.name)
            and e.is_dir(follow_symlinks=False)
            and next(self._collect([*base.relative_to(self.root).parts, e.name], ""), None)
        ]
        return iter(found)

    def _infos(self, keys: builtins.list[str]) -> Iterator[ObjectInfo]:
        for key in keys:
            try:
                with _fs_errors(key, self.root):
                    data = self._read(self._path(key.split("/")))
            except NotFound:
                continue  # deleted while we were listing
            yield ObjectInfo(key=key, size=len(data), etag=etag_of(data))


def root_from_url(url: str, home: paths.PathArg | None = None) -> Path:
    """``local:`` / ``local://`` -> the default root; ``local:///abs/path`` -> that path."""
    parts = urlsplit(url)
    if parts.scheme != "local":
        raise ConfigurationError(f"not a local backend URL: {url!r}; use local:///abs/path")
    if parts.netloc not in ("", "localhost"):
        raise ConfigurationError(
            f"local backend URL {url!r} names a host; use local:///abs/path (three slashes)"
        )
    raw = unquote(parts.path)
    if raw == "":
        return paths.objects_dir(home)
    if raw.startswith("~"):
        raw = os.path.expanduser(raw)
    if not os.path.isabs(raw):
        raise ConfigurationError(
            f"local backend URL {url!r} needs an absolute path: local:///abs/path"
        )
    return Path(raw)


class LocalDriver(Driver):
    """``local:`` URLs. Options: ``home`` (data home for the default root)."""

    name = "local"

    def open_object_store(self, target: StoreTarget) -> LocalObjectStore:
        home = target.options.get("home")
        root = root_from_url(target.url, home if isinstance(home, str | os.PathLike) else None)
        return LocalObjectStore(root, wallet=target.wallet)
