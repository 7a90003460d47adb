"""``open_store`` defaults on a real data home, and a remote backend through a real plugin."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from portable_creds import paths
from portable_creds.errors import AccessDenied, ConfigurationError, InvalidName
from portable_creds.local import LocalObjectStore
from portable_creds.opener import open_store
from portable_creds.outbox import Outbox
from portable_creds.secret_key import SecretKeySource

A = "0x" + "a1" * 20
B = "0x" + "b2" * 20
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh data home via the environment, with no other configuration leaking in."""
    home = tmp_path / "home"
    monkeypatch.setenv("PORTABLE_CREDS_HOME", str(home))
    monkeypatch.delenv("PORTABLE_CREDS_SECRET_FILE", raising=False)
    old = os.umask(0)  # permissive: modes must not depend on it
    try:
        yield home
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_defaults_create_root_secret_once(home: Path) -> None:
    notices: list[str] = []
    store = open_store(wallet=A, on_notice=notices.append)
    key_file = home / "root.key"
    assert mode(home) == 0o700
    assert mode(key_file) == 0o600
    assert len(notices) == 1 and str(key_file) in notices[0]
    assert isinstance(store.objects, LocalObjectStore)
    assert store.objects.root == (home / "objects").resolve()
    assert store.outbox is None  # local writes are durable already
    assert (store.wallet, store.prefix) == (A, "bots")

    store.put("github", b"token-1")
    sealed = home / "objects" / "bots" / A / "credentials" / "github.enc"
    assert mode(sealed) == 0o600
    assert b"token-1" not in sealed.read_bytes()

    secret_before = key_file.read_bytes()
    again = open_store(wallet=A.upper().replace("0X", "0x"), on_notice=notices.append)
    assert len(notices) == 1  # no second notice, no new secret
    assert key_file.read_bytes() == secret_before
    assert again.get("github").reveal() == b"token-1"
    assert again.list() == ["github"]


def test_default_notice_goes_to_logging(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="portable_creds"):
        open_store(wallet=A)
    assert any("root secret" in r.getMessage() for r in caplog.records)


def test_tenants_are_isolated_through_the_opener(home: Path) -> None:
    store_a = open_store(wallet=A)
    store_b = open_store(wallet=B)
    store_a.put("svc", b"a-secret")
    assert store_b.list() == []
    with pytest.raises(AccessDenied):
        store_b.objects.get(store_a.key_for("svc"))


def test_home_argument_overrides_environment(home: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-home"
    store = open_store(wallet=A, home=other, on_notice=lambda _: None)
    assert (other / "root.key").is_file()
    assert not (home / "root.key").exists()
    assert isinstance(store.objects, LocalObjectStore)
    assert store.objects.root == (other / "objects").resolve()


def test_explicit_local_path_keeps_secret_in_home(home: Path, tmp_path: Path) -> None:
    store = open_store(f"local://{tmp_path}/elsewhere", wallet=A, on_notice=lambda _: None)
    store.put("svc", b"v")
    assert (tmp_path / "elsewhere" / "bots" / A / "credentials" / "svc.enc").is_file()
    assert (home / "root.key").is_file()
    assert not (home / "objects").exists()


def test_secret_file_from_environment(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = tmp_path / "my.key"
    source = SecretKeySource.create_file(explicit)
    monkeypatch.setenv("PORTABLE_CREDS_SECRET_FILE", str(explicit))
    store = open_store(wallet=A, on_notice=lambda _: None)
    assert not (home / "root.key").exists()
    store.put("svc", b"sealed under the explicit file")
    reader = open_store(wallet=A, keys=source)
    assert reader.get("svc").reveal() == b"sealed under the explicit file"


def test_missing_secret_file_is_never_created(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "typo.key"
    monkeypatch.setenv("PORTABLE_CREDS_SECRET_FILE", str(missing))
    with pytest.raises(ConfigurationError):
        open_store(wallet=A)
    assert not missing.exists()
    assert not (home / "root.key").exists()


def test_explicit_keys_create_no_root_secret(home: Path) -> None:
    keys = SecretKeySource(b"k" * 32)
    store = open_store(wallet=A, keys=keys)
    assert store.keys is keys
    assert not (home / "root.key").exists()


def test_outbox_choices(home: Path, tmp_path: Path) -> None:
    forced = open_store(wallet=A, outbox=True, on_notice=lambda _: None)
    assert isinstance(forced.outbox, Outbox)
    assert forced.outbox.directory == home / "outbox"
    mine = Outbox(tmp_path / "my-outbox")
    assert open_store(wallet=A, outbox=mine).outbox is mine
    assert open_store(wallet=A, outbox=False).outbox is None


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"wallet": "0xnope"}, InvalidName),
        ({"wallet": A, "prefix": "../up"}, InvalidName),
        ({"wallet": A, "url": "gcs://bucket"}, ConfigurationError),
        ({"wallet": A, "url": "local://somehost/x"}, ConfigurationError),
    ],
)
def test_bad_arguments_fail_before_anything_is_created(
    home: Path, kwargs: dict[str, str], error: type[Exception]
) -> None:
    with pytest.raises(error):
        open_store(**kwargs)  # type: ignore[arg-type]
    assert not home.exists()


# -- a remote backend, as a real plugin distribution --------------------------------------

