"""TencentKmsKeySource on the Tencent double's KMS: custody, context binding, per-tenant keys.

Isolation on Tencent is per-tenant keys (CAM documents no condition key on the encryption
context): each wallet has its own CMK and only its role may use it. The double evaluates CAM
on the key resource for every KMS call, so "tenant A's session cannot unwrap tenant B's data
key" is enforced by CAM evaluation here, not by our client. Real Tencent: unverified.
"""

from __future__ import annotations

import ast
import base64
import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
from portable_creds_tencent import tcapi
from portable_creds_tencent.admin import Provisioner
from portable_creds_tencent.cos_store import CosObjectStore
from portable_creds_tencent.federation import StaticProvider
from portable_creds_tencent.kms import (
    KmsApi,
    TencentKmsKeySource,
    encryption_context_json,
    map_kms_error,
)
from portable_creds_tencent.settings import StaticKeys, parse_settings
from portable_creds_tencent.testing import TencentDouble, TestIdentityProvider, contract
from portable_creds_tencent.testing import api_service as api_module
from portable_creds_tencent.testing import kms_service as kms_module
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.kms.v20190118 import kms_client, models

import portable_creds
from portable_creds import envelope
from portable_creds.driver import StoreTarget
from portable_creds.envelope import Context, kms_context
from portable_creds.errors import (
    AccessDenied,
    ConfigurationError,
    CredentialsError,
    ExpiredCredentials,
    IntegrityError,
    KeySourceError,
    RemoteUnavailable,
)
from portable_creds.key_chain import ChainedKeySource
from portable_creds.secret_key import SecretKeySource
from portable_creds.store import CredentialStore

from . import sdk
from .conftest import AUDIENCE, WALLET_A, WALLET_B, Env, key, make_env


@attrs.frozen
class KmsEnv:
    env: Env
    prov: Provisioner
    keys: dict[str, str]
    """wallet -> KeyId of its per-tenant CMK."""

    @property
    def double(self) -> TencentDouble:
        return self.env.double

    def url(self, wallet: str, extra: str = "") -> str:
        return f"{self.env.url}&mode=role-per-tenant&kms_key={self.keys[wallet]}{extra}"

    def vended(self, wallet: str, tmp: Any) -> CredentialStore:
        """Token-vendor mode (in-process vendor holding the vendor key), per-tenant keys."""
        return portable_creds.open_store(
            f"{self.env.vendor_url()}&vendor_kms=true&kms_key={self.keys[wallet]}",
            wallet=wallet,
            token=self.env.token_for(wallet),
            home=tmp,
            outbox=False,
            secret_id=self.env.vendor.secret_id,
            secret_key=self.env.vendor.secret_key,
        )

    def store(self, wallet: str, tmp: Any, extra: str = "") -> CredentialStore:
        return portable_creds.open_store(
            self.url(wallet, extra),
            wallet=wallet,
            token=self.env.token_for(wallet),
            home=tmp,
            outbox=False,
        )


@pytest.fixture
def kenv(double: TencentDouble, idp: TestIdentityProvider) -> KmsEnv:
    env = make_env(double, idp)
    prov = Provisioner(
        attrs.evolve(env.deployment, kms=True),
        StaticKeys(double.root.secret_id, double.root.secret_key),
    )
    prov.apply()  # the vendor role's ceiling gains the tenant KMS actions
    double.attach_user_policy(
        env.vendor.uin,
        "vendor-may-find-keys",
        {
            "version": "2.0",
            "statement": [
                {"effect": "allow", "action": ["name/kms:ListKeyDetail"], "resource": ["*"]}
            ],
        },
    )
    keys = {}
    for wallet in (WALLET_A, WALLET_B):
        done = prov.onboard(wallet)
        meta = prov.tenant_key(wallet)
        assert meta is not None
        keys[wallet] = str(meta["KeyId"])
        assert f"created KMS key {keys[wallet]} (portable-creds-{wallet}) for {wallet}" in done
    return KmsEnv(env, prov, keys)


def root_kms(d: TencentDouble) -> kms_client.KmsClient:
    return kms_client.KmsClient(
        credential.Credential(d.root.secret_id, d.root.secret_key), d.region, sdk.profile(d)
    )


