"""The cross-process credential cache (issue 13): expiry, invalidation, atomic writes."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

from portable_creds.credcache import CredentialCache, cache_key, disabled_by_env
from portable_creds.driver import TemporaryCredentials

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def creds(access: str, seconds: float) -> TemporaryCredentials:
    return TemporaryCredentials(access, "secret-" + access, "token-" + access,
                                NOW + dt.timedelta(seconds=seconds))


def test_reused_until_shortly_before_expiry(tmp_path: Path) -> None:
    cache = CredentialCache(tmp_path / "c")
    key = cache_key("s3", "role", "0xabc")
    cache.store(key, creds("AK1", 600))
    got = cache.load(key, min_remaining=300, now=NOW)
    assert got is not None and got.access_key_id == "AK1" and got.session_token == "token-AK1"
    assert cache.load(key, min_remaining=300, now=NOW + dt.timedelta(seconds=301)) is None
    assert (tmp_path / "c" / f"{key}.json").exists()  # still valid: kept for others


def test_expired_entries_are_deleted(tmp_path: Path) -> None:
    cache = CredentialCache(tmp_path / "c")
    cache.store("a", creds("AK1", 10))
    assert cache.load("a", min_remaining=0, now=NOW + dt.timedelta(seconds=11)) is None
    assert not (tmp_path / "c" / "a.json").exists()
    cache.store("b", creds("AK2", 10))
    cache.store("c", creds("AK3", 1000))
    assert cache.prune(NOW + dt.timedelta(seconds=11)) == 1
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["c.json"]


def test_static_credentials_are_never_cached(tmp_path: Path) -> None:
    cache = CredentialCache(tmp_path / "c")
    cache.store("k", TemporaryCredentials("AK", "SK", None, None))
    assert not (tmp_path / "c" / "k.json").exists()


def test_invalidate_only_the_refused_session(tmp_path: Path) -> None:
    cache = CredentialCache(tmp_path / "c")
    cache.store("k", creds("NEWER", 600))
    cache.invalidate("k", "REFUSED")  # another process already replaced it: keep
    assert cache.load("k", min_remaining=0, now=NOW) is not None
    cache.invalidate("k", "NEWER")
    assert cache.load("k", min_remaining=0, now=NOW) is None


def test_unreadable_entry_is_dropped(tmp_path: Path) -> None:
    cache = CredentialCache(tmp_path / "c")
    cache.store("k", creds("AK", 600))
    (tmp_path / "c" / "k.json").write_bytes(b'{"access_key_id": "AK", "trunc')
    assert cache.load("k", min_remaining=0, now=NOW) is None
    assert not (tmp_path / "c" / "k.json").exists()


def test_disabled_by_env() -> None:
    assert disabled_by_env({"PORTABLE_CREDS_NO_CREDENTIAL_CACHE": "1"})
    assert not disabled_by_env({"PORTABLE_CREDS_NO_CREDENTIAL_CACHE": "0"})
    assert not disabled_by_env({})


WRITER = """
import datetime as dt, sys
from portable_creds.credcache import CredentialCache
from portable_creds.driver import TemporaryCredentials
cache = CredentialCache(sys.argv[1])
now = dt.datetime.now(dt.UTC)
for i in range(200):
    ak = f"AK{sys.argv[2]}x{i}"
    cache.store("shared", TemporaryCredentials(ak, "S" + ak, "T" + ak,
                now + dt.timedelta(hours=1)))
    got = cache.load("shared", min_remaining=60)
    assert got is not None, "a reader saw no entry while writers only replace it"
    assert got.secret_access_key == "S" + got.access_key_id, "a torn entry"
    assert got.session_token == "T" + got.access_key_id, "a torn entry"
"""


def test_concurrent_processes_never_see_a_torn_entry(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    CredentialCache(directory).store(
        "shared",
        TemporaryCredentials("AK0", "SAK0", "TAK0",
                             dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)),
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(directory), str(n)],
                         stderr=subprocess.PIPE)
        for n in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    assert [p.name for p in directory.iterdir()] == ["shared.json"]  # no temp files left
