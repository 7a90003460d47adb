"""CAM evaluation rules of the double, on documents written out by hand."""

from __future__ import annotations

import pytest
from portable_creds_tencent.testing.cam_eval import PolicyError, evaluate, parse_policy

RES = "qcs::cos:ap-guangzhou:uid/1250000000:creds-1250000000/"


def allow(action: str, resource: str, condition: dict[str, object] | None = None) -> dict:
    st: dict[str, object] = {"effect": "allow", "action": [action], "resource": [resource]}
    if condition:
        st["condition"] = condition
    return st


def doc(*statements: dict) -> tuple:
    return parse_policy({"version": "2.0", "statement": list(statements)})


def test_wildcard_resource_grants_only_below_the_prefix() -> None:
    ident = doc(allow("name/cos:GetObject", RES + "bots/0xa/*"))
    assert evaluate(
        "name/cos:GetObject", RES + "bots/0xa/credentials/x.enc", {}, identity=ident
    ).allowed
    assert not evaluate(
        "name/cos:GetObject", RES + "bots/0xb/credentials/x.enc", {}, identity=ident
    ).allowed


def test_actions_are_case_sensitive_and_wildcards_work() -> None:
    ident = doc(allow("name/cos:Get*", "*"))
    assert evaluate("name/cos:GetObject", RES + "k", {}, identity=ident).allowed
    assert not evaluate("name/cos:getobject", RES + "k", {}, identity=ident).allowed
    assert not evaluate("name/cos:PutObject", RES + "k", {}, identity=ident).allowed


def test_explicit_deny_wins_over_allow_everywhere() -> None:
    ident = doc(
        allow("name/cos:*", "*"),
        {"effect": "deny", "action": ["name/cos:DeleteObject"], "resource": [RES + "*"]},
    )
    assert not evaluate("name/cos:DeleteObject", RES + "k", {}, identity=ident).allowed
    bucket = doc(
        {"effect": "deny", "principal": {"qcs": ["*"]}, "action": ["name/cos:*"], "resource": ["*"]}
    )
    d = evaluate(
        "name/cos:GetObject",
        RES + "k",
        {},
        identity=None,
        resource_policy=bucket,
        principal_names=["qcs::cam::uin/1:uin/1"],
    )
    assert not d.allowed and "explicit deny" in d.reason


def test_session_policy_intersects_with_role_policy() -> None:
    role = doc(allow("name/cos:*", RES + "bots/*"))
    session = doc(allow("name/cos:GetObject", RES + "bots/0xa/*"))
    assert evaluate(
        "name/cos:GetObject", RES + "bots/0xa/k", {}, identity=role, session=session
    ).allowed
    assert not evaluate(
        "name/cos:GetObject", RES + "bots/0xb/k", {}, identity=role, session=session
    ).allowed
    assert not evaluate(
        "name/cos:PutObject", RES + "bots/0xa/k", {}, identity=role, session=session
    ).allowed
    wider_session = doc(allow("name/cos:*", "*"))
    assert not evaluate(
        "name/cos:GetObject", RES + "other/k", {}, identity=role, session=wider_session
    ).allowed


def test_bucket_policy_allow_needs_matching_principal() -> None:
    bucket = doc(
        {
            "effect": "allow",
            "principal": {"qcs": ["qcs::cam::uin/1:uin/2"]},
            "action": ["name/cos:GetObject"],
            "resource": [RES + "*"],
        }
    )
    assert evaluate(
        "name/cos:GetObject",
        RES + "k",
        {},
        identity=[],
        resource_policy=bucket,
        principal_names=["qcs::cam::uin/1:uin/2"],
    ).allowed
    assert not evaluate(
        "name/cos:GetObject",
        RES + "k",
        {},
        identity=[],
        resource_policy=bucket,
        principal_names=["qcs::cam::uin/1:uin/3"],
    ).allowed


def test_cos_prefix_condition_uses_url_encoded_values() -> None:
    ident = doc(allow("name/cos:GetBucket", RES, {"string_like": {"cos:prefix": "bots%2F0xa%2F*"}}))
    assert evaluate(
        "name/cos:GetBucket", RES, {"cos:prefix": "bots%2F0xa%2F"}, identity=ident
    ).allowed
    assert evaluate(
        "name/cos:GetBucket", RES, {"cos:prefix": "bots%2F0xa%2Fcredentials%2F"}, identity=ident
    ).allowed
    assert not evaluate(
        "name/cos:GetBucket", RES, {"cos:prefix": "bots%2F"}, identity=ident
    ).allowed
    assert not evaluate("name/cos:GetBucket", RES, {"cos:prefix": ""}, identity=ident).allowed
    assert not evaluate("name/cos:GetBucket", RES, {}, identity=ident).allowed


@pytest.mark.parametrize(
    ("op", "value", "ctx", "expected"),
    [
        ("string_equal", "a", {"k": "a"}, True),
        ("string_equal", ["x", "a"], {"k": "a"}, True),
        ("string_equal", "a", {"k": "b"}, False),
        ("string_not_equal", "a", {"k": "b"}, True),
        ("string_not_equal", ["a", "b"], {"k": "b"}, False),
        ("string_equal", "a", {}, False),
        ("string_equal_if_exist", "a", {}, True),
        ("string_equal_if_exist", "a", {"k": "b"}, False),
        ("bool_equal", "false", {"k": "False"}, True),
        ("bool_equal", "true", {"k": "false"}, False),
        ("ip_equal", "10.0.0.0/8", {"k": "10.1.2.3"}, True),
        ("ip_equal", "10.0.0.0/8", {"k": "11.1.2.3"}, False),
        ("ip_not_equal", "127.0.0.0/8", {"k": "127.0.0.1"}, False),
        ("numeric_less_than", "10", {"k": "9"}, True),
        ("numeric_less_than", "10", {"k": "10"}, False),
        ("null_equal", "true", {}, True),
        ("null_equal", "true", {"k": "x"}, False),
        ("for_any_value:string_equal", "a", {"k": ["b", "a"]}, True),
        ("for_all_value:string_equal", "a", {"k": ["b", "a"]}, False),
    ],
)
def test_condition_operators(op: str, value: object, ctx: dict, expected: bool) -> None:
    ident = doc(allow("name/cos:GetObject", "*", {op: {"k": value}}))
    assert evaluate("name/cos:GetObject", RES + "x", ctx, identity=ident).allowed is expected


def test_malformed_documents_are_rejected() -> None:
    for bad in (
        "not json",
        '{"version": "1.0", "statement": []}',
        '{"version": "2.0", "statement": [{"effect": "maybe", "action": "a"}]}',
    ):
        with pytest.raises(PolicyError):
            parse_policy(bad)