def session_kms(store: CredentialStore) -> kms_client.KmsClient:
    """A bare SDK KMS client holding exactly the tenant store's temporary credentials."""
    objects = store.objects
    assert isinstance(objects, CosObjectStore)
    creds = objects.credentials_provider.credentials()
    d_endpoint = objects.settings.api_endpoint
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile

    return kms_client.KmsClient(
        credential.Credential(creds.access_key_id, creds.secret_access_key, creds.session_token),
        objects.settings.region,
        ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=d_endpoint)),
    )


def sdk_code(client: kms_client.KmsClient, action: str, params: dict[str, Any]) -> str:
    request = getattr(models, f"{action}Request")()
    request.from_json_string(json.dumps(params))
    with pytest.raises(TencentCloudSDKException) as info:
        getattr(client, action)(request)
    return str(info.value.get_code())


def wrapped_key_of(kenv: KmsEnv, object_key: str) -> bytes:
    raw = sdk.root_cos(kenv.double).get_object(Bucket=kenv.env.bucket, Key=object_key)
    blob = raw["Body"].get_raw_stream().read()
    parsed = envelope.parse_header(blob)
    assert parsed.suite == envelope.SUITE_CUSTODIAN_WRAP
    return bytes(parsed.wrapped_dek)


def source_as(kenv: KmsEnv, store: CredentialStore, key_id: str) -> TencentKmsKeySource:
    """A key source naming ``key_id`` but signing as ``store``'s session (no cache)."""
    objects = store.objects
    assert isinstance(objects, CosObjectStore)
    return TencentKmsKeySource(
        key_id, KmsApi(objects.settings, objects.credentials_provider), read_cache=None
    )


# -- custody through the URL ------------------------------------------------------------------
def test_round_trip_via_url_seals_with_the_tenants_own_cmk(kenv: KmsEnv, tmp_path: Any) -> None:
    store = kenv.store(WALLET_A, tmp_path)
    assert isinstance(store.keys, TencentKmsKeySource)
    store.put("github", b"ghp_secret")
    assert store.get("github").reveal() == b"ghp_secret"
    assert kenv.double.kms.calls == [("GenerateDataKey", kenv.keys[WALLET_A])]
    # The blob carries KMS's ciphertext (suite 0x0002), which names A's key and nothing else.
    wrapped = wrapped_key_of(kenv, key(WALLET_A))
    assert b"ghp_secret" not in wrapped
    # A second reader (no cache shared) unwraps through KMS, as the tenant.
    other = kenv.store(WALLET_A, tmp_path / "2")
    assert other.get("github").reveal() == b"ghp_secret"
    assert kenv.double.kms.calls[-1] == ("Decrypt", kenv.keys[WALLET_A])


def test_read_cache_bounds_kms_calls_and_can_be_turned_off(kenv: KmsEnv, tmp_path: Any) -> None:
    kenv.store(WALLET_A, tmp_path).put("github", b"x")
    cached = kenv.store(WALLET_A, tmp_path / "c", "&kms_cache_uses=3")
    before = len(kenv.double.kms.calls)
    for _ in range(7):
        cached.get("github")
    # 7 gets, at most 3 uses per unwrapped data key: Decrypt on uses 1, 4 and 7.
    assert len(kenv.double.kms.calls) - before == 3
    uncached = kenv.store(WALLET_A, tmp_path / "u", "&kms_cache_age=0")
    before = len(kenv.double.kms.calls)
    for _ in range(3):
        uncached.get("github")
    assert len(kenv.double.kms.calls) - before == 3


def test_kms_refuses_another_encryption_context(kenv: KmsEnv, tmp_path: Any) -> None:
    store = kenv.store(WALLET_A, tmp_path)
    source = source_as(kenv, store, kenv.keys[WALLET_A])
    ctx = kms_context(Context(WALLET_A, "github", key(WALLET_A)))
    dek, wrapped = source.generate_data_key(ctx, 10)
    assert source.decrypt_data_key(wrapped, ctx, 10) == dek
    for other in (
        kms_context(Context(WALLET_A, "gitlab", key(WALLET_A, "gitlab"))),
        kms_context(Context(WALLET_B, "github", key(WALLET_B))),
        {**ctx, "pc_storage_key": ctx["pc_storage_key"] + "x"},
    ):
        with pytest.raises(IntegrityError):
            source.decrypt_data_key(wrapped, other, 10)
    # ...and the refusal is KMS's, with the SDK-defined code, seen by a bare SDK client.
    code = sdk_code(
        session_kms(store),
        "Decrypt",
        {
            "CiphertextBlob": base64.b64encode(wrapped).decode(),
            "EncryptionContext": encryption_context_json({**ctx, "pc_service": "gitlab"}),
        },
    )
    assert code == "InvalidParameterValue.InvalidCiphertext"
    assert code in contract.error_codes("kms")


