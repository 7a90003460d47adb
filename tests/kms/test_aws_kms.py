"""AwsKmsKeySource against moto's KMS: custody, encryption-context binding, caching, errors.

moto binds the encryption context (measured: Decrypt with another context is refused with
InvalidCiphertextException), so a blob moved to another tenant, service or path is refused
by KMS itself here, not only by our AAD. moto evaluates no key policy: the policy's tenant
isolation is rendered and linted in test_aws_key_policy.py and only provable on real AWS.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from portable_creds_aws.kms import AwsKmsKeySource

import portable_creds
from portable_creds import envelope
from portable_creds.datakey_cache import CacheLimits
from portable_creds.envelope import Context, kms_context
from portable_creds.errors import ConfigurationError, IntegrityError, KeySourceError
from portable_creds.store import CredentialStore

from ..cloud_fixtures import MOTO_KEYS, REGION, moto_url, random_wallet


@pytest.fixture(scope="module")
def kms(moto_endpoint: str) -> Any:
    return boto3.client(
        "kms",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def key_arn(kms: Any) -> str:
    return str(kms.create_key()["KeyMetadata"]["Arn"])


def open_kms_store(
    endpoint: str, bucket: str, key: str, wallet: str, tmp: Any, **params: str
) -> CredentialStore:
    return portable_creds.open_store(
        moto_url(endpoint, bucket, kms_key=key, **params),
        wallet=wallet,
        home=tmp,
        outbox=False,
        allow_static_tenant=True,
        **MOTO_KEYS,
    )


@pytest.fixture
def store(moto_endpoint: str, moto_bucket: str, key_arn: str, tmp_path: Any) -> Iterator[Any]:
    s = open_kms_store(moto_endpoint, moto_bucket, key_arn, random_wallet(), tmp_path)
    yield s
    s.objects.close()


def test_url_selects_kms_custody_and_round_trips(store: CredentialStore) -> None:
    assert isinstance(store.keys, AwsKmsKeySource)
    store.put("github", b"ghp_secret")
    blob = store.objects.get(store.key_for("github")).data
    header = envelope.parse_header(blob)
    assert header.suite == envelope.SUITE_CUSTODIAN_WRAP
    assert header.kek_id == store.keys.kek_id and len(header.wrapped_dek) != 48
    assert store.get("github").reveal() == b"ghp_secret"
    assert store.objects.settings.kms is not None  # type: ignore[attr-defined]


def test_kms_itself_refuses_another_context(kms: Any, key_arn: str) -> None:
    """The measured moto behaviour this module relies on."""
    ctx = kms_context(Context("0x" + "aa" * 20, "svc", "bots/x/credentials/svc.enc"))
    made = kms.generate_data_key(KeyId=key_arn, KeySpec="AES_256", EncryptionContext=ctx)
    other = {**ctx, envelope.KMS_CONTEXT_WALLET: "0x" + "bb" * 20}
    with pytest.raises(ClientError) as exc:
        kms.decrypt(CiphertextBlob=made["CiphertextBlob"], EncryptionContext=other)
    assert exc.value.response["Error"]["Code"] == "InvalidCiphertextException"


def test_blob_moved_to_another_tenant_or_service_is_refused_by_kms(
    moto_endpoint: str, moto_bucket: str, key_arn: str, tmp_path: Any, kms: Any
) -> None:
    a = open_kms_store(moto_endpoint, moto_bucket, key_arn, random_wallet(), tmp_path)
    b = open_kms_store(moto_endpoint, moto_bucket, key_arn, random_wallet(), tmp_path)
    a.put("svc", b"tenant-a-secret")
    blob = a.objects.get(a.key_for("svc")).data
    b.objects.put(b.key_for("svc"), blob)
    a.objects.put(a.key_for("other"), blob)
    calls = b.keys.kms_calls  # type: ignore[attr-defined]
    with pytest.raises(IntegrityError):
        b.get("svc")
    assert b.keys.kms_calls == calls + 1  # type: ignore[attr-defined]  # KMS was asked, refused
    with pytest.raises(IntegrityError):
        a.get("other")
    # The refusal really is KMS's: the wrapped key does not decrypt under b's context.
    wrapped = envelope.parse_header(blob).wrapped_dek
    with pytest.raises(ClientError, match="InvalidCiphertextException"):
        kms.decrypt(
            CiphertextBlob=wrapped,
            EncryptionContext=kms_context(b._context("svc")),
        )


def test_another_kms_key_is_refused(
    moto_endpoint: str, moto_bucket: str, kms: Any, key_arn: str, tmp_path: Any
) -> None:
    wallet = random_wallet()
    a = open_kms_store(moto_endpoint, moto_bucket, key_arn, wallet, tmp_path)
    a.put("svc", b"v")
    other = str(kms.create_key()["KeyMetadata"]["Arn"])
    b = open_kms_store(moto_endpoint, moto_bucket, other, wallet, tmp_path)
    with pytest.raises(IntegrityError):
        b.get("svc")


def test_read_cache_bounds_kms_calls(
    moto_endpoint: str, moto_bucket: str, key_arn: str, tmp_path: Any
) -> None:
    wallet = random_wallet()
    writer = open_kms_store(moto_endpoint, moto_bucket, key_arn, wallet, tmp_path)
    writer.put("svc", b"hot")
    reader = open_kms_store(
        moto_endpoint, moto_bucket, key_arn, wallet, tmp_path, kms_cache_uses="10"
    )
    for _ in range(25):
        assert reader.get("svc").reveal() == b"hot"
    assert reader.keys.kms_calls == 3  # type: ignore[attr-defined]  # max_uses=10 per key
    uncached = open_kms_store(
        moto_endpoint, moto_bucket, key_arn, wallet, tmp_path, kms_cache_age="0"
    )
    for _ in range(5):
        uncached.get("svc")
    assert uncached.keys.kms_calls == 5  # type: ignore[attr-defined]


def test_write_cache_is_off_unless_configured(
    moto_endpoint: str, moto_bucket: str, key_arn: str, tmp_path: Any
) -> None:
    wallet = random_wallet()
    default = open_kms_store(moto_endpoint, moto_bucket, key_arn, wallet, tmp_path)
    for i in range(3):
        default.put("svc", f"v{i}")
    assert default.keys.kms_calls == 3  # type: ignore[attr-defined]
    cached = open_kms_store(
        moto_endpoint, moto_bucket, key_arn, wallet, tmp_path, kms_write_cache="1"
    )
    for i in range(3):
        cached.put("svc", f"w{i}")
    assert cached.keys.kms_calls == 1  # type: ignore[attr-defined]
    assert cached.get("svc").reveal() == b"w2"


def test_cached_key_is_never_served_for_another_context(key_arn: str, kms: Any) -> None:
    source = AwsKmsKeySource(key_arn, kms, read_cache=CacheLimits(), write_cache=CacheLimits())
    here = Context("0x" + "aa" * 20, "svc", "bots/0x" + "aa" * 20 + "/credentials/svc.enc")
    there = Context("0x" + "bb" * 20, "svc", "bots/0x" + "bb" * 20 + "/credentials/svc.enc")
    blob = envelope.seal(b"secret", kek=source, context=here)
    assert envelope.open_blob(blob, context=here, resolve_kek=lambda _: source) == b"secret"
    with pytest.raises(IntegrityError):  # cache miss for this context -> KMS refuses
        envelope.open_blob(blob, context=there, resolve_kek=lambda _: source)
    other = envelope.seal(b"x", kek=source, context=there)  # write cache keyed by context too
    assert envelope.parse_header(other).wrapped_dek != envelope.parse_header(blob).wrapped_dek


def test_missing_key_is_a_key_source_error(kms: Any) -> None:
    missing = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    source = AwsKmsKeySource(missing, kms, read_cache=None)
    with pytest.raises(KeySourceError, match="NotFoundException"):
        envelope.seal(b"v", kek=source, context=Context("0x" + "aa" * 20, "svc", "k"))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"kms_cache_age": "5"}, "need kms_key"),
        ({"kms_key": "has space"}, "not a KMS key"),
        ({"kms_key": "k", "kms_cache_age": "7200"}, "kms_cache_age"),
        ({"kms_key": "k", "kms_cache_age": "0", "kms_write_cache": "1"}, "needs kms_cache_age"),
    ],
)
def test_bad_kms_parameters_are_configuration_errors(
    moto_endpoint: str, params: dict[str, str], match: str, tmp_path: Any
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        portable_creds.open_store(
            moto_url(moto_endpoint, "some-bucket", **params),
            wallet=random_wallet(),
            home=tmp_path,
            allow_static_tenant=True,
            **MOTO_KEYS,
        )


def test_repr_and_errors_never_show_key_material(key_arn: str, kms: Any) -> None:
    source = AwsKmsKeySource(key_arn, kms)
    assert key_arn in repr(source) and "Plaintext" not in repr(source)
    assert "key=" not in repr(source).replace("key_id=", "")


def test_wrapped_key_naming_an_unknown_kms_key_is_an_integrity_error(
    key_arn: str, kms: Any
) -> None:
    """moto answers AccessDeniedException for a ciphertext of an unknown key (AWS documents
    IncorrectKeyException when KeyId is given): on Decrypt either is "does not open"."""
    source = AwsKmsKeySource(key_arn, kms, read_cache=None)
    ctx = Context("0x" + "aa" * 20, "svc", "k")
    blob = bytearray(envelope.seal(b"v", kek=source, context=ctx))
    header = envelope.parse_header(bytes(blob))
    start = len(header.kek_id) + 9  # first byte of the KMS ciphertext (its key reference)
    blob[start + 2] ^= 0x01
    with pytest.raises(IntegrityError):
        envelope.open_blob(bytes(blob), context=ctx, resolve_kek=lambda _: source)
