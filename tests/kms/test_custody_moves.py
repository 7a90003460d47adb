"""Custody moves through ``rewrap``: root secret -> AWS KMS -> root secret, on moto."""

from __future__ import annotations

import os
from typing import Any

import boto3
import pytest
from portable_creds_aws.kms import AwsKmsKeySource

import portable_creds
from portable_creds import envelope
from portable_creds.errors import IntegrityError
from portable_creds.key_chain import ChainedKeySource
from portable_creds.keys import KeySource
from portable_creds.secret_key import SecretKeySource

from ..cloud_fixtures import REGION, random_wallet


@pytest.fixture
def kms_source(moto_endpoint: str) -> AwsKmsKeySource:
    kms: Any = boto3.client(
        "kms",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return AwsKmsKeySource(str(kms.create_key()["KeyMetadata"]["Arn"]), kms)


def _store(tmp: Any, wallet: str, keys: KeySource) -> Any:
    return portable_creds.open_store(f"local://{tmp}/data", wallet=wallet, keys=keys, home=tmp)


def _suites(store: Any) -> set[int]:
    return {
        envelope.parse_header(store.objects.get(store.key_for(s)).data).suite
        for s in ("a", "b")
    }


def test_move_to_kms_and_back(tmp_path: Any, kms_source: AwsKmsKeySource) -> None:
    wallet = random_wallet()
    secret = SecretKeySource(os.urandom(32))
    local = _store(tmp_path, wallet, secret)
    local.put("a", b"alpha")
    local.put("b", b"beta")

    to_kms = _store(tmp_path, wallet, ChainedKeySource(kms_source, secret))
    assert to_kms.rewrap() == 2
    assert _suites(to_kms) == {envelope.SUITE_CUSTODIAN_WRAP}
    only_kms = _store(tmp_path, wallet, kms_source)
    assert only_kms.get("a").reveal() == b"alpha" and only_kms.get("b").reveal() == b"beta"
    with pytest.raises(IntegrityError):  # the root secret alone no longer opens them
        _store(tmp_path, wallet, secret).get("a")
    assert to_kms.rewrap() == 0  # idempotent

    back = _store(tmp_path, wallet, ChainedKeySource(secret, kms_source))
    assert back.rewrap() == 2
    assert _suites(back) == {envelope.SUITE_AES256GCM_HKDF_COMMIT}
    assert _store(tmp_path, wallet, secret).get("b").reveal() == b"beta"


def test_a_move_never_rewraps_what_does_not_open(
    tmp_path: Any, kms_source: AwsKmsKeySource
) -> None:
    wallet = random_wallet()
    secret = SecretKeySource(os.urandom(32))
    local = _store(tmp_path, wallet, secret)
    local.put("a", b"alpha")
    stranger = SecretKeySource(os.urandom(32))
    with pytest.raises(IntegrityError):
        _store(tmp_path, wallet, ChainedKeySource(kms_source, stranger)).rewrap()
    assert local.get("a").reveal() == b"alpha"
