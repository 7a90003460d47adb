"""Where portable-creds keeps its local state, and how private directories are made.

One data home holds everything local (the local backend's objects, the root secret, the outbox),
so backing up or wiping a machine's state is one directory. Resolution order for the data home:
an explicit ``home`` argument, ``$PORTABLE_CREDS_HOME``, ``$XDG_DATA_HOME/portable-creds``,
``~/.local/share/portable-creds``. Configuration follows the XDG config directory instead,
because it is meant to be edited and is not secret.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

ENV_HOME = "PORTABLE_CREDS_HOME"
APP_DIR = "portable-creds"

OBJECTS_DIR = "objects"
ROOT_KEY_FILE = "root.key"
OUTBOX_DIR = "outbox"
CONFIG_FILE = "config.toml"

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600

PathArg = str | os.PathLike[str]


def _xdg_dir(var: str, fallback: tuple[str, ...]) -> Path:
    # The XDG spec says relative values are invalid and must be ignored.
    value = os.environ.get(var, "")
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home().joinpath(*fallback)


def data_home(home: PathArg | None = None) -> Path:
    """The data home (absolute); not created here."""
    if home is not None and os.fspath(home) != "":
        return Path(os.path.abspath(os.path.expanduser(os.fspath(home))))
    env = os.environ.get(ENV_HOME, "")
    if env:
        return Path(os.path.abspath(os.path.expanduser(env)))
    return _xdg_dir("XDG_DATA_HOME", (".local", "share")) / APP_DIR


def objects_dir(home: PathArg | None = None) -> Path:
    """Default root of the local backend."""
    return data_home(home) / OBJECTS_DIR


def root_key_path(home: PathArg | None = None) -> Path:
    """Default root secret of ``SecretKeySource`` (``PORTABLE_CREDS_SECRET_FILE`` overrides)."""
    return data_home(home) / ROOT_KEY_FILE


def outbox_dir(home: PathArg | None = None) -> Path:
    """Where sealed blobs wait until a remote write succeeded."""
    return data_home(home) / OUTBOX_DIR


def config_path() -> Path:
    """``$XDG_CONFIG_HOME/portable-creds/config.toml`` (``~/.config/...`` by default)."""
    return _xdg_dir("XDG_CONFIG_HOME", (".config",)) / APP_DIR / CONFIG_FILE


def fsync_dir(path: PathArg) -> None:
    """Make a directory entry change (create, rename, unlink) durable.

    Without it a crash right after ``rename`` can lose the new name even though the file's
    data was fsynced. Filesystems that cannot fsync a directory are tolerated.
    """
    try:
        fd = os.open(os.fspath(path), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomic(
    path: PathArg, data: bytes, mode: int = 0o600, *, durable: bool = True
) -> None:
    """Replace ``path`` with ``data`` all at once, durably: readers see the old or the new file.

    A temp file in the same directory (created with ``mode``, so a secret is never readable by
    others, not even briefly), written and fsynced, renamed over ``path``, then the directory
    fsynced. The one implementation for the outbox, the credential cache, the config file and
    anything else. ``durable=False`` skips both fsyncs: the rename is still atomic for every
    reader and survives the death of this process, but not necessarily a power loss.
    """
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode)
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
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def fsync_file(path: PathArg) -> bool:
    """Make an existing file's contents durable; ``False`` if it does not exist (any more)."""
    try:
        fd = os.open(os.fspath(path), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return False
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def ensure_private_dir(path: PathArg) -> Path:
    """Create ``path`` and any missing parents as 0700 directories; return it.

    The mode is set with ``chmod`` after ``mkdir`` so a permissive umask cannot widen it.
    Directories that already exist are left alone: they may be shared parents such as
    ``~/.local/share`` that are not ours to tighten. Raises ``NotADirectoryError`` if a path
    component is a file.
    """
    target = Path(os.path.abspath(os.fspath(path)))
    missing: list[Path] = []
    current = target
    while not current.is_dir():
        if current.exists() or current.is_symlink():
            raise NotADirectoryError(f"{current} exists and is not a directory")
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, PRIVATE_DIR_MODE)
        except FileExistsError:
            if not directory.is_dir():
                raise NotADirectoryError(f"{directory} exists and is not a directory") from None
            continue  # created concurrently by someone else: leave its mode alone
        os.chmod(directory, PRIVATE_DIR_MODE)
        fsync_dir(directory.parent)
    return target