def test_every_bit_of_the_stored_wrapped_key_is_authenticated_by_kms(
    kenv: KmsEnv, tmp_path: Any
) -> None:
    """Regression (conformance integrity.bit-flip[wrapped-dek]): the wrapped key was stored as
    KMS's base64 text, whose last character has slack bits, so one flipped bit still opened.
    Stored decoded, any flipped bit is refused by KMS."""
    source = source_as(kenv, kenv.store(WALLET_A, tmp_path), kenv.keys[WALLET_A])
    ctx = kms_context(Context(WALLET_A, "github", key(WALLET_A)))
    _, wrapped = source.generate_data_key(ctx, 1)
    for i in range(len(wrapped)):
        flipped = bytearray(wrapped)
        flipped[i] ^= 0x01
        with pytest.raises(IntegrityError):
            source.decrypt_data_key(bytes(flipped), ctx, 1)


def test_a_blob_moved_to_another_service_or_tenant_is_refused(
    kenv: KmsEnv, tmp_path: Any
) -> None:
    a = kenv.store(WALLET_A, tmp_path)
    a.put("github", b"alpha")
    cos = sdk.root_cos(kenv.double)
    src = {"Bucket": kenv.env.bucket, "Key": key(WALLET_A)}
    body = cos.get_object(**src)["Body"].get_raw_stream().read()
    cos.put_object(Bucket=kenv.env.bucket, Key=key(WALLET_A, "gitlab"), Body=body)
    cos.put_object(Bucket=kenv.env.bucket, Key=key(WALLET_B), Body=body)
    fresh_a = kenv.store(WALLET_A, tmp_path / "a2", "&kms_cache_age=0")
    with pytest.raises(IntegrityError):
        fresh_a.get("gitlab")
    b = kenv.store(WALLET_B, tmp_path / "b")
    with pytest.raises(IntegrityError):
        b.get("github")
    # KMS itself refuses the moved context, not only our AAD:
    source = source_as(kenv, a, kenv.keys[WALLET_A])
    moved = kms_context(Context(WALLET_A, "gitlab", key(WALLET_A, "gitlab")))
    with pytest.raises(IntegrityError):
        source.decrypt_data_key(envelope.parse_header(body).wrapped_dek, moved, 5)


def test_tenant_a_session_cannot_unwrap_tenant_b_blob_cam_on_the_key(
    kenv: KmsEnv, tmp_path: Any
) -> None:
    """The key-policy test: B's data key, with B's exact context, through A's session."""
    a = kenv.store(WALLET_A, tmp_path / "a")
    b = kenv.store(WALLET_B, tmp_path / "b")
    b.put("github", b"bravo")
    wrapped = wrapped_key_of(kenv, key(WALLET_B))
    ctx = kms_context(Context(WALLET_B, "github", key(WALLET_B)))
    params = {
        "CiphertextBlob": base64.b64encode(wrapped).decode(),
        "EncryptionContext": encryption_context_json(ctx),
    }
    # CAM refuses A's session on B's key resource (bare SDK, A's temporary credentials).
    assert sdk_code(session_kms(a), "Decrypt", params) == "UnauthorizedOperation"
    assert (
        sdk_code(
            session_kms(a),
            "GenerateDataKey",
            {"KeyId": kenv.keys[WALLET_B], "KeySpec": "AES_256"},
        )
        == "UnauthorizedOperation"
    )
    # Through our key source (naming B's key so the client-side KEK-id check passes): the
    # refusal comes from the double's CAM evaluation.
    as_a = source_as(kenv, a, kenv.keys[WALLET_B])
    with pytest.raises(IntegrityError):
        as_a.decrypt_data_key(wrapped, ctx, 5)
    with pytest.raises(AccessDenied):
        as_a.generate_data_key(ctx, 5)
    # Control: the same request with B's session works, so the refusal above is the policy.
    as_b = source_as(kenv, b, kenv.keys[WALLET_B])
    assert len(as_b.decrypt_data_key(wrapped, ctx, 5)) == 32


