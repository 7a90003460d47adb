"""Behaviours the first real deployment depends on: error mapping, session-policy size,
session tags, ``cos:prefix`` under either reading, and semantic policy comparison."""

from __future__ import annotations

import json
from urllib.parse import quote

import attrs
import pytest
from portable_creds_tencent import admin, policies
from portable_creds_tencent.policy_compare import same_policy
from portable_creds_tencent.settings import StaticKeys
from portable_creds_tencent.testing.cam_eval import evaluate, parse_policy
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.sts.v20180813 import models as sts_models

from portable_creds.errors import AccessDenied, ConfigurationError, PreconditionFailed

from . import sdk
from .conftest import WALLET_A, Env, key

NEVER = "0x" + "c3" * 20


def test_assume_role_with_web_identity_for_a_missing_role_says_onboard_and_is_not_retried(
    env: Env,
) -> None:
    before = env.double.stats["api"]
    with pytest.raises(ConfigurationError, match="onboard this wallet") as exc:
        env.open(NEVER, token=env.token_for(NEVER))
    assert "InternalError.GetRoleError" in str(exc.value)
    assert env.double.stats["api"] - before == 1  # one exchange, no retries


@pytest.mark.parametrize("status", [409, 412])
@pytest.mark.parametrize("code", ["SomethingNew", "Unknown"])
def test_any_409_or_412_on_a_conditional_put_is_precondition_failed(
    env: Env, status: int, code: str
) -> None:
    store = env.open(WALLET_A)
    assert store.capabilities.create_only  # looks at the bucket's versioning first
    env.double.faults.fail_next(1, status=status, code=code)
    with pytest.raises(PreconditionFailed):
        store.put(key(WALLET_A), b"x", if_none_match=True)


def test_scoped_session_policy_is_measured_and_refused_before_sts(env: Env) -> None:
    store = env.open(WALLET_A, "token-vendor")
    many = [key(WALLET_A, f"service-number-{i:02d}") for i in range(40)]
    issued = len(env.double.issued_sessions)
    api_calls = env.double.stats["api"]
    with pytest.raises(ConfigurationError, match="safe bound of 2048"):
        store.scoped(many, read_only=True).get(many[0])
    assert len(env.double.issued_sessions) == issued
    assert env.double.stats["api"] == api_calls  # nothing was sent to STS
    few = many[:3]
    store.put(few[0], b"ok")
    assert store.scoped(few, read_only=True).get(few[0]).data == b"ok"
    sent = env.double.issued_sessions[-1].session_policy_text or ""
    assert len(quote(json.dumps(json.loads(sent), separators=(",", ":")), safe="")) <= 2048


def test_every_rendered_session_policy_fits_the_bound(env: Env) -> None:
    ref = env.deployment.ref
    tenant = policies.tenant_policy(ref, "bots", WALLET_A)
    assert len(policies.encoded_policy(tenant)) <= policies.MAX_SESSION_POLICY_BYTES
    assert policies.checked_session_policy(tenant, "t")
    eight = policies.scoped_policy(
        ref, [key(WALLET_A, f"service-{i}") for i in range(8)], read_only=False
    )
    assert len(policies.encoded_policy(eight)) <= policies.MAX_SESSION_POLICY_BYTES


def test_the_double_refuses_a_policy_over_the_bound_with_policy_too_long(env: Env) -> None:
    sts = sdk.sts(env.double)
    req = sts_models.AssumeRoleRequest()
    req.RoleArn = f"qcs::cam::uin/{env.double.owner_uin}:roleName/portable-creds-vendor"
    req.RoleSessionName = "big"
    big = policies.scoped_policy(
        env.deployment.ref, [key(WALLET_A, f"s{i:03d}") for i in range(60)], read_only=True
    )
    req.Policy = policies.encoded_policy(big)
    with pytest.raises(TencentCloudSDKException) as exc:
        sts.AssumeRole(req)
    assert exc.value.get_code() == "InvalidParameter.PolicyTooLong"


def test_session_tags_are_off_unless_the_provisioner_grants_them(env: Env) -> None:
    with pytest.raises(AccessDenied):  # the trust policy lacks name/sts:TagSession
        env.open(WALLET_A, "token-vendor", url_extra="&session_tags=true")
    tagged = attrs.evolve(env.deployment, session_tags=True)
    prov = admin.Provisioner(
        tagged, StaticKeys(env.double.root.secret_id, env.double.root.secret_key)
    )
    assert any("trust policy" in line for line in prov.apply())
    env.open(WALLET_A, "token-vendor", url_extra="&session_tags=true").put(key(WALLET_A), b"t")
    assert env.double.issued_sessions[-1].tags == (("portable-creds-wallet", WALLET_A),)


def test_listing_works_whether_cos_prefix_matches_by_string_like_or_string_equal(
    env: Env,
) -> None:
    """Each listing statement alone grants every exact prefix the store lists."""
    doc = policies.tenant_policy(env.deployment.ref, "bots", WALLET_A)
    like = [s for s in doc["statement"] if "string_like" in s.get("condition", {})]
    equal = [s for s in doc["statement"] if "string_equal" in s.get("condition", {})]
    assert like and equal
    bucket = env.deployment.ref.bucket_resource
    for prefix in policies.listed_prefixes("bots", WALLET_A):
        ctx = {"cos:prefix": quote(prefix, safe="-_.~")}
        for statements in (like, equal):
            decision = evaluate(
                "name/cos:GetBucket",
                bucket,
                ctx,
                identity=parse_policy({"version": "2.0", "statement": statements}),
            )
            assert decision.allowed, (prefix, statements)
    other = {"cos:prefix": quote("bots/0x" + "b2" * 20 + "/", safe="-_.~")}
    assert not evaluate("name/cos:GetBucket", bucket, other, identity=parse_policy(doc)).allowed


def test_semantic_comparison_equates_normalised_forms_and_only_those() -> None:
    sent = {
        "version": "2.0",
        "statement": [
            {
                "effect": "deny",
                "principal": {"qcs": ["*"]},
                "action": ["name/cos:*"],
                "resource": ["qcs::cos:r:uid/1:b-1/*", "qcs::cos:r:uid/1:b-1/"],
                "condition": {"bool_equal": {"cos:secure-transport": "false"}},
            },
            {"effect": "allow", "action": ["name/cos:GetObject"], "resource": ["x"]},
        ],
    }
    returned = {
        "Statement": [
            {"Effect": "allow", "Action": "name/cos:GetObject", "Resource": "x"},
            {
                "Effect": "Deny",
                "Principal": {"qcs": ["qcs::cam::anyone:anyone"]},
                "Action": "name/cos:*",
                "Resource": ["qcs::cos:r:uid/1:b-1/", "qcs::cos:r:uid/1:b-1/*"],
                "Condition": {"bool_equal": {"cos:secure-transport": ["false"]}},
            },
        ],
        "version": "2.0",
    }
    assert same_policy(sent, json.dumps(returned))
    root = {"version": "2.0", "statement": [{"principal": {"qcs": ["qcs::cam::uin/7:root"]}}]}
    uin = {"version": "2.0", "statement": [{"principal": {"qcs": "qcs::cam::uin/7:uin/7"}}]}
    assert same_policy(root, uin)
    changed = json.loads(json.dumps(returned))
    changed["Statement"][0]["Resource"] = "y"
    assert not same_policy(sent, changed)
    effect = json.loads(json.dumps(returned))
    effect["Statement"][1]["Effect"] = "allow"
    assert not same_policy(sent, effect)
    assert not same_policy(sent, None) and same_policy(None, None)
    assert not same_policy(sent, "not json")
