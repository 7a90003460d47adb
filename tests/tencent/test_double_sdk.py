"""The double driven by the unmodified official SDKs: every operation the driver and the
provisioner use, plus the COS semantics they rely on."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from portable_creds_tencent.policy_compare import same_policy
from portable_creds_tencent.testing import TencentDouble, TestIdentityProvider
from qcloud_cos.cos_exception import CosServiceError
from tencentcloud.cam.v20190116 import models as cam_models
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.sts.v20180813 import models as sts_models

from . import sdk
from .conftest import AUDIENCE, ISSUER, WALLET_A


@pytest.fixture
def bucket(double: TencentDouble) -> str:
    return double.create_bucket("fidelity")


def test_object_round_trip_with_metadata_and_awkward_keys(
    double: TencentDouble, bucket: str
) -> None:
    c = sdk.root_cos(double)
    key = "bots/dir with space/ü+%&=?.enc"
    put = c.put_object(
        Bucket=bucket,
        Body=b"\x00payload",
        Key=key,
        EnableMD5=True,
        Metadata={"x-cos-meta-owner": "alice"},
    )
    resp = c.get_object(Bucket=bucket, Key=key)
    assert resp["Body"].get_raw_stream().read() == b"\x00payload"
    assert resp["ETag"] == put["ETag"]
    assert resp["x-cos-meta-owner"] == "alice"
    head = c.head_object(Bucket=bucket, Key=key)
    assert head["Content-Length"] == "8"
    c.delete_object(Bucket=bucket, Key=key)
    c.delete_object(Bucket=bucket, Key=key)  # deleting an absent key is not an error
    with pytest.raises(CosServiceError) as exc:
        c.get_object(Bucket=bucket, Key=key)
    assert (exc.value.get_status_code(), exc.value.get_error_code()) == (404, "NoSuchKey")
    assert exc.value.get_request_id() not in ("", "Unknown")


def test_head_missing_is_nosuchresource_and_missing_bucket_is_nosuchbucket(
    double: TencentDouble, bucket: str
) -> None:
    c = sdk.root_cos(double)
    with pytest.raises(CosServiceError) as exc:
        c.head_object(Bucket=bucket, Key="missing")
    assert (exc.value.get_status_code(), exc.value.get_error_code()) == (404, "NoSuchResource")
    with pytest.raises(CosServiceError) as exc:
        c.get_object(Bucket="nope-" + double.appid, Key="k")
    assert exc.value.get_error_code() == "NoSuchBucket"


def test_list_prefix_delimiter_marker_maxkeys_are_strings(
    double: TencentDouble, bucket: str
) -> None:
    c = sdk.root_cos(double)
    keys = [f"bots/w/credentials/s{i:02d}.enc" for i in range(7)] + ["bots/w/other/x", "bots/x/y"]
    for k in keys:
        c.put_object(Bucket=bucket, Body=b"x", Key=k)
    seen: list[str] = []
    marker = ""
    pages = 0
    while True:
        page = c.list_objects(Bucket=bucket, Prefix="bots/w/credentials/", Marker=marker, MaxKeys=3)
        pages += 1
        assert page["IsTruncated"] in ("true", "false")
        seen += [item["Key"] for item in page.get("Contents", [])]
        if page["IsTruncated"] == "false":
            break
        marker = page["NextMarker"]
    assert pages == 3
    assert seen == sorted(k for k in keys if k.startswith("bots/w/credentials/"))
    tree = c.list_objects(Bucket=bucket, Prefix="bots/", Delimiter="/")
    assert "Contents" not in tree
    assert [p["Prefix"] for p in tree["CommonPrefixes"]] == ["bots/w/", "bots/x/"]
    empty = c.list_objects(Bucket=bucket, Prefix="nothing/")
    assert "Contents" not in empty and empty["IsTruncated"] == "false"
    raw = c.list_objects(Bucket=bucket, Prefix="bots/x/", EncodingType="url")
    assert raw["Contents"][0]["Key"] == quote("bots/x/y", safe="/")


def test_conditional_writes(double: TencentDouble, bucket: str) -> None:
    c = sdk.root_cos(double)
    first = c.put_object(
        Bucket=bucket, Body=b"v1", Key="k", Metadata={"x-cos-forbid-overwrite": "true"}
    )
    with pytest.raises(CosServiceError) as exc:
        c.put_object(
            Bucket=bucket, Body=b"v2", Key="k", Metadata={"x-cos-forbid-overwrite": "true"}
        )
    assert (exc.value.get_status_code(), exc.value.get_error_code()) == (409, "FileAlreadyExists")
    with pytest.raises(CosServiceError) as exc:
        c.put_object(Bucket=bucket, Body=b"v2", Key="k", IfNoneMatch="*")
    assert (exc.value.get_status_code(), exc.value.get_error_code()) == (412, "PreconditionFailed")
    with pytest.raises(CosServiceError) as exc:
        c.put_object(Bucket=bucket, Body=b"v2", Key="k", IfMatch='"0000"')
    assert exc.value.get_status_code() == 412
    second = c.put_object(Bucket=bucket, Body=b"v2", Key="k", IfMatch=first["ETag"])
    assert second["ETag"] != first["ETag"]
    assert c.get_object(Bucket=bucket, Key="k")["Body"].get_raw_stream().read() == b"v2"


def test_batch_delete_policy_lifecycle_tagging_logging(double: TencentDouble, bucket: str) -> None:
    c = sdk.root_cos(double)
    for k in ("a", "b"):
        c.put_object(Bucket=bucket, Body=b"x", Key=k)
    result = c.delete_objects(
        Bucket=bucket, Delete={"Quiet": "false", "Object": [{"Key": "a"}, {"Key": "b"}]}
    )
    assert sorted(d["Key"] for d in result["Deleted"]) == ["a", "b"]
    assert double.object_keys(bucket) == []
    policy = {
        "version": "2.0",
        "statement": [
            {
                "effect": "deny",
                "principal": {"qcs": ["*"]},
                "action": ["name/cos:DeleteBucket"],
                "resource": ["*"],
            }
        ],
    }
    c.put_bucket_policy(Bucket=bucket, Policy=policy)
    stored = json.loads(c.get_bucket_policy(Bucket=bucket)["Policy"])
    # COS's documented GET Bucket policy form: capitalised keys, principals rewritten.
    assert stored["Statement"][0]["Principal"] == {"qcs": ["qcs::cam::anyone:anyone"]}
    assert stored != policy and same_policy(stored, policy)
    lifecycle = {
        "Rule": [
            {
                "ID": "r1",
                "Filter": {"Prefix": "bots/"},
                "Status": "Enabled",
                "Expiration": {"Days": "30"},
            }
        ]
    }
    c.put_bucket_lifecycle(Bucket=bucket, LifecycleConfiguration=lifecycle)
    assert c.get_bucket_lifecycle(Bucket=bucket) == lifecycle
    c.put_object(Bucket=bucket, Body=b"x", Key="t")
    c.put_object_tagging(
        Bucket=bucket, Key="t", Tagging={"TagSet": {"Tag": [{"Key": "wallet", "Value": "0xabc"}]}}
    )
    assert c.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]["Tag"] == [
        {"Key": "wallet", "Value": "0xabc"}
    ]
    logs = double.create_bucket("logs")
    c.put_bucket_logging(
        Bucket=bucket,
        BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": logs, "TargetPrefix": "access/"}},
    )
    assert c.get_bucket_logging(Bucket=bucket)["LoggingEnabled"] == {
        "TargetBucket": logs,
        "TargetPrefix": "access/",
    }
    with pytest.raises(CosServiceError) as exc:
        c.put_bucket_logging(
            Bucket=bucket,
            BucketLoggingStatus={
                "LoggingEnabled": {"TargetBucket": "missing-" + double.appid, "TargetPrefix": "x"}
            },
        )
    assert exc.value.get_error_code() == "InvalidTargetBucketForLogging"


def _trust_root(d: TencentDouble) -> str:
    return json.dumps(
        {
            "version": "2.0",
            "statement": [
                {
                    "effect": "allow",
                    "action": ["name/sts:AssumeRole", "name/sts:TagSession"],
                    "principal": {"qcs": [f"qcs::cam::uin/{d.owner_uin}:root"]},
                }
            ],
        }
    )


def test_cam_and_sts_through_generated_clients(double: TencentDouble, bucket: str) -> None:
    cam = sdk.cam(double)
    req = cam_models.CreateRoleRequest()
    req.RoleName, req.PolicyDocument, req.SessionDuration = "reader", _trust_root(double), 3600
    role_id = cam.CreateRole(req).RoleId
    pol = cam_models.CreatePolicyRequest()
    pol.PolicyName = "reader-policy"
    pol.PolicyDocument = json.dumps(
        {
            "version": "2.0",
            "statement": [{"effect": "allow", "action": ["name/cos:*"], "resource": ["*"]}],
        }
    )
    policy_id = cam.CreatePolicy(pol).PolicyId
    att = cam_models.AttachRolePolicyRequest()
    att.PolicyId, att.AttachRoleName = policy_id, "reader"
    cam.AttachRolePolicy(att)
    lst = cam_models.ListAttachedRolePoliciesRequest()
    lst.RoleName, lst.Page, lst.Rp = "reader", 1, 20
    assert [p.PolicyId for p in cam.ListAttachedRolePolicies(lst).List] == [policy_id]
    get = cam_models.GetRoleRequest()
    get.RoleName = "reader"
    assert cam.GetRole(get).RoleInfo.RoleId == role_id

    sts = sdk.sts(double)
    ar = sts_models.AssumeRoleRequest()
    ar.RoleArn = f"qcs::cam::uin/{double.owner_uin}:roleName/reader"
    ar.RoleSessionName = "fidelity"
    ar.DurationSeconds = 900
    session_policy = {
        "version": "2.0",
        "statement": [
            {
                "effect": "allow",
                "action": ["name/cos:GetObject"],
                "resource": [f"qcs::cos:{double.region}:uid/{double.appid}:{bucket}/open/*"],
            }
        ],
    }
    ar.Policy = quote(json.dumps(session_policy))
    tag = sts_models.Tag()
    tag.Key, tag.Value = "wallet", WALLET_A
    ar.Tags = [tag]
    creds = sts.AssumeRole(ar)
    assert creds.ExpiredTime > double.now()
    issued = double.issued_sessions[-1]
    assert issued.tags == (("wallet", WALLET_A),)
    assert json.loads(issued.session_policy_text or "") == session_policy

    who = sdk.sts(
        double,
        creds.Credentials.TmpSecretId,
        creds.Credentials.TmpSecretKey,
        creds.Credentials.Token,
    ).GetCallerIdentity(sts_models.GetCallerIdentityRequest())
    assert who.Arn == f"qcs::sts:{double.owner_uin}:assumed-role/{role_id}/fidelity"
    assert who.AccountId == double.owner_uin

    root = sdk.root_cos(double)
    root.put_object(Bucket=bucket, Body=b"o", Key="open/k")
    root.put_object(Bucket=bucket, Body=b"s", Key="secret/k")
    tmp = sdk.cos(
        double,
        creds.Credentials.TmpSecretId,
        creds.Credentials.TmpSecretKey,
        creds.Credentials.Token,
    )
    assert tmp.get_object(Bucket=bucket, Key="open/k")["Body"].get_raw_stream().read() == b"o"
    with pytest.raises(CosServiceError) as exc:  # role allows cos:*, session policy does not
        tmp.get_object(Bucket=bucket, Key="secret/k")
    assert exc.value.get_error_code() == "AccessDenied"
    with pytest.raises(CosServiceError):
        tmp.put_object(Bucket=bucket, Body=b"x", Key="open/k")

    det = cam_models.DetachRolePolicyRequest()
    det.PolicyId, det.DetachRoleName = policy_id, "reader"
    cam.DetachRolePolicy(det)
    with pytest.raises(CosServiceError) as exc:  # nothing attached any more
        tmp.get_object(Bucket=bucket, Key="open/k")
    assert exc.value.get_error_code() == "AccessDenied"


def test_web_identity_through_common_client_skipsign(
    double: TencentDouble, idp: TestIdentityProvider
) -> None:
    cam = sdk.cam(double)
    oidc = cam_models.CreateOIDCConfigRequest()
    oidc.Name, oidc.IdentityUrl, oidc.IdentityKey = "idp", ISSUER, idp.identity_key()
    oidc.ClientId = [AUDIENCE]
    cam.CreateOIDCConfig(oidc)
    desc = cam_models.DescribeOIDCConfigRequest()
    desc.Name = "idp"
    assert cam.DescribeOIDCConfig(desc).ClientId == [AUDIENCE]
    role = cam_models.CreateRoleRequest()
    role.RoleName = "tenant"
    role.PolicyDocument = json.dumps(
        {
            "version": "2.0",
            "statement": [
                {
                    "effect": "allow",
                    "action": ["name/sts:AssumeRoleWithWebIdentity"],
                    "principal": {
                        "federated": [f"qcs::cam::uin/{double.owner_uin}:oidc-provider/idp"]
                    },
                    "condition": {
                        "string_equal": {
                            "oidc:iss": [ISSUER],
                            "oidc:aud": [AUDIENCE],
                            "oidc:sub": [WALLET_A],
                        }
                    },
                }
            ],
        }
    )
    cam.CreateRole(role)
    params = {
        "ProviderId": "idp",
        "RoleArn": f"qcs::cam::uin/{double.owner_uin}:roleName/tenant",
        "RoleSessionName": "s1",
        "DurationSeconds": 900,
    }
    out = sdk.unsigned_sts(double).call_json(
        "AssumeRoleWithWebIdentity",
        dict(params, WebIdentityToken=idp.mint(WALLET_A, AUDIENCE)),
        options={"SkipSign": True},
    )
    assert set(out["Response"]["Credentials"]) == {"Token", "TmpSecretId", "TmpSecretKey"}
    assert isinstance(out["Response"]["ExpiredTime"], int)
    assert out["Response"]["Expiration"].endswith("Z")
    # The trust policy's oidc:sub condition refuses a valid token for another subject.
    with pytest.raises(TencentCloudSDKException) as exc:
        sdk.unsigned_sts(double).call_json(
            "AssumeRoleWithWebIdentity",
            dict(params, WebIdentityToken=idp.mint("0x" + "c3" * 20, AUDIENCE)),
            options={"SkipSign": True},
        )
    assert exc.value.get_code() == "UnauthorizedOperation"
    # A signed-only action sent unsigned is refused.
    with pytest.raises(TencentCloudSDKException) as exc:
        sdk.unsigned_sts(double).call_json(
            "AssumeRole",
            {"RoleArn": params["RoleArn"], "RoleSessionName": "x"},
            options={"SkipSign": True},
        )
    assert exc.value.get_code() == "AuthFailure.InvalidAuthorization"


def test_error_envelope_with_charset_is_missed_by_the_sdk() -> None:
    """The trap the driver works around: with a charset the SDK returns the error silently."""
    with TencentDouble(json_content_type="application/json; charset=utf-8") as d:
        out = sdk.unsigned_sts(d).call_json(
            "AssumeRoleWithWebIdentity",
            {
                "ProviderId": "none",
                "WebIdentityToken": "x",
                "RoleArn": "y",
                "RoleSessionName": "zz",
            },
            options={"SkipSign": True},
        )
    assert out["Response"]["Error"]["Code"] == "InvalidParameter.ParamError"
    assert "Credentials" not in out["Response"]
