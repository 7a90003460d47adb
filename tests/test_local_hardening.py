"""The local driver never follows symlinked directories, refuses roots other users can write,
and keeps ``OpenAI`` and ``openai`` apart on case-insensitive filesystems (issue 12 #7)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from portable_creds.errors import ConfigurationError, InvalidName, NotFound, PayloadTooLarge
from portable_creds.local import LocalObjectStore, probe_case_sensitive
from portable_creds.secret_key import SecretKeySource
from portable_creds.store import CredentialStore

A = "0x" + "a1" * 20


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside the store holding a file that must survive everything."""
    d = tmp_path / "outside"
    d.mkdir()
    (d / "github.enc").write_bytes(b"not yours")
    return d


def test_symlinked_credentials_directory_is_never_followed(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "objects"
    store = CredentialStore(LocalObjectStore(root, wallet=A), SecretKeySource(b"k" * 32), A)
    store.put("openai", b"sk-1")
    wallet_dir = root / "bots" / A
    shutil.rmtree(wallet_dir / "credentials")
    (wallet_dir / "credentials").symlink_to(outside)
    objects = store.objects
    key = store.key_for("github")
    with pytest.raises(NotFound):
        objects.get(key)
    with pytest.raises(NotFound):
        objects.head(key)
    assert list(objects.list(f"bots/{A}/")) == []
    assert store.list() == []
    objects.delete(key)
    assert store.teardown() == 0
    with pytest.raises(ConfigurationError, match="symbolic link"):
        objects.put(key, b"planted")
    assert (outside / "github.enc").read_bytes() == b"not yours"
    assert sorted(p.name for p in outside.iterdir()) == ["github.enc"]


def test_symlinked_prefix_directory_is_never_followed(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "objects"
    admin = LocalObjectStore(root)
    (root / "bots").symlink_to(outside)
    with pytest.raises(NotFound):
        admin.get("bots/github.enc")
    assert list(admin.list("")) == []
    admin.delete("bots/github.enc")
    assert (outside / "github.enc").exists()


@pytest.mark.parametrize("mode", [0o770, 0o777, 0o702])
def test_group_or_world_writable_root_is_refused(tmp_path: Path, mode: int) -> None:
    root = tmp_path / "shared"
    root.mkdir()
    root.chmod(mode)
    with pytest.raises(ConfigurationError, match="chmod 700"):
        LocalObjectStore(root)
    root.chmod(0o700)
    LocalObjectStore(root).put("a/b", b"ok")


def test_root_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to create a directory owned by another user")
    root = tmp_path / "theirs"
    root.mkdir(mode=0o700)
    os.chown(root, 65534, 65534)
    with pytest.raises(ConfigurationError, match="owned by uid 65534"):
        LocalObjectStore(root)


def test_case_probe_on_this_filesystem(tmp_path: Path) -> None:
    assert probe_case_sensitive(tmp_path) is True  # Linux tmp: case-sensitive
    assert list(tmp_path.iterdir()) == []  # the probe cleans up after itself
    assert LocalObjectStore(tmp_path / "objects").case_sensitive is True


class CaseFoldingStore(LocalObjectStore):
    """What a case-insensitive filesystem looks like to the driver, simulated on Linux.

    A test hard-links ``OpenAI.enc`` as ``openai.enc`` (one inode, two spellings: opening
    either reaches the same file) and this listing shows only the first spelling, as
    macOS/APFS or an ext4 ``casefold`` directory would.
    """

    hidden: frozenset[str] = frozenset()

    def _listing(self, dir_fd: int) -> list[str]:
        return [n for n in super()._listing(dir_fd) if n not in self.hidden]


def test_case_insensitive_mode_keeps_case_variants_apart(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    objects = CaseFoldingStore(root, wallet=A, case_sensitive=False)
    store = CredentialStore(objects, SecretKeySource(b"k" * 32), A)
    store.put("OpenAI", b"upper")
    creds = root / "bots" / A / "credentials"
    os.link(creds / "OpenAI.enc", creds / "openai.enc")
    objects.hidden = frozenset({"openai.enc"})
    key = store.key_for("openai")
    with pytest.raises(NotFound):
        objects.get(key)  # the alias is not this key's object
    with pytest.raises(InvalidName, match="letter case"):
        store.put("openai", b"lower")  # would overwrite OpenAI's file
    objects.delete(key)  # must not delete OpenAI's file through the alias
    assert store.get("OpenAI").reveal() == b"upper"
    assert store.list() == ["OpenAI"]


def test_case_insensitive_mode_refuses_aliased_directories(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    objects = CaseFoldingStore(root, case_sensitive=False)
    objects.put("Bots/x", b"1")
    (root / "bots").symlink_to("Bots")  # stands in for the fs resolving 'bots' to 'Bots'
    objects.hidden = frozenset({"bots"})
    with pytest.raises(NotFound):
        objects.get("bots/x")
    with pytest.raises((InvalidName, ConfigurationError)):
        objects.put("bots/x", b"2")
    assert objects.get("Bots/x").data == b"1"
    with pytest.raises(InvalidName, match="lower case"):
        objects.put("p/0x" + "A1" * 20 + "/k", b"v")


def test_local_reads_are_capped(tmp_path: Path) -> None:
    objects = LocalObjectStore(tmp_path / "objects")
    objects.put("a/big", b"x" * 5000)
    with pytest.raises(PayloadTooLarge):
        objects.get_capped("a/big", max_size=100)
    assert objects.get_capped("a/big", max_size=5000).data == b"x" * 5000


def test_a_read_only_root_still_opens_for_reading(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores directory write permissions")
    root = tmp_path / "objects"
    LocalObjectStore(root).put("a/b", b"v")
    root.chmod(0o500)
    try:
        store = LocalObjectStore(root)
        assert store.case_sensitive is False  # could not probe: exact-name checks
        assert store.get("a/b").data == b"v"
    finally:
        root.chmod(0o700)
