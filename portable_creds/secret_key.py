"""SecretKeySource: KEKs derived with HKDF-SHA256 from a 32-byte root secret kept on the client.

Why HKDF over one root secret rather than one stored key per service: the root is the only
thing to back up, every (wallet, service) still gets its own KEK, and rotating is a version
bump (a new KEK for everything) followed by ``rewrap``, without re-encrypting any payload.

The exact derivation is normative (docs/format.md, "SecretKeySource")::

    fingerprint = HMAC-SHA256(key=root, msg=b"portable-creds/v1 root fingerprint")[0:8]
    kek_id      = "sk.v" + decimal(version) + "." + hex(fingerprint)
    info        = b"portable-creds/v1 secret-key kek" || u32(version)
                  || u16(len(w)) || w || u16(len(s)) || s      (w = ASCII-lowercased wallet)
    KEK         = HKDF-SHA256(ikm=root, salt=b"portable-creds/v1 secret-key source", info, L=32)

The fingerprint is in the KEK id so that a blob sealed under another root secret is rejected
by ``kek_for_id`` before any decryption is attempted (it is an HMAC: it reveals nothing usable
about the root).
"""

from __future__ import annotations

import contextlib
import hmac
import os
import re
import stat
import tempfile
import threading
from collections.abc import Iterable
from hashlib import sha256
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import ConfigurationError, IntegrityError
from .keys import Kek, KeySource
from .paths import fsync_dir

ROOT_LEN = 32
MAX_VERSION = 2**32 - 1

FINGERPRINT_LABEL = b"portable-creds/v1 root fingerprint"
HKDF_SALT = b"portable-creds/v1 secret-key source"
HKDF_INFO_PREFIX = b"portable-creds/v1 secret-key kek"

_KEK_ID_RE = re.compile(r"sk\.v([1-9][0-9]{0,9})\.([0-9a-f]{16})")


def _u16(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def _check_version(version: int, what: str) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise ConfigurationError(f"{what} {version!r} is not an integer in 1..{MAX_VERSION}")
    return version


_CACHE_SIZE = 4096


def root_fingerprint(root: bytes) -> str:
    """16 hex chars identifying a root secret (HMAC, so it reveals nothing about the root)."""
    return hmac.new(root, FINGERPRINT_LABEL, sha256).digest()[:8].hex()


def derive_kek(root: bytes, wallet: str, service: str, version: int) -> bytes:
    """The raw 32-byte KEK for (wallet, service) at ``version``; see the module docstring."""
    info = (
        HKDF_INFO_PREFIX
        + version.to_bytes(4, "big")
        + _u16(wallet.encode("utf-8").lower())
        + _u16(service.encode("utf-8"))
    )
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=HKDF_SALT, info=info).derive(root)


def _parse_root(data: bytes, origin: str) -> bytes:
    """Accept exactly 32 raw bytes, or 64 hex characters (surrounding whitespace ignored)."""
    if len(data) == ROOT_LEN:
        return data
    text = data.strip()
    if len(text) == 2 * ROOT_LEN:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    raise ConfigurationError(
        f"{origin} does not hold a root secret: expected 32 raw bytes or 64 hex characters "
        f"(got {len(data)} bytes); create a new one with SecretKeySource.create_file"
    )