def test_token_vendor_sessions_name_only_their_wallets_key(kenv: KmsEnv, tmp_path: Any) -> None:
    a = kenv.vended(WALLET_A, tmp_path / "a")
    b = kenv.vended(WALLET_B, tmp_path / "b")
    a.put("github", b"alpha")
    b.put("github", b"bravo")
    assert kenv.vended(WALLET_A, tmp_path / "a2").get("github").reveal() == b"alpha"
    sessions = [s for s in kenv.double.issued_sessions if s.via == "AssumeRole"]
    assert sessions and all(s.session_policy_text for s in sessions)
    # A's vended session: CAM refuses B's key (the session policy names only A's).
    wrapped = wrapped_key_of(kenv, key(WALLET_B))
    ctx = kms_context(Context(WALLET_B, "github", key(WALLET_B)))
    assert sdk_code(session_kms(a), "Decrypt", {
        "CiphertextBlob": base64.b64encode(wrapped).decode(),
        "EncryptionContext": encryption_context_json(ctx),
    }) == "UnauthorizedOperation"
    with pytest.raises(IntegrityError):
        source_as(kenv, a, kenv.keys[WALLET_B]).decrypt_data_key(wrapped, ctx, 5)
    # A read-only scoped session unwraps A's key but may not make data keys.
    scoped = a.scoped(["github"], read_only=True, enforcement="cloud")
    assert scoped.get("github").reveal() == b"alpha"
    as_scoped = source_as(kenv, scoped, kenv.keys[WALLET_A])
    a_ctx = kms_context(Context(WALLET_A, "github", key(WALLET_A)))
    assert len(as_scoped.decrypt_data_key(wrapped_key_of(kenv, key(WALLET_A)), a_ctx, 5)) == 32
    with pytest.raises(AccessDenied):
        as_scoped.generate_data_key(kms_context(Context(WALLET_A, "github", key(WALLET_A))), 1)


def test_a_vendor_for_an_unonboarded_wallet_says_so(kenv: KmsEnv, tmp_path: Any) -> None:
    stranger = "0x" + "c3" * 20
    with pytest.raises(ConfigurationError, match="has no KMS key"):
        portable_creds.open_store(
            f"{kenv.env.vendor_url()}&vendor_kms=true&kms_key={kenv.keys[WALLET_A]}",
            wallet=stranger, token=kenv.env.token_for(stranger), home=tmp_path, outbox=False,
            secret_id=kenv.env.vendor.secret_id, secret_key=kenv.env.vendor.secret_key,
        ).put("x", b"y")


def test_the_tenant_role_policy_grants_only_its_own_key(kenv: KmsEnv) -> None:
    rendered = kenv.prov.d.tenant_role(WALLET_A, kenv.prov.tenant_key(WALLET_A))["Policy"]
    kms_statements = [
        st for st in rendered["statement"] if any(a.startswith("name/kms:") for a in st["action"])
    ]
    assert kms_statements == [
        {
            "effect": "allow",
            "action": ["name/kms:GenerateDataKey", "name/kms:Decrypt"],
            "resource": [
                f"qcs::kms:{kenv.double.region}:uin/{kenv.double.owner_uin}:key/creatorUin/"
                f"{kenv.double.owner_uin}/{kenv.keys[WALLET_A]}"
            ],
        }
    ]
    assert kenv.double.kms.resource(kenv.keys[WALLET_A]) == kms_statements[0]["resource"][0]


