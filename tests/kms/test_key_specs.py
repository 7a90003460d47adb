"""Key-source specs (``portable_creds.key_specs``) and the ``open_store(keys=factory)`` form."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import boto3
import pytest
from portable_creds_aws.kms import AwsKmsKeySource

import portable_creds
from portable_creds import key_specs
from portable_creds.errors import ConfigurationError
from portable_creds.key_chain import ChainedKeySource
from portable_creds.local import LocalObjectStore
from portable_creds.secret_key import SecretKeySource

from ..cloud_fixtures import MOTO_KEYS, REGION, moto_url, random_wallet


@pytest.mark.parametrize(
    ("text", "kind", "path"),
    [
        ("root-secret", "root-secret", None),
        ("root-secret:/k/new.key", "root-secret", "/k/new.key"),
        (" signer ", "signer", None),
        ("kms:arn:aws:kms:eu-west-1:111122223333:key/abc", "driver", None),
    ],
)
def test_specs_parse(text: str, kind: str, path: str | None) -> None:
    spec = key_specs.parse(text)
    assert (spec.kind, spec.path) == (kind, path)


@pytest.mark.parametrize(
    "text", ["", "bogus", "root-secret:", "kms:", ":x", "kms:a b", "kms:" + "k" * 3000]
)
def test_malformed_specs_are_refused(text: str) -> None:
    with pytest.raises(ConfigurationError):
        key_specs.parse(text)


def test_a_driver_that_does_not_know_the_spec_refuses_it_by_name(tmp_path: Path) -> None:
    objects = LocalObjectStore(tmp_path)
    with pytest.raises(ConfigurationError, match="does not know the key source 'kms:k'"):
        key_specs.resolve(
            key_specs.parse("kms:k"),
            objects,
            root_secret=lambda path: SecretKeySource(os.urandom(32)),
            signer=lambda: SecretKeySource(os.urandom(32)),
        )


def test_chain_drops_the_current_source_from_the_previous_ones() -> None:
    a, b = SecretKeySource(os.urandom(32)), SecretKeySource(os.urandom(32))
    assert key_specs.chain(a, [a]) is a
    chained = key_specs.chain(a, [a, b])
    assert isinstance(chained, ChainedKeySource) and chained.previous == (b,)


_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def test_s3_resolves_kms_specs_and_the_factory_is_used_as_built(
    moto_endpoint: str, moto_bucket: str, tmp_path: Path
) -> None:
    kms: Any = boto3.client(
        "kms", endpoint_url=moto_endpoint, region_name=REGION, **_KEYS
    )
    arn = str(kms.create_key()["KeyMetadata"]["Arn"])
    secret = SecretKeySource(os.urandom(32))
    store = portable_creds.open_store(
        moto_url(moto_endpoint, moto_bucket, kms_key=arn),
        wallet=random_wallet(),
        keys=lambda objects: secret,  # a factory: no KMS chained in front despite kms_key=
        home=tmp_path,
        outbox=False,
        allow_static_tenant=True,
        **MOTO_KEYS,
    )
    with store:
        assert store.keys is secret
        source = store.objects.key_source_for(f"kms:{arn}")
        assert isinstance(source, AwsKmsKeySource) and source.key_id == arn
        configured = store.objects.configured_key_source()
        assert configured is not None and source.kek_id == configured.kek_id
        assert store.objects.key_source_for("vault:x") is None