class SecretKeySource(KeySource):
    """KEKs from a local 32-byte root secret, versioned for rotation.

    Seals with ``version``; opens blobs of ``version`` and of every version in
    ``accept_versions``. ``accept_versions=None`` (the default) accepts every version from 1
    to ``version``: after a rotation plus ``rewrap`` pass ``accept_versions=()`` to refuse
    the retired versions.
    """

    def __init__(
        self, root: bytes, version: int = 1, *, accept_versions: Iterable[int] | None = None
    ) -> None:
        if not isinstance(root, bytes | bytearray) or len(root) != ROOT_LEN:
            raise ConfigurationError(
                "a root secret is exactly 32 bytes; generate one with SecretKeySource.create_file"
            )
        self._root = bytes(root)
        self.version = _check_version(version, "KEK version")
        #: ``None``: every version up to ``version``; else exactly these plus ``version``.
        self.accept_versions: frozenset[int] | None = None
        if accept_versions is not None:
            self.accept_versions = frozenset(
                _check_version(v, "accepted KEK version") for v in accept_versions
            ) | {self.version}
        self.fingerprint = root_fingerprint(self._root)
        # Derived KEKs are cached: the root that derives them is in memory anyway, and a
        # derivation (HKDF + a Kek value) is most of a small put's client-side CPU.
        self._cache: dict[tuple[str, str, int], Kek] = {}
        self._cache_lock = threading.Lock()

    def __repr__(self) -> str:
        accepted = (
            f"1..{self.version}" if self.accept_versions is None else sorted(self.accept_versions)
        )
        return (
            f"SecretKeySource(root=<secret, fingerprint {self.fingerprint}>, "
            f"version={self.version}, accept_versions={accepted})"
        )

    def accepts(self, version: int) -> bool:
        if self.accept_versions is None:
            return 1 <= version <= self.version
        return version in self.accept_versions

    def kek_id(self, version: int | None = None) -> str:
        return f"sk.v{self.version if version is None else version}.{self.fingerprint}"

    def _kek(self, wallet: str, service: str, version: int) -> Kek:
        slot = (wallet, service, version)
        kek = self._cache.get(slot)
        if kek is None:
            kek = Kek(self.kek_id(version), derive_kek(self._root, wallet, service, version))
            with self._cache_lock:
                if len(self._cache) >= _CACHE_SIZE:
                    self._cache.clear()
                self._cache[slot] = kek
        return kek

    def current_kek(self, wallet: str, service: str) -> Kek:
        return self._kek(wallet, service, self.version)

    def kek_for_id(self, wallet: str, service: str, kek_id: str) -> Kek:
        match = _KEK_ID_RE.fullmatch(kek_id)
        if match is None or not hmac.compare_digest(match.group(2), self.fingerprint):
            raise IntegrityError()
        version = int(match.group(1))
        if not self.accepts(version):
            raise IntegrityError()
        return self._kek(wallet, service, version)

    # -- loading and creating root secrets -------------------------------------------------

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        version: int = 1,
        *,
        accept_versions: Iterable[int] | None = None,
    ) -> SecretKeySource:
        """Load a root secret file (32 raw bytes or 64 hex chars).

        The file must not be accessible to group or others (POSIX): a root secret readable by
        other users is a leaked secret, so this refuses it rather than silently using it.
        """
        p = Path(path)
        try:
            with open(p, "rb") as fh:
                st = os.fstat(fh.fileno())
                if os.name == "posix" and st.st_mode & 0o077:
                    raise ConfigurationError(
                        f"root secret file {p} is accessible by group/others "
                        f"(mode {stat.S_IMODE(st.st_mode):04o}); run `chmod 600 {p}` "
                        "and consider rotating the secret if others could have read it"
                    )
                if not stat.S_ISREG(st.st_mode):
                    raise ConfigurationError(f"root secret path {p} is not a regular file")
                data = fh.read(4097)
        except FileNotFoundError:
            raise ConfigurationError(
                f"root secret file {p} does not exist; create one with "
                "SecretKeySource.create_file (or point PORTABLE_CREDS_SECRET_FILE at yours)"
            ) from None
        except PermissionError:
            raise ConfigurationError(f"root secret file {p} is not readable by this user") from None
        except IsADirectoryError:
            raise ConfigurationError(f"root secret path {p} is a directory, not a file") from None
        return cls(
            _parse_root(data, f"root secret file {p}"), version, accept_versions=accept_versions
        )

    @classmethod
    def from_env(
        cls, var: str, version: int = 1, *, accept_versions: Iterable[int] | None = None
    ) -> SecretKeySource:
        """Load a root secret given as 64 hex characters in environment variable ``var``."""
        value = os.environ.get(var)
        if not value:
            raise ConfigurationError(
                f"environment variable {var} is not set; set it to the 64 hex characters "
                "of the root secret"
            )
        return cls(
            _parse_root(value.encode("utf-8", "replace"), f"environment variable {var}"),
            version,
            accept_versions=accept_versions,
        )

    @classmethod
    def create_file(
        cls,
        path: str | os.PathLike[str],
        version: int = 1,
        *,
        accept_versions: Iterable[int] | None = None,
    ) -> SecretKeySource:
        """Generate a new root secret and write it (64 hex chars + newline), mode 0600.

        Create-only and atomic: the secret is written to a 0600 temporary file in the same
        directory, fsynced, then linked into place, so a crash never leaves a partial secret
        and an existing secret is never overwritten (ConfigurationError instead). Missing
        parent directories are created 0700.
        """
        p = Path(path)
        root = os.urandom(ROOT_LEN)
        try:
            p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".root-secret-", dir=p.parent)  # mode 0600
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create root secret file {p}: {exc.strerror}; choose a writable "
                "location (PORTABLE_CREDS_HOME or PORTABLE_CREDS_SECRET_FILE)"
            ) from None
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(root.hex().encode("ascii") + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, p)
            except FileExistsError:
                raise ConfigurationError(
                    f"root secret file {p} already exists; load it with "
                    "SecretKeySource.from_file instead of creating a new one"
                ) from None
            fsync_dir(p.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return cls(root, version, accept_versions=accept_versions)

    @classmethod
    def load_or_create(
        cls,
        path: str | os.PathLike[str],
        version: int = 1,
        *,
        accept_versions: Iterable[int] | None = None,
    ) -> tuple[SecretKeySource, bool]:
        """``from_file``, or ``create_file`` if there is no file yet. Returns (source, created).

        Race-free: two processes creating at once end up using the same (first linked) secret.
        """
        if not os.path.lexists(path):
            try:
                return cls.create_file(path, version, accept_versions=accept_versions), True
            except ConfigurationError:
                if not os.path.lexists(path):
                    raise
        return cls.from_file(path, version, accept_versions=accept_versions), False