# -- provisioner: onboard, verify, offboard -----------------------------------------------------
def test_onboard_is_idempotent_and_verify_reports_kms_drift(kenv: KmsEnv) -> None:
    prov = kenv.prov
    assert prov.onboard(WALLET_A) == []
    assert prov.verify() == []
    root = root_kms(kenv.double)
    request = models.DisableKeyRequest()
    request.KeyId = kenv.keys[WALLET_B]
    root.DisableKey(request)
    drift = prov.verify()
    assert f"KMS key {kenv.keys[WALLET_B]} of {WALLET_B} is Disabled" in drift
    assert prov.onboard(WALLET_B) == [f"enabled KMS key {kenv.keys[WALLET_B]} for {WALLET_B}"]
    assert prov.verify() == []
    # A deployment without KMS sees the KMS grant as drift in the tenant policy.
    plain = Provisioner(attrs.evolve(prov.d, kms=False), StaticKeys(
        kenv.double.root.secret_id, kenv.double.root.secret_key))
    assert f"policy portable-creds-{WALLET_A}-policy document differs" in plain.verify()


def test_render_shows_the_per_tenant_key_grant_with_placeholders(kenv: KmsEnv) -> None:
    doc = json.dumps(kenv.prov.d.render([WALLET_A]))
    assert "key/creatorUin/${CreatorUin}/${KeyId}" in doc
    assert "name/kms:Decrypt" in doc


def test_offboarded_tenant_cannot_decrypt_and_reonboarding_restores(
    kenv: KmsEnv, tmp_path: Any
) -> None:
    kenv.store(WALLET_A, tmp_path).put("github", b"alpha")
    wrapped = wrapped_key_of(kenv, key(WALLET_A))
    ctx = kms_context(Context(WALLET_A, "github", key(WALLET_A)))
    done = kenv.prov.offboard(WALLET_A)
    assert f"disabled KMS key {kenv.keys[WALLET_A]} of {WALLET_A}" in done
    # No session for A any more (its role is gone)...
    with pytest.raises(portable_creds.errors.PortableCredsError):
        kenv.store(WALLET_A, tmp_path / "again").get("github")
    # ...and the key is disabled: not even the account root unwraps A's data keys now.
    settings = parse_settings(StoreTarget(url=kenv.url(WALLET_A), wallet=None))
    root = TencentKmsKeySource(
        kenv.keys[WALLET_A],
        KmsApi(settings, StaticProvider(StaticKeys(
            kenv.double.root.secret_id, kenv.double.root.secret_key))),
        read_cache=None,
    )
    with pytest.raises(KeySourceError):
        root.decrypt_data_key(wrapped, ctx, 5)
    assert kenv.prov.offboard(WALLET_A) == []  # twice is fine
    # Onboarding again adopts and enables the same key: the tenant's data opens again.
    assert f"enabled KMS key {kenv.keys[WALLET_A]} for {WALLET_A}" in kenv.prov.onboard(WALLET_A)
    assert kenv.store(WALLET_A, tmp_path / "back").get("github").reveal() == b"alpha"


def test_offboard_with_delete_data_schedules_key_deletion(kenv: KmsEnv) -> None:
    done = kenv.prov.offboard(WALLET_B, delete_data=True)
    assert f"scheduled deletion of KMS key {kenv.keys[WALLET_B]} in 7 days" in done
    assert kenv.double.kms.keys[kenv.keys[WALLET_B]].state == "PendingDelete"
    with pytest.raises(ConfigurationError, match="PendingDelete"):
        kenv.prov.onboard(WALLET_B)


# -- custody moves ------------------------------------------------------------------------------
def _suites(store: CredentialStore) -> set[int]:
    return {
        envelope.parse_header(store.objects.get(o.key).data).suite
        for o in store.objects.list(f"bots/{store.wallet}/credentials/")
    }


def test_custody_move_root_secret_to_kms_and_back(kenv: KmsEnv, tmp_path: Any) -> None:
    secret = SecretKeySource(b"\x07" * 32)
    objects = kenv.env.open(WALLET_A)
    kms_source = portable_creds.open_store(
        kenv.url(WALLET_A), wallet=WALLET_A, token=kenv.env.token_for(WALLET_A),
        home=tmp_path, outbox=False,
    ).keys
    assert isinstance(kms_source, TencentKmsKeySource)

    def store(keys: Any) -> CredentialStore:
        return CredentialStore(objects, keys, WALLET_A)

    old = store(secret)
    old.put("a", b"alpha")
    old.put("b", b"beta")
    assert _suites(old) == {envelope.SUITE_AES256GCM_HKDF_COMMIT}
    to_kms = store(ChainedKeySource(kms_source, secret))
    assert to_kms.rewrap() == 2
    assert _suites(to_kms) == {envelope.SUITE_CUSTODIAN_WRAP}
    only_kms = store(kms_source)
    assert only_kms.get("a").reveal() == b"alpha" and only_kms.get("b").reveal() == b"beta"
    with pytest.raises(IntegrityError):
        store(secret).get("a")
    assert to_kms.rewrap() == 0
    back = store(ChainedKeySource(secret, kms_source))
    assert back.rewrap() == 2
    assert _suites(back) == {envelope.SUITE_AES256GCM_HKDF_COMMIT}
    assert store(secret).get("b").reveal() == b"beta"


