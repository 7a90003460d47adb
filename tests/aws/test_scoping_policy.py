"""The session policy a scoped s3 store sends: exact object ARNs, exact actions, bounded size."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
from portable_creds_aws.driver import S3Driver
from portable_creds_aws.scoping import MAX_SESSION_POLICY_CHARS, session_policy

from portable_creds.driver import StoreTarget
from portable_creds.errors import ConfigurationError, InvalidName
from portable_creds.names import object_key

from .conftest import MOTO_KEYS

WALLET = "0x" + "ab" * 20


def _statement(keys: list[str], read_only: bool) -> dict[str, Any]:
    """The policy's one statement (there must be exactly one)."""
    text = session_policy("pc-bucket", keys, read_only=read_only)
    assert " " not in text and "\n" not in text  # compact: RGW does not decode '+' in forms
    doc = json.loads(text)
    assert doc["Version"] == "2012-10-17"
    (statement,) = doc["Statement"]
    assert isinstance(statement, dict)
    return statement


def test_read_only_policy_allows_get_of_exact_objects_only() -> None:
    keys = [object_key(WALLET, "github"), object_key(WALLET, "openai")]
    statement = _statement(keys, read_only=True)
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == ["s3:GetObject"]
    assert statement["Resource"] == [f"arn:aws:s3:::pc-bucket/{k}" for k in keys]
    assert "Condition" not in statement


def test_read_write_policy_adds_put_and_delete_but_never_list() -> None:
    statement = _statement([object_key(WALLET, "github")], read_only=False)
    assert sorted(statement["Action"]) == ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
    assert all("*" not in r and r.count("/") >= 2 for r in statement["Resource"])


def test_duplicate_keys_are_listed_once() -> None:
    key = object_key(WALLET, "github")
    statement = _statement([key, key], read_only=True)
    assert statement["Resource"] == [f"arn:aws:s3:::pc-bucket/{key}"]


@pytest.mark.parametrize("bad", ["bots/*", "bots/x?y", "bots/${aws:username}", "", "/abs"])
def test_wildcards_and_variables_are_refused(bad: str) -> None:
    with pytest.raises(InvalidName):
        session_policy("pc-bucket", [bad], read_only=True)


def test_empty_scope_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        session_policy("pc-bucket", [], read_only=True)


def test_policy_above_the_sts_limit_is_refused_with_advice() -> None:
    keys = [object_key(WALLET, f"service-{i:03d}") for i in range(40)]
    with pytest.raises(ConfigurationError, match="scope fewer services"):
        session_policy("pc-bucket", keys, read_only=True)
    fits = keys[:10]
    assert len(session_policy("pc-bucket", fits, read_only=False)) <= MAX_SESSION_POLICY_CHARS


def test_static_key_stores_declare_no_cloud_scoping_and_refuse_it(
    moto_endpoint: str, moto_bucket: str
) -> None:
    url = f"s3://{moto_bucket}?region=us-east-1&endpoint={moto_endpoint}"
    wallet = "0x" + secrets.token_hex(20)
    store = S3Driver().open_object_store(
        StoreTarget(url=url, wallet=wallet, options={**MOTO_KEYS, "allow_static_tenant": True})
    )
    assert store.capabilities.scoped_credentials == "none"
    with pytest.raises(ConfigurationError, match="enforcement='client'"):
        store.scoped([object_key(wallet, "github")], read_only=True)
    with pytest.raises(ConfigurationError, match="never exported"):
        store.exported_credentials()