PLUGIN = textwrap.dedent(
    '''
    """A "remote" test backend: a local directory that fails writes while a flag file exists."""
    from pathlib import Path
    from portable_creds.driver import Driver, StoreTarget
    from portable_creds.errors import RemoteUnavailable
    from portable_creds.local import LocalObjectStore, root_from_url

    class FlakyStore(LocalObjectStore):
        def __init__(self, root, wallet, token):
            super().__init__(root, wallet=wallet)
            self.token = token

        @property
        def backend_id(self):
            return f"flaky:{self.root}"

        def put(self, key, data, **kw):
            if (self.root / "FAIL").exists():
                raise RemoteUnavailable("flaky backend is down on purpose")
            return super().put(key, data, **kw)

    class FlakyDriver(Driver):
        name = "flaky"

        def open_object_store(self, target: StoreTarget):
            root = root_from_url("local" + target.url[len("flaky"):])
            return FlakyStore(root, target.wallet, target.token)
    '''
)

REMOTE_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from portable_creds.errors import PortableCredsError, SecretNotDelivered
    from portable_creds.opener import open_store
    url, wallet, home = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    out = {}
    try:
        open_store(url, wallet=wallet, token="tok-123")
    except PortableCredsError as exc:
        out["without_secret"] = [type(exc).__name__, str(exc)]
    out["root_key_after_refusal"] = (home / "root.key").exists()
    home.mkdir(mode=0o700, exist_ok=True)
    from portable_creds.secret_key import SecretKeySource
    SecretKeySource.create_file(home / "root.key")
    store = open_store(url, wallet=wallet, token="tok-123")
    out["token"] = store.objects.token()
    out["outbox_dir"] = str(store.outbox.directory) if store.outbox else None
    store.put("ok", b"delivered-now")
    out["pending_after_ok"] = len(store.outbox.pending())
    (store.objects.root / "FAIL").touch()
    try:
        store.put("later", b"PLAINTEXT-MARKER")
    except SecretNotDelivered as exc:
        out["failed_put"] = type(exc.cause).__name__
        out["outbox_file_mode"] = oct(os.stat(exc.outbox_path).st_mode & 0o777)
        out["plaintext_in_outbox"] = b"PLAINTEXT-MARKER" in Path(exc.outbox_path).read_bytes()
    out["pending_after_failure"] = len(store.outbox.pending())
    (store.objects.root / "FAIL").unlink()
    out["flushed"] = store.flush()
    out["later"] = store.get("later").reveal().decode()
    print(json.dumps(out))
    """
)


def test_remote_backend_gets_outbox_and_never_invents_a_secret(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "flaky_pc_driver.py").write_text(PLUGIN)
    info = plugins / "flaky_pc_driver-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: flaky-pc-driver\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[portable_creds.drivers]\nflaky = flaky_pc_driver:FlakyDriver\n"
    )
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PORTABLE_CREDS"))}
    env["PYTHONPATH"] = str(plugins)
    env["PORTABLE_CREDS_HOME"] = str(home)
    proc = subprocess.run(
        [sys.executable, "-c", REMOTE_SCRIPT, f"flaky://{tmp_path}/remote", A, str(home)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    kind, message = out["without_secret"]
    assert kind == "ConfigurationError"
    assert str(home / "root.key") in message
    assert out["root_key_after_refusal"] is False
    assert out["token"] == "tok-123"
    assert out["outbox_dir"] == str(paths.outbox_dir(home))
    assert out["pending_after_ok"] == 0
    assert out["failed_put"] == "RemoteUnavailable"
    assert out["outbox_file_mode"] == "0o600"
    assert out["plaintext_in_outbox"] is False
    assert out["pending_after_failure"] == 1
    assert out["flushed"] == 1
    assert out["later"] == "PLAINTEXT-MARKER"


# -- paths ------------------------------------------------------------------------------------


def test_data_home_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORTABLE_CREDS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    default = tmp_path / "user" / ".local" / "share" / "portable-creds"
    assert paths.data_home() == default
    assert paths.config_path() == tmp_path / "user" / ".config" / "portable-creds" / "config.toml"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")  # the XDG spec says: ignore
    assert paths.data_home() == default
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert paths.data_home() == tmp_path / "xdg" / "portable-creds"
    assert paths.config_path() == tmp_path / "cfg" / "portable-creds" / "config.toml"
    monkeypatch.setenv("PORTABLE_CREDS_HOME", str(tmp_path / "pch"))
    assert paths.data_home() == tmp_path / "pch"
    assert paths.data_home(tmp_path / "arg") == tmp_path / "arg"
    assert paths.objects_dir() == tmp_path / "pch" / "objects"
    assert paths.root_key_path() == tmp_path / "pch" / "root.key"
    assert paths.outbox_dir() == tmp_path / "pch" / "outbox"


def test_ensure_private_dir(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        shared = tmp_path / "shared"
        shared.mkdir(mode=0o755)
        os.chmod(shared, 0o755)
        made = paths.ensure_private_dir(shared / "a" / "b")
    finally:
        os.umask(old)
    assert made == shared / "a" / "b"
    assert mode(shared / "a") == 0o700 and mode(shared / "a" / "b") == 0o700
    assert mode(shared) == 0o755  # existing parents are not ours to tighten
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError):
        paths.ensure_private_dir(tmp_path / "file" / "sub")
