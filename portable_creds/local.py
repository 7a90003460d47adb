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
from .driver import (
    Capabilities,
    Driver,
    ObjectInfo,
    ObjectStore,
    StoredObject,
    StoreTarget,
    check_object_size,
)
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

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_READ_FLAGS = os.O_RDONLY | _NOFOLLOW | _CLOEXEC
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | _CLOEXEC
_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC
#: ``openat(O_DIRECTORY|O_NOFOLLOW)`` of a link or a file: ELOOP/ENOTDIR (Linux), EMLINK (BSD).
_NOT_A_DIR = frozenset({errno.ELOOP, errno.ENOTDIR, errno.EMLINK})
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
    threads of one process as well as between processes. The directory is given as an open
    descriptor, so the lock is taken in the directory the caller walked to, not a path that
    could be swapped meanwhile.
    """

    def __init__(self, dir_fd: int) -> None:
        self._dir_fd = dir_fd
        self._fd = -1

    def __enter__(self) -> None:
        fd = os.open(LOCK_NAME, _LOCK_FLAGS, 0o600, dir_fd=self._dir_fd)
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


class _NoDirectory(Exception):
    """A key's directory is missing, or is a file or a symbolic link (never followed)."""

    def __init__(self, relative: str, *, link: bool) -> None:
        self.relative = relative
        self.link = link


def _fsync_fd(fd: int) -> None:
    with contextlib.suppress(OSError):  # filesystems that cannot fsync a directory
        os.fsync(fd)


