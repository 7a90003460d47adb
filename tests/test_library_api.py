"""The public library API agrees with the CLI: exports, empty secrets, NotFound messages."""

from __future__ import annotations

import os

import pytest

import portable_creds
from portable_creds import errors
from portable_creds.store import CredentialStore

WALLET = "0x" + "c3" * 20


@pytest.fixture
def store(tmp_path: os.PathLike[str]) -> CredentialStore:
    return portable_creds.open_store(None, wallet=WALLET, home=tmp_path)


def test_every_public_error_is_exported() -> None:
    public = {
        name for name, obj in vars(errors).items()
        if isinstance(obj, type) and issubclass(obj, errors.PortableCredsError)
        and not name.startswith("_") and name != "UnstableKeyError"
    }
    assert public <= set(portable_creds.__all__), public - set(portable_creds.__all__)
    for name in ("KeySourceError", "ExpiredCredentials", "InvalidToken", "InvalidSecret"):
        assert getattr(portable_creds, name) is getattr(errors, name)


@pytest.mark.parametrize("method", ["exists", "get", "close", "put", "delete", "list"])
def test_public_methods_have_docstrings(method: str) -> None:
    assert (getattr(CredentialStore, method).__doc__ or "").strip()


@pytest.mark.parametrize("empty", [b"", ""])
def test_empty_secret_is_refused_like_the_cli(store: CredentialStore, empty: bytes | str) -> None:
    with pytest.raises(errors.InvalidSecret) as info:
        store.put("svc", empty)
    assert info.value.exit_code == errors.EXIT_CODES["invalid-input"]
    assert "empty secret" in str(info.value)
    assert store.list() == []


def test_empty_secret_stored_when_explicitly_allowed(store: CredentialStore) -> None:
    store.put("svc", b"", allow_empty=True)
    assert store.get("svc").reveal() == b""


def test_not_found_names_the_credential_not_the_storage_layout(store: CredentialStore) -> None:
    for call in (lambda: store.get("absent"), lambda: store.delete("absent")):
        with pytest.raises(errors.NotFound) as info:
            call()
        message = str(info.value)
        assert message == f"no credential 'absent' for wallet {WALLET}"
        assert "credentials/" not in message and ".enc" not in message and "bots" not in message


def test_the_errors_page_maps_every_class_to_its_exit_code() -> None:
    """docs/reference/errors.md's table is the real mapping (exit code, name, classes)."""
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "reference" / "errors.md").read_text()
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*`([a-z-]+)`\s*\|(.*)\|$", page, re.M)
    assert rows
    seen = set()
    for code, name, classes in rows:
        assert errors.EXIT_CODES[name] == int(code)
        for cls_name in re.findall(r"`(\w+)`", classes):
            cls = getattr(errors, cls_name)
            seen.add(cls_name)
            if cls is not errors.SecretNotDelivered:  # carries its cause's code
                assert cls.exit_code == int(code), cls_name
    assert seen == {n for n in portable_creds.__all__
                    if isinstance(getattr(portable_creds, n), type)
                    and issubclass(getattr(portable_creds, n), errors.PortableCredsError)
                    and n != "PortableCredsError"}


def test_config_layer_takes_plain_values(tmp_path: os.PathLike[str]) -> None:
    """The library's config layer needs no argparse: flags are a plain mapping."""
    import subprocess
    import sys
    from pathlib import Path

    from portable_creds import config

    flags = {"config": str(Path(tmp_path) / "config.toml"), "prefix": "team"}
    values = config.resolve(flags, environ={})
    assert (values["prefix"].value, values["prefix"].source) == ("team", "--prefix")
    assert values["wallet"].value is None
    assert config.setting("prefix", None, environ={"PORTABLE_CREDS_PREFIX": "env"}) == "env"
    probe = ("import sys, portable_creds.config, portable_creds.audit; "
             "print('argparse' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    assert out.stdout.strip() == "False"
