"""What the double must refuse: expired or mismatched temporary credentials, bad OIDC tokens,
and requests outside the tenant's policy, seen through the official SDKs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt
import pytest
from portable_creds_tencent.testing import TestIdentityProvider
from qcloud_cos.cos_exception import CosServiceError
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.sts.v20180813 import models as sts_models

from . import sdk
from .conftest import AUDIENCE, ISSUER, WALLET_A, WALLET_B, Env, key


def web_identity(env: Env, token: str, wallet: str = WALLET_A) -> dict[str, Any]:
    d = env.double
    out = sdk.unsigned_sts(d).call_json(
        "AssumeRoleWithWebIdentity",
        {
            "ProviderId": "portable-creds",
            "WebIdentityToken": token,
            "RoleArn": f"qcs::cam::uin/{d.owner_uin}:roleName/portable-creds-{wallet}",
            "RoleSessionName": "refusal-test",
            "DurationSeconds": 900,
        },
        options={"SkipSign": True},
    )
    return out["Response"]  # type: ignore[no-any-return]


def tenant_cos(env: Env, wallet: str = WALLET_A) -> tuple[Any, dict[str, Any]]:
    resp = web_identity(env, env.idp.mint(wallet, AUDIENCE), wallet)
    c = resp["Credentials"]
    return sdk.cos(env.double, c["TmpSecretId"], c["TmpSecretKey"], c["Token"]), c


def code_of(fn: Callable[[], object]) -> tuple[int, str]:
    with pytest.raises(CosServiceError) as exc:
        fn()
    return exc.value.get_status_code(), exc.value.get_error_code()


def test_expired_temporary_credentials_are_refused_by_cos_and_sts(env: Env) -> None:
    client, creds = tenant_cos(env)
    client.put_object(Bucket=env.bucket, Body=b"x", Key=key(WALLET_A))
    env.double.advance(901)
    assert code_of(lambda: client.get_object(Bucket=env.bucket, Key=key(WALLET_A))) == (
        400,
        "ExpiredToken",
    )
    with pytest.raises(TencentCloudSDKException) as exc:
        sdk.sts(
            env.double, creds["TmpSecretId"], creds["TmpSecretKey"], creds["Token"]
        ).GetCallerIdentity(sts_models.GetCallerIdentityRequest())
    assert exc.value.get_code() == "AuthFailure.TokenFailure"


def test_token_must_match_the_temporary_key(env: Env) -> None:
    _, creds_a = tenant_cos(env, WALLET_A)
    _, creds_b = tenant_cos(env, WALLET_B)
    mixed = sdk.cos(env.double, creds_a["TmpSecretId"], creds_a["TmpSecretKey"], creds_b["Token"])
    assert code_of(lambda: mixed.get_object(Bucket=env.bucket, Key=key(WALLET_A)))[1] == (
        "InvalidToken"
    )
    no_token = sdk.cos(env.double, creds_a["TmpSecretId"], creds_a["TmpSecretKey"])
    assert code_of(lambda: no_token.get_object(Bucket=env.bucket, Key=key(WALLET_A)))[1] == (
        "InvalidToken"
    )


def _wje(env: Env, token: str) -> str:
    with pytest.raises(TencentCloudSDKException) as exc:
        web_identity(env, token)
    return str(exc.value.get_code())


def test_forged_expired_wrong_audience_and_wrong_issuer_tokens_are_refused(env: Env) -> None:
    forger = TestIdentityProvider(ISSUER, kid=env.idp.kid)  # same kid, different key
    assert _wje(env, forger.mint(WALLET_A, AUDIENCE)) == "InvalidParameter.WebIdentityTokenError"
    assert _wje(env, env.idp.mint(WALLET_A, AUDIENCE, lifetime=-5)) == (
        "InvalidParameter.WebIdentityTokenError"
    )
    assert _wje(env, env.idp.mint(WALLET_A, "someone-else")) == (
        "InvalidParameter.WebIdentityTokenError"
    )
    assert _wje(env, env.idp.mint(WALLET_A, AUDIENCE, issuer="https://evil.example")) == (
        "InvalidParameter.WebIdentityTokenError"
    )
    import time

    assert _wje(env, env.idp.mint(WALLET_A, AUDIENCE, not_before=time.time() + 600)) == (
        "InvalidParameter.WebIdentityTokenError"
    )
    unsigned = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": WALLET_A, "exp": int(time.time()) + 60},
        key=None,
        algorithm="none",
    )
    assert _wje(env, unsigned) == "InvalidParameter.WebIdentityTokenError"
    assert _wje(env, "garbage") == "InvalidParameter.WebIdentityTokenError"


def test_token_expires_by_the_doubles_clock(env: Env) -> None:
    token = env.idp.mint(WALLET_A, AUDIENCE, lifetime=300)
    assert "Credentials" in web_identity(env, token)
    env.double.advance(301)
    assert _wje(env, token) == "InvalidParameter.WebIdentityTokenError"


def test_valid_token_for_another_wallet_cannot_assume_this_wallets_role(env: Env) -> None:
    with pytest.raises(TencentCloudSDKException) as exc:
        web_identity(env, env.idp.mint(WALLET_B, AUDIENCE), WALLET_A)
    assert exc.value.get_code() == "UnauthorizedOperation"


def test_requests_outside_the_tenant_policy_are_refused(env: Env) -> None:
    root = sdk.root_cos(env.double)
    root.put_object(Bucket=env.bucket, Body=b"b", Key=key(WALLET_B))
    client, _ = tenant_cos(env, WALLET_A)
    b = env.bucket
    assert code_of(lambda: client.get_object(Bucket=b, Key=key(WALLET_B))) == (403, "AccessDenied")
    assert code_of(lambda: client.put_object(Bucket=b, Body=b"x", Key=key(WALLET_B)))[1] == (
        "AccessDenied"
    )
    assert code_of(lambda: client.delete_object(Bucket=b, Key=key(WALLET_B)))[1] == "AccessDenied"
    assert code_of(lambda: client.head_object(Bucket=b, Key=key(WALLET_B)))[0] == 403
    assert code_of(lambda: client.list_objects(Bucket=b, Prefix=f"bots/{WALLET_B}/"))[1] == (
        "AccessDenied"
    )
    assert code_of(lambda: client.list_objects(Bucket=b, Prefix="bots/"))[1] == "AccessDenied"
    assert code_of(lambda: client.list_objects(Bucket=b))[1] == "AccessDenied"
    assert (
        code_of(
            lambda: client.put_bucket_policy(
                Bucket=b,
                Policy={
                    "version": "2.0",
                    "statement": [{"effect": "allow", "action": "*", "resource": "*"}],
                },
            )
        )[1]
        == "AccessDenied"
    )
    out = client.delete_objects(
        Bucket=b, Delete={"Quiet": "false", "Object": [{"Key": key(WALLET_B)}]}
    )
    assert [e["Code"] for e in out["Error"]] == ["AccessDenied"]
    assert env.double.object_keys(b) == [key(WALLET_B)]
    # ... while its own prefix works.
    client.put_object(Bucket=b, Body=b"a", Key=key(WALLET_A))
    listed = client.list_objects(Bucket=b, Prefix=f"bots/{WALLET_A}/")
    assert [c["Key"] for c in listed["Contents"]] == [key(WALLET_A)]


def test_bucket_policy_deny_applies_even_to_the_root_account(env: Env) -> None:
    root = sdk.root_cos(env.double)
    root.put_bucket_policy(
        Bucket=env.bucket,
        Policy={
            "version": "2.0",
            "statement": [
                {
                    "effect": "deny",
                    "principal": {"qcs": ["*"]},
                    "action": ["name/cos:*"],
                    "resource": ["*"],
                    "condition": {"bool_equal": {"cos:secure-transport": "false"}},
                }
            ],
        },
    )
    assert code_of(lambda: root.put_object(Bucket=env.bucket, Body=b"x", Key="k")) == (
        403,
        "AccessDenied",
    )


def test_sdk_with_a_wrong_secret_is_refused_by_cos_and_by_tc3(env: Env) -> None:
    d = env.double
    wrong = sdk.cos(d, d.root.secret_id, "x" * 32)
    assert code_of(lambda: wrong.put_object(Bucket=env.bucket, Body=b"x", Key="k")) == (
        403,
        "SignatureDoesNotMatch",
    )
    with pytest.raises(TencentCloudSDKException) as exc:
        sdk.sts(d, d.root.secret_id, "x" * 32).GetCallerIdentity(
            sts_models.GetCallerIdentityRequest()
        )
    assert exc.value.get_code() == "AuthFailure.SignatureFailure"
    assert d.object_keys(env.bucket) == []


def test_content_md5_mismatch_is_refused(env: Env) -> None:
    root = sdk.root_cos(env.double)
    assert code_of(
        lambda: root.put_object(
            Bucket=env.bucket, Body=b"payload", Key="k", ContentMD5="1B2M2Y8AsgTpgAmY7PhCfg=="
        )
    ) == (400, "BadDigest")
    assert env.double.object_keys(env.bucket) == []


def test_presigned_url_works_for_permanent_keys_only(env: Env) -> None:
    """The SDK's presigned URLs carry no token: fine for a permanent key, refused for temp."""
    import requests

    root = sdk.root_cos(env.double)
    root.put_object(Bucket=env.bucket, Body=b"shared", Key="p")
    host = f"{env.bucket}.cos.{env.double.region}.myqcloud.com"
    # With IP=/Port= the SDK would sign host=127.0.0.1 unless told the real Host.
    url = root.get_presigned_url(
        Bucket=env.bucket, Key="p", Method="GET", Expired=60, Headers={"Host": host}
    )
    resp = requests.get(url, headers={"Host": host}, timeout=10)
    assert (resp.status_code, resp.content) == (200, b"shared")
    client, _ = tenant_cos(env, WALLET_A)
    client.put_object(Bucket=env.bucket, Body=b"t", Key=key(WALLET_A))
    turl = client.get_presigned_url(
        Bucket=env.bucket, Key=key(WALLET_A), Method="GET", Expired=60, Headers={"Host": host}
    )
    resp = requests.get(turl, headers={"Host": host}, timeout=10)
    assert resp.status_code == 400 and b"InvalidToken" in resp.content
