"""Temporary credentials shared across processes, the way the AWS CLI keeps ``~/.aws/cli/cache``.

Why: agents run ``portable-creds get`` / ``run`` once per task, each a fresh process. Without a
cache every one of them pays an STS exchange (and the STS client it needs). With it, the first
process exchanges the token and the next ones reuse the session until shortly before it expires.

The rules, each because of a failure it prevents:

* one 0600 file per (backend, role, wallet, scope...) in a 0700 directory under the data home,
  named by a hash of those parts (the name reveals nothing); only the user who could read the
  identity token anyway can read the session it buys;
* an entry is used only while more than ``min_remaining`` seconds are left, and an expired
  entry is deleted when seen (and every expired file is pruned on each write), so a credential
  is never kept past its expiry;
* writes are atomic (temp file + rename), so concurrent processes read a whole entry or none;
  when two race, the last writer wins and both hold valid sessions;
* a session the service refused is dropped (``invalidate``) only if the file still holds that
  session, so a fresher one written by another process meanwhile survives;
* ``PORTABLE_CREDS_NO_CREDENTIAL_CACHE=1`` (the CLI's ``--no-credential-cache``) turns it off.

Core module: no cloud SDK imports; drivers call it from their credential providers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
from pathlib import Path

from . import paths
from .driver import TemporaryCredentials
from .paths import write_file_atomic

ENV_DISABLE = "PORTABLE_CREDS_NO_CREDENTIAL_CACHE"
CACHE_DIR = ("cache", "credentials")
_SUFFIX = ".json"


def disabled_by_env(env: dict[str, str] | None = None) -> bool:
    value = (os.environ if env is None else env).get(ENV_DISABLE, "")
    return value.strip().lower() not in ("", "0", "false", "no")


def cache_dir(home: paths.PathArg | None = None) -> Path:
    return paths.data_home(home).joinpath(*CACHE_DIR)


def cache_key(*parts: object) -> str:
    """A file-name-safe digest of what identifies a session (never the token itself)."""
    return hashlib.sha256("\x00".join(str(p) for p in parts).encode()).hexdigest()[:40]


class CredentialCache:
    """A directory of cached temporary credentials; see the module docstring."""

    def __init__(self, directory: paths.PathArg) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"CredentialCache({str(self.directory)!r})"

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}{_SUFFIX}"

    def load(
        self, key: str, *, min_remaining: float, now: dt.datetime | None = None
    ) -> TemporaryCredentials | None:
        """The cached session for ``key`` if more than ``min_remaining`` seconds are left."""
        path = self._path(key)
        try:
            record = json.loads(path.read_bytes())
            creds = TemporaryCredentials(
                access_key_id=str(record["access_key_id"]),
                secret_access_key=str(record["secret_access_key"]),
                session_token=None if record["session_token"] is None
                else str(record["session_token"]),
                expiration=dt.datetime.fromisoformat(str(record["expiration"])),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            with contextlib.suppress(OSError):
                path.unlink()  # unreadable: never trusted, replaced by the next exchange
            return None
        now = now or dt.datetime.now(dt.UTC)
        if creds.expiration is None or creds.expiration.tzinfo is None:
            return None
        if creds.expires_within(0, now=now):
            with contextlib.suppress(OSError):
                path.unlink()  # expired: not kept past its expiry
            return None
        if creds.expires_within(min_remaining, now=now):
            return None
        return creds

    def store(self, key: str, creds: TemporaryCredentials) -> None:
        """Save a session (sessions without an expiry are never cached). Best effort: a cache
        that cannot be written only costs the next process an exchange."""
        if creds.expiration is None:
            return
        record = {
            "format": 1,
            "access_key_id": creds.access_key_id,
            "secret_access_key": creds.secret_access_key,
            "session_token": creds.session_token,
            "expiration": creds.expiration.astimezone(dt.UTC).isoformat(),
        }
        try:
            paths.ensure_private_dir(self.directory)
            write_file_atomic(
                self._path(key), json.dumps(record).encode(), paths.PRIVATE_FILE_MODE,
                durable=False,
            )
            self.prune()
        except OSError:
            return

    def invalidate(self, key: str, access_key_id: str | None = None) -> None:
        """Drop ``key``'s entry (only if it still holds ``access_key_id``, when given)."""
        path = self._path(key)
        if access_key_id is not None:
            try:
                record = json.loads(path.read_bytes())
            except (OSError, ValueError):
                return
            if not isinstance(record, dict) or record.get("access_key_id") != access_key_id:
                return
        with contextlib.suppress(OSError):
            path.unlink()

    def prune(self, now: dt.datetime | None = None) -> int:
        """Delete every expired or unreadable entry; returns how many."""
        now = now or dt.datetime.now(dt.UTC)
        removed = 0
        try:
            names = os.listdir(self.directory)
        except OSError:
            return 0
        for name in names:
            if not name.endswith(_SUFFIX):
                continue
            path = self.directory / name
            try:
                expiry = dt.datetime.fromisoformat(
                    str(json.loads(path.read_bytes())["expiration"])
                )
                stale = expiry.tzinfo is None or expiry <= now
            except FileNotFoundError:
                continue
            except (OSError, ValueError, KeyError, TypeError):
                stale = True
            if stale:
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed += 1
        return removed