def test_kms_url_keeps_opening_root_secret_blobs(kenv: KmsEnv, tmp_path: Any) -> None:
    """``kms_key=`` seals with KMS and still opens blobs sealed with the caller's key source
    (the root secret); rewrap moves them."""
    secret = SecretKeySource(b"\x09" * 32)
    plain = portable_creds.open_store(
        f"{kenv.env.url}&mode=role-per-tenant", wallet=WALLET_A, keys=secret,
        token=kenv.env.token_for(WALLET_A), home=tmp_path, outbox=False,
    )
    plain.put("old", b"before")
    store = portable_creds.open_store(
        kenv.url(WALLET_A), wallet=WALLET_A, keys=secret,
        token=kenv.env.token_for(WALLET_A), home=tmp_path, outbox=False,
    )
    assert isinstance(store.keys, ChainedKeySource) and store.keys.previous == (secret,)
    assert store.get("old").reveal() == b"before"
    assert store.rewrap() == 1
    assert _suites(store) == {envelope.SUITE_CUSTODIAN_WRAP}


# -- errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "unwrap", "expected"),
    [
        ("InvalidParameterValue.InvalidCiphertext", True, IntegrityError),
        ("FailedOperation.DecryptError", True, IntegrityError),
        ("UnauthorizedOperation", True, IntegrityError),
        ("AuthFailure.UnauthorizedOperation", True, IntegrityError),
        ("UnauthorizedOperation", False, AccessDenied),
        ("ResourceUnavailable.CmkDisabled", False, KeySourceError),
        ("ResourceUnavailable.CmkNotFound", True, KeySourceError),
        ("ResourceUnavailable.KeyPendingDelete", False, KeySourceError),
        ("ResourceUnavailable.CmkArchived", False, KeySourceError),
        ("InvalidParameterValue.InvalidKeyId", False, KeySourceError),
        ("AuthFailure.TokenFailure", False, ExpiredCredentials),
        ("AuthFailure.SignatureFailure", False, CredentialsError),
        ("InternalError", False, RemoteUnavailable),
        ("RequestLimitExceeded", False, RemoteUnavailable),
        ("UnsupportedOperation.ServiceTemporaryUnavailable", False, RemoteUnavailable),
    ],
)
def test_error_mapping(code: str, unwrap: bool, expected: type[Exception]) -> None:
    assert code in contract.allowed_codes("kms")
    assert isinstance(map_kms_error(code, "r-1", what="x", unwrap=unwrap), expected)


def test_disabled_key_and_unavailable_kms_map_to_typed_errors(
    kenv: KmsEnv, tmp_path: Any
) -> None:
    store = kenv.store(WALLET_A, tmp_path, "&retries=1")
    request = models.DisableKeyRequest()
    request.KeyId = kenv.keys[WALLET_A]
    root_kms(kenv.double).DisableKey(request)
    with pytest.raises(KeySourceError):
        store.put("github", b"x")
    enable = models.EnableKeyRequest()
    enable.KeyId = kenv.keys[WALLET_A]
    root_kms(kenv.double).EnableKey(enable)
    objects = store.objects
    assert isinstance(objects, CosObjectStore)
    objects.credentials_provider.credentials()  # the STS call is not the faulted one
    kenv.double.faults.fail_next(5, status=503, target="api")
    with pytest.raises(RemoteUnavailable):
        store.put("github", b"x")
    kenv.double.faults.clear()
    store.put("github", b"x")


