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
from portable_creds.keys import CustodianKey, KeySource
from portable_creds.secret_key import SecretKeySource
from portable_creds.store import RewrapIncomplete

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
    with pytest.raises(RewrapIncomplete) as raised:  # every credential tried, failures named
        _store(tmp_path, wallet, ChainedKeySource(kms_source, stranger)).rewrap()
    assert [(service, type(exc)) for service, exc in raised.value.report.failed] == [
        ("a", IntegrityError)
    ]
    assert local.get("a").reveal() == b"alpha"


class _LongWrapCustodian(CustodianKey, KeySource):
    """A custodian whose wrapped keys have the maximum length the format allows."""

    kek_id = "long-wrap"

    def __init__(self) -> None:
        self._keys: dict[bytes, bytes] = {}

    def generate_data_key(self, encryption_context: Any, size: int) -> tuple[bytes, bytes]:
        dek, wrapped = os.urandom(32), os.urandom(envelope.WRAPPED_MAX)
        self._keys[wrapped] = dek
        return dek, wrapped

    def decrypt_data_key(self, wrapped: bytes, encryption_context: Any, size: int) -> bytes:
        return self._keys[wrapped]

    def current_kek(self, wallet: str, service: str) -> CustodianKey:
        return self

    def kek_for_id(self, wallet: str, service: str, kek_id: str) -> CustodianKey:
        return self


def test_store_reads_a_maximal_kms_blob_at_the_payload_limit(tmp_path: Any) -> None:
    """The reader's download bound covers suite 0x0002's longest wrapped key."""
    store = portable_creds.open_store(
        f"local://{tmp_path}/data",
        wallet=random_wallet(),
        keys=_LongWrapCustodian(),
        home=tmp_path,
        max_payload=1024,
    )
    store.put("big", b"x" * 1024)
    assert store.get("big").reveal() == b"x" * 1024


def test_kms_url_keeps_opening_root_secret_blobs_and_rewrap_moves_them(
    moto_endpoint: str, moto_bucket: str, tmp_path: Any
) -> None:
    """``kms_key=`` seals with KMS; the root secret still opens older blobs until rewrapped."""
    from ..cloud_fixtures import MOTO_KEYS, moto_url

    kms: Any = boto3.client(
        "kms",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    arn = str(kms.create_key()["KeyMetadata"]["Arn"])
    wallet, secret = random_wallet(), SecretKeySource(os.urandom(32))
    common: dict[str, Any] = {"wallet": wallet, "home": tmp_path, "allow_static_tenant": True}
    old = portable_creds.open_store(
        moto_url(moto_endpoint, moto_bucket), keys=secret, outbox=False, **common, **MOTO_KEYS
    )
    old.put("a", b"alpha")
    new = portable_creds.open_store(
        moto_url(moto_endpoint, moto_bucket, kms_key=arn),
        keys=secret,
        outbox=False,
        **common,
        **MOTO_KEYS,
    )
    assert isinstance(new.keys, ChainedKeySource)
    assert new.get("a").reveal() == b"alpha"  # opened with the root secret
    new.put("b", b"beta")
    assert new.rewrap() == 1
    assert _suites(new) == {envelope.SUITE_CUSTODIAN_WRAP}
    with pytest.raises(IntegrityError):
        old.get("a")