def probe_case_sensitive(root: Path) -> bool:
    """Whether names in directory ``root`` are case-sensitive, by experiment.

    Creates a reserved, lower-case probe file and asks for its upper-case spelling: on a
    case-insensitive filesystem (macOS and Windows defaults, ext4/tmpfs ``casefold``) both
    names reach the same inode. A root that cannot be written answers ``False`` (the safe
    assumption).
    """
    name = f"{RESERVED_PREFIX}case.{secrets.token_hex(6)}x"
    dir_fd = os.open(root, _DIR_FLAGS)
    try:
        try:
            fd = os.open(name, _TEMP_FLAGS, paths.PRIVATE_FILE_MODE, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno not in _NOT_OURS:
                raise
            # A read-only root cannot be probed: assume the worst. The exact-name checks
            # are correct on either kind of filesystem, only slower.
            return False
        try:
            mine = os.fstat(fd)
            try:
                other = os.stat(name.upper(), dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                return True
            return not os.path.samestat(mine, other)
        finally:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def check_root_ownership(root: Path) -> None:
    """Refuse a root another user could write to: they could swap or plant blobs and links."""
    st = os.stat(root)
    if st.st_uid != os.geteuid():
        raise ConfigurationError(
            f"local store root {root} is owned by uid {st.st_uid}, not by this user (uid "
            f"{os.geteuid()}); its owner could replace or plant objects - use a directory you "
            "own (mkdir -m 700), or run as its owner"
        )
    if st.st_mode & 0o022:
        raise ConfigurationError(
            f"local store root {root} is group- or world-writable (mode "
            f"{stat.S_IMODE(st.st_mode):04o}); other users could replace or plant objects - "
            f"run 'chmod 700 {root}', or choose another root"
        )


class LocalObjectStore(ObjectStore):
    """A directory tree as an object store; ``wallet=None`` is the administrative view.

    Every path below the root is walked one directory at a time with ``openat`` and
    ``O_NOFOLLOW``: a symbolic link (or a file) where a directory of keys should be is never
    followed, so nothing outside the root can be read, listed, replaced or deleted through it.
    ``case_sensitive=None`` probes the root's filesystem; on a case-insensitive one every name
    is compared exactly (see ``_exact``), so ``OpenAI`` and ``openai`` never share a file.
    """

    capabilities = Capabilities(
        create_only=True,
        if_match=True,
        federation=False,
        server_side_isolation=True,
        scoped_credentials="client",
    )

    def __init__(
        self,
        root: paths.PathArg,
        *,
        wallet: str | None = None,
        case_sensitive: bool | None = None,
    ) -> None:
        self.wallet = None if wallet is None else names.validate_wallet(wallet)
        try:
            self.root = paths.ensure_private_dir(root).resolve()
            check_root_ownership(self.root)
            self.case_sensitive = (
                probe_case_sensitive(self.root) if case_sensitive is None else case_sensitive
            )
        except OSError as exc:
            raise ConfigurationError(
                f"cannot use {os.fspath(root)!r} as the local store root: "
                f"{exc.strerror or exc}; pick a writable directory (local:///abs/path)"
            ) from None
        self._swept: set[tuple[str, ...]] = set()

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
        if not self.case_sensitive and any(
            _WALLET_SHAPED.fullmatch(seg) and seg != seg.lower() for seg in segments
        ):
            raise InvalidName(
                f"storage key {key!r}: on a case-insensitive filesystem wallet segments must be "
                "lower case (another spelling would share the wallet's directory)"
            )
        return segments

    def _conflict(self, key: str) -> InvalidName:
        return InvalidName(
            f"storage key {key!r} conflicts with existing keys on the local backend: a name "
            "cannot be both an object and a directory of other objects; choose another key"
        )

    def _link_refused(self, key: str, relative: str) -> ConfigurationError:
        return ConfigurationError(
            f"local store {self.root}: {relative!r} (on the way to {key!r}) is a symbolic link; "
            "the local driver never follows links inside its root - remove it"
        )

    def _alias(self, key: str) -> InvalidName:
        return InvalidName(
            f"storage key {key!r} differs only in letter case from an existing name on this "
            "case-insensitive filesystem; the two would share one file - choose another name"
        )

    # -- walking ---------------------------------------------------------------------------

    def _exact(self, dir_fd: int, name: str) -> bool:
        """On a case-insensitive filesystem: is ``name`` present with exactly this spelling?

        Lower-case wallet segments are not listed (their parent holds every tenant, and no
        other spelling of a wallet can be created here: ``_segments`` refuses it), so no
        operation lists a directory that grows with the number of tenants.
        """
        if self.case_sensitive or (_WALLET_SHAPED.fullmatch(name) and name == name.lower()):
            return True
        return name in self._listing(dir_fd)

    def _listing(self, dir_fd: int) -> builtins.list[str]:
        """The names a directory holds, spelled as stored (a hook for simulating filesystems)."""
        return os.listdir(dir_fd)

    def _open_dir(self, segments: list[str], *, create: bool = False) -> int:
        """A descriptor of ``<root>/<segments...>``, walked without following any link.

        Raises ``_NoDirectory`` when a component is missing (reads) or is not a real
        directory. ``create`` makes missing directories 0700 (writes).
        """
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            for depth, segment in enumerate(segments):
                relative = "/".join(segments[: depth + 1])
                created = False
                if create:
                    try:
                        os.mkdir(segment, paths.PRIVATE_DIR_MODE, dir_fd=fd)
                        created = True
                    except FileExistsError:
                        pass
                if not created and not self._exact(fd, segment):
                    raise _NoDirectory(relative, link=False)
                try:
                    child = os.open(segment, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    raise _NoDirectory(relative, link=False) from None
                except OSError as exc:
                    if exc.errno not in _NOT_A_DIR:
                        raise
                    is_link = stat.S_ISLNK(
                        os.stat(segment, dir_fd=fd, follow_symlinks=False).st_mode
                    )
                    raise _NoDirectory(relative, link=is_link) from None
                if created:
                    os.fchmod(child, paths.PRIVATE_DIR_MODE)
                    _fsync_fd(fd)
                os.close(fd)
                fd = child
            return fd
        except BaseException:
            os.close(fd)
            raise

    # -- writes ----------------------------------------------------------------------------

    def _sweep_stale_temps(self, dir_fd: int) -> None:
        """Remove temp files a killed writer left behind; once per directory per store.

        They were never visible as objects, but they would accumulate.
        """
        cutoff = time.time() - STALE_TEMP_SECONDS
        with contextlib.suppress(OSError), os.scandir(dir_fd) as entries:
            for entry in entries:
                if entry.name.startswith(TEMP_PREFIX) and entry.is_file(follow_symlinks=False):
                    with contextlib.suppress(OSError):
                        if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                            os.unlink(entry.name, dir_fd=dir_fd)

    def _write_temp(self, dir_fd: int, data: bytes) -> str:
        while True:
            temp = f"{TEMP_PREFIX}{secrets.token_hex(8)}"
            try:
                fd = os.open(temp, _TEMP_FLAGS, paths.PRIVATE_FILE_MODE, dir_fd=dir_fd)
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
                os.unlink(temp, dir_fd=dir_fd)
            raise
        os.close(fd)
        return temp

    def _lstat(self, dir_fd: int, name: str) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
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
        *parents, name = segments
        try:
            dir_fd = self._open_dir(parents, create=True)
        except _NoDirectory as exc:
            if exc.link:
                raise self._link_refused(key, exc.relative) from None
            if self._lstat_parent_exists(parents):
                raise (self._conflict(key) if self.case_sensitive else self._alias(key)) from None
            raise self._conflict(key) from None
        try:
            directory = tuple(parents)
            if directory not in self._swept:
                self._swept.add(directory)
                self._sweep_stale_temps(dir_fd)
            temp = self._write_temp(dir_fd, payload)
            leftover: str | None = temp
            try:
                with _DirLock(dir_fd):
                    self._check_target(dir_fd, name, key)
                    if if_none_match:
                        try:
                            os.link(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                        except FileExistsError:
                            raise PreconditionFailed(
                                f"create-only put of {key!r} lost: the object already exists"
                            ) from None
                    else:
                        if if_match is not None:
                            current = self._current_etag(dir_fd, name, key)
                            if current is None or current != if_match.strip('"'):
                                raise PreconditionFailed(
                                    f"conditional put of {key!r} lost: the object "
                                    + (
                                        "no longer exists"
                                        if current is None
                                        else "changed meanwhile"
                                    )
                                    + "; re-read it and retry"
                                )
                        os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                        leftover = None
            finally:
                if leftover is not None:
                    with contextlib.suppress(OSError):
                        os.unlink(leftover, dir_fd=dir_fd)
            _fsync_fd(dir_fd)
        finally:
            os.close(dir_fd)
        return etag_of(payload)

    def _lstat_parent_exists(self, parents: list[str]) -> bool:
        """After a failed walk: does some spelling of the path exist (an alias, not a file)?"""
        try:
            st = os.stat(self.root.joinpath(*parents), follow_symlinks=False)
        except OSError:
            return False
        return stat.S_ISDIR(st.st_mode)

    def _check_target(self, dir_fd: int, name: str, key: str) -> None:
        """Under the directory lock: the name is free, or exactly our object (not an alias)."""
        st = self._lstat(dir_fd, name)
        if st is None:
            return
        if stat.S_ISDIR(st.st_mode):
            raise self._conflict(key)
        if not self._exact(dir_fd, name):
            raise self._alias(key)

    def _current_etag(self, dir_fd: int, name: str, key: str) -> str | None:
        try:
            return etag_of(self._read_at(dir_fd, name, key))
        except NotFound:
            return None

    def delete(self, key: str) -> None:
        with _fs_errors(key, self.root):
            self._delete(key)

    def _delete(self, key: str) -> None:
        *parents, name = self._segments(key)
        try:
            dir_fd = self._open_dir(parents)
        except _NoDirectory:
            return  # nothing of ours there (a link to elsewhere is never followed)
        try:
            with _DirLock(dir_fd):
                st = self._lstat(dir_fd, name)
                if st is None or not stat.S_ISREG(st.st_mode):
                    return  # a directory of other keys (or a link) is not an object
                if not self._exact(dir_fd, name):
                    return  # another spelling's object is not this key's
                os.unlink(name, dir_fd=dir_fd)
            _fsync_fd(dir_fd)
        finally:
            os.close(dir_fd)

    # -- reads -----------------------------------------------------------------------------

    def _read_at(self, dir_fd: int, name: str, key: str, max_size: int | None = None) -> bytes:
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound(f"no object at {key!r}") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a symlink: never an object of ours
                raise NotFound(f"no object at {key!r}") from None
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or not self._exact(dir_fd, name):
                raise NotFound(f"no object at {key!r}")
            if max_size is not None:
                check_object_size(key, st.st_size, max_size)
            limit = -1 if max_size is None else max_size + 1
            chunks: list[bytes] = []
            total = 0
            while chunk := os.read(fd, 1 << 20 if limit < 0 else min(1 << 20, limit - total)):
                chunks.append(chunk)
                total += len(chunk)
                if 0 <= limit <= total:
                    break
            data = b"".join(chunks)
            if max_size is not None:
                check_object_size(key, len(data), max_size)  # grew since fstat
            return data
        finally:
            os.close(fd)

    def _read(self, segments: list[str], key: str, max_size: int | None = None) -> bytes:
        *parents, name = segments
        try:
            dir_fd = self._open_dir(parents)
        except _NoDirectory:
            raise NotFound(f"no object at {key!r}") from None
        try:
            return self._read_at(dir_fd, name, key, max_size)
        finally:
            os.close(dir_fd)

    def get(self, key: str) -> StoredObject:
        with _fs_errors(key, self.root):
            data = self._read(self._segments(key), key)
        return StoredObject(data=data, etag=etag_of(data))

    def get_capped(self, key: str, *, max_size: int) -> StoredObject:
        """Refuse an object above ``max_size`` by its size on disk, before reading it."""
        with _fs_errors(key, self.root):
            data = self._read(self._segments(key), key, max_size)
        return StoredObject(data=data, etag=etag_of(data))

    def head(self, key: str) -> ObjectInfo:
        with _fs_errors(key, self.root):
            data = self._read(self._segments(key), key)
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
        """Every key below ``complete``; each directory is reopened from the root (no links)."""
        stack: builtins.list[tuple[builtins.list[str], bool]] = [(complete, True)]
        while stack:
            segments, top = stack.pop()
            try:
                dir_fd = self._open_dir(segments)
            except _NoDirectory:
                continue
            try:
                with os.scandir(dir_fd) as it:
                    entries = [
                        (e.name, e.is_dir(follow_symlinks=False), e.is_file(follow_symlinks=False))
                        for e in it
                    ]
            finally:
                os.close(dir_fd)
            key_prefix = "".join(f"{s}/" for s in segments)
            for name, is_dir, is_file in entries:
                if name.startswith(RESERVED_PREFIX) or (top and not name.startswith(partial)):
                    continue
                key = key_prefix + name
                try:
                    key_segments = split_key(key)  # skips names no key could have produced
                except InvalidName:
                    continue
                if is_dir:
                    stack.append((key_segments, False))
                elif is_file and (
                    self.wallet is None or tenant_may_access(key_segments, self.wallet)
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
                    data = self._read(key.split("/"), key)
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