def test_kms_key_parameter_is_checked() -> None:
    base = "cos://c-1250000000?region=ap-guangzhou&owner_uin=1"
    for bad in ("alias/foo", "qcs::kms:x", "a b"):
        with pytest.raises(ConfigurationError, match="KeyId"):
            parse_settings(StoreTarget(url=f"{base}&kms_key={bad}", wallet=None))
    with pytest.raises(ConfigurationError, match="need kms_key"):
        parse_settings(StoreTarget(url=f"{base}&kms_cache_age=5", wallet=None))
    with pytest.raises(ConfigurationError, match="kms_write_cache=1 needs"):
        parse_settings(
            StoreTarget(url=f"{base}&kms_key=k-1&kms_cache_age=0&kms_write_cache=1", wallet=None)
        )
    s = parse_settings(StoreTarget(url=f"{base}&kms_key=k-1&kms_write_cache=1", wallet=None))
    assert s.kms is not None and s.kms.write_cache is not None and s.kms.key_id == "k-1"


def test_an_oversized_encryption_context_is_refused_before_kms() -> None:
    with pytest.raises(ConfigurationError, match="1024"):
        encryption_context_json({"pc_storage_key": "k" * 1100})


def test_a_store_without_kms_never_imports_the_kms_sdk() -> None:
    code = (
        "import sys\n"
        "from portable_creds_tencent.driver import CosDriver\n"
        "from portable_creds_tencent import cos_store, settings\n"
        "assert not any(m.startswith('tencentcloud.kms') for m in sys.modules), 'kms loaded'\n"
        "assert 'portable_creds_tencent.kms' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- fidelity contract of the KMS double -----------------------------------------------------
def kms_emitted_codes(source: str) -> set[str]:
    tree = ast.parse(source)
    out: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "KmsError"
            and node.args
        ):
            first = node.args[0]
            if isinstance(first, ast.IfExp):
                out |= {first.body.value, first.orelse.value}  # type: ignore[attr-defined]
                continue
            assert isinstance(first, ast.Constant) and isinstance(first.value, str)
            out.add(first.value)
    return out


def shared_api_codes() -> set[str]:
    """Codes the shared entry/authentication code of ``ApiService`` emits for every service."""
    tree = ast.parse(Path(inspect.getfile(api_module)).read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ApiService")
    out: set[str] = set()
    for fn in cls.body:
        if isinstance(fn, ast.FunctionDef) and fn.name in ("handle", "_verify_tc3"):
            for node in ast.walk(fn):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "ApiError"
                ):
                    first = node.args[0]
                    assert isinstance(first, ast.Constant)
                    out.add(str(first.value))
    return out


def test_every_code_the_kms_double_can_emit_is_defined_by_the_sdk() -> None:
    source = Path(inspect.getfile(kms_module)).read_text()
    emitted = kms_emitted_codes(source) | shared_api_codes()
    assert {
        "InvalidParameterValue.InvalidCiphertext",
        "UnauthorizedOperation",
        "ResourceUnavailable.CmkDisabled",
        "ResourceUnavailable.KeyPendingDelete",
    } <= emitted
    assert contract.code_violations("kms", emitted) == []
    broken = source.replace('"ResourceUnavailable.CmkDisabled"', '"ResourceUnavailable.KeyIsOff"')
    assert contract.code_violations("kms", kms_emitted_codes(broken)) == [
        "ResourceUnavailable.KeyIsOff"
    ]


def test_kms_exchanges_and_provisioner_reads_are_defined_by_the_sdk_models(
    kenv: KmsEnv, tmp_path: Any
) -> None:
    with tcapi.record_reads() as reads:
        kenv.prov.verify()
        kenv.prov.onboard(WALLET_A)
    assert {r for r in reads if r[0] == "kms"} >= {
        ("kms", "ListKeyDetail", "KeyMetadatas"),
        ("kms", "ListKeyDetail", "KeyMetadatas.Alias"),
    }
    assert [
        v for s, a, p in reads if s == "kms" and (v := contract.read_violation(s, a, p))
    ] == []
    store = kenv.store(WALLET_A, tmp_path)
    store.put("github", b"x")
    kenv.store(WALLET_A, tmp_path / "2").get("github")
    seen = {(ex.service, ex.action) for ex in kenv.double.api.exchanges if ex.service == "kms"}
    assert {("kms", "GenerateDataKey"), ("kms", "Decrypt"), ("kms", "CreateKey")} <= seen
    problems: list[str] = []
    for ex in kenv.double.api.exchanges:
        problems += contract.request_violations(ex.service, ex.action, ex.params)
        problems += contract.response_violations(ex.service, ex.action, ex.response)
    assert problems == []
    # An unknown parameter is answered like the real API does.
    assert (
        sdk_code_raw(kenv.double, "GenerateDataKey", {"KeyId": "x", "Bogus": 1})
        == "UnknownParameter"
    )


def sdk_code_raw(d: TencentDouble, action: str, params: dict[str, Any]) -> str:
    from tencentcloud.common.common_client import CommonClient

    client = CommonClient(
        "kms", "2019-01-18", credential.Credential(d.root.secret_id, d.root.secret_key),
        d.region, sdk.profile(d),
    )
    with pytest.raises(TencentCloudSDKException) as info:
        client.call_json(action, params)
    return str(info.value.get_code())


def test_ciphertext_is_opaque_base64_naming_no_plaintext(kenv: KmsEnv) -> None:
    client = root_kms(kenv.double)
    request = models.EncryptRequest()
    request.from_json_string(json.dumps({
        "KeyId": kenv.keys[WALLET_A],
        "Plaintext": base64.b64encode(b"hello world").decode(),
        "EncryptionContext": '{"a":"b"}',
    }))
    blob = client.Encrypt(request).CiphertextBlob
    assert b"hello world" not in base64.b64decode(blob)
    decrypt = models.DecryptRequest()
    decrypt.from_json_string(json.dumps({"CiphertextBlob": blob, "EncryptionContext": '{"a":"b"}'}))
    assert base64.b64decode(client.Decrypt(decrypt).Plaintext) == b"hello world"
    flipped = bytearray(base64.b64decode(blob))
    flipped[-1] ^= 1
    assert sdk_code(client, "Decrypt", {
        "CiphertextBlob": base64.b64encode(bytes(flipped)).decode(),
        "EncryptionContext": '{"a":"b"}',
    }) == "InvalidParameterValue.InvalidCiphertext"




def test_cli_onboard_and_offboard_with_kms(env: Env, tmp_path: Any) -> None:
    """``admin cos onboard --kms`` / ``offboard --kms`` through ``admin.main``."""
    from .test_admin import run

    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(env.idp.jwks()))
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({
        "url": env.url, "issuer": env.deployment.issuer, "audience": [AUDIENCE],
        "jwks-file": str(jwks), "vendor-principal": list(env.deployment.vendor_principals),
        "log-bucket": env.deployment.log_bucket, "allowed-cidr": ["127.0.0.0/8"],
        "no-require-tls": True,
    }))
    wallet = "0x" + "d4" * 20
    onboard = run(env, "onboard", wallet, "--kms", "--config", str(cfg))
    assert onboard.returncode == 0, onboard.stderr
    assert "created KMS key " in onboard.stdout and f"for {wallet}" in onboard.stdout
    rendered = json.loads(run(env, "render", wallet, "--kms", "--config", str(cfg)).stdout)
    assert "name/kms:Decrypt" in json.dumps(rendered["tenant_roles"][0]["Policy"])
    assert "name/kms:Decrypt" in json.dumps(rendered["vendor_role"]["Policy"])
    offboard = run(env, "offboard", wallet, "--kms", "--config", str(cfg))
    assert offboard.returncode == 0 and "disabled KMS key" in offboard.stdout


def test_kms_over_plain_http_only_to_a_loopback_endpoint() -> None:
    base = (
        "cos://c-1250000000?region=ap-guangzhou&owner_uin=1&scheme=http&ip=127.0.0.1&port=9"
        "&kms_key=k-1"
    )
    provider = StaticProvider(StaticKeys("id", "key"))
    remote = parse_settings(StoreTarget(url=f"{base}&kms_endpoint=kms.example.com", wallet=None))
    with pytest.raises(ConfigurationError, match="loopback"):
        KmsApi(remote, provider)
    local = parse_settings(StoreTarget(url=f"{base}&kms_endpoint=127.0.0.1:9", wallet=None))
    KmsApi(local, provider)
