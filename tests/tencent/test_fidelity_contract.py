"""The double against a contract nobody here wrote: the installed official SDK packages.

- every error code the double can emit is in that service's ``errorcodes.py`` or in Tencent's
  documented common error codes (scanned from the double's source, per route);
- every request parameter the driver and provisioner send, every response field the double
  answers with, and every response field the driver and provisioner read is defined by the
  action's ``models.py`` classes;
- the double answers parameters an action does not have with ``UnknownParameter``;
- trust policies see only ``oidc:iss``/``oidc:aud``/``oidc:sub``; a bad IdP key/URL gets the
  ``InvalidParameterValue.*`` codes CAM documents.
"""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

import pytest
from portable_creds_tencent import tcapi
from portable_creds_tencent.testing import TencentDouble, TestIdentityProvider, contract
from portable_creds_tencent.testing import api_service as api_module
from portable_creds_tencent.testing.account import Account
from tencentcloud.common import credential
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from portable_creds.errors import ConfigurationError

from . import sdk
from .conftest import AUDIENCE, ISSUER, WALLET_A, Env, key

WALLET_C = "0x" + "c3" * 20


# -- error codes ------------------------------------------------------------------------------
def emitted_codes(source: str) -> dict[str, set[str]]:
    """Per service, every literal code ``ApiError(...)`` is raised with on a path that
    service's actions can take (the route's handler, the helpers it calls, and the shared
    entry/authentication code)."""
    tree = ast.parse(source)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ApiService")
    methods = {f.name: f for f in cls.body if isinstance(f, ast.FunctionDef)}

    def codes(fn: ast.FunctionDef) -> set[str]:
        out = set()
        for node in ast.walk(fn):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "ApiError"
                and node.args
            ):
                first = node.args[0]
                assert isinstance(first, ast.Constant) and isinstance(first.value, str), (
                    f"{fn.name}: ApiError codes must be literals so the contract can see them"
                )
                out.add(first.value)
        return out

    def reachable(name: str) -> set[str]:
        seen: set[str] = set()
        todo = [name]
        while todo:
            current = todo.pop()
            if current in seen or current not in methods:
                continue
            seen.add(current)
            for node in ast.walk(methods[current]):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "self"
                ):
                    todo.append(node.attr)
        return seen

    routes = api_module.ApiService(Account("1", "1", "ap-guangzhou")).routes
    shared = reachable("handle") - {fn.__name__ for _, fn, _ in routes.values()}
    out: dict[str, set[str]] = {}
    for service, fn, _ in routes.values():
        if fn.__name__ not in methods:
            continue  # another class's handler (KMS: test_tencent_kms.py checks its codes)
        names = reachable(fn.__name__) | shared
        out.setdefault(service, set()).update(*(codes(methods[n]) for n in names))
    return out


def contract_violations(source: str) -> list[str]:
    return [
        f"{service}: {code}"
        for service, codes in sorted(emitted_codes(source).items())
        for code in contract.code_violations(service, codes)
    ]


def test_every_code_the_double_can_emit_is_defined_by_the_sdk_or_common_codes() -> None:
    source = Path(inspect.getfile(api_module)).read_text()
    emitted = emitted_codes(source)
    assert set(emitted) == {"sts", "cam"}
    # The codes this issue is about are among what is checked.
    assert "InvalidParameter.RoleNotExist" in emitted["cam"]
    assert "InternalError.GetRoleError" in emitted["sts"]
    assert "InvalidParameter.PolicyTooLong" in emitted["sts"]
    assert "InvalidParameterValue.IdentityKeyError" in emitted["cam"]
    assert contract_violations(source) == []


def test_the_contract_fails_when_the_double_emits_a_code_the_sdk_does_not_define() -> None:
    """The check can fail: the double's old, wrong "role does not exist" code is caught."""
    source = Path(inspect.getfile(api_module)).read_text()
    broken = source.replace('"InvalidParameter.RoleNotExist"', '"ResourceNotFound.RoleNotExist"')
    assert broken != source
    assert contract_violations(broken) == ["cam: ResourceNotFound.RoleNotExist"]
    assert contract.code_violations("sts", {"InvalidParameter.PolicyError"}) == [
        "InvalidParameter.PolicyError"
    ]


def test_sdk_contract_table_reads_the_installed_packages() -> None:
    assert "InvalidParameter.RoleNotExist" in contract.error_codes("cam")
    assert "InvalidParameter.PolicyTooLong" in contract.error_codes("sts")
    assert "ResourceNotFound.RoleNotExist" not in contract.allowed_codes("cam")
    assert contract.request_violations("sts", "AssumeRoleWithWebIdentity", {"Policy": "x"}) == [
        "Policy is not a field of sts AssumeRoleWithWebIdentityRequest"
    ]
    assert contract.read_violation("cam", "GetRole", "RoleInfo.PolicyDocument") is None
    assert contract.read_violation("cam", "GetRole", "RoleInfo.Bogus") is not None


# -- requests, responses and reads -------------------------------------------------------------
def test_everything_driver_and_provisioner_exchange_is_defined_by_the_sdk_models(
    env: Env,
) -> None:
    prov = env.provisioner
    with tcapi.record_reads() as reads:
        prov.apply()
        prov.onboard(WALLET_C)
        env.open(WALLET_C).put(key(WALLET_C), b"c")
        env.open(WALLET_A, "token-vendor").put(key(WALLET_A), b"a")
        assert prov.verify() == []
        prov.offboard(WALLET_C, delete_data=True)
        prov.offboard(WALLET_C)
        with pytest.raises(ConfigurationError, match="onboard this wallet"):
            env.open(WALLET_C)
    exchanges = list(env.double.api.exchanges)
    actions = {ex.action for ex in exchanges}
    assert {
        "CreateOIDCConfig",
        "DescribeOIDCConfig",
        "CreateRole",
        "GetRole",
        "DeleteRole",
        "CreatePolicy",
        "GetPolicy",
        "ListPolicies",
        "DeletePolicy",
        "AttachRolePolicy",
        "DetachRolePolicy",
        "ListAttachedRolePolicies",
        "DescribeRoleList",
        "AssumeRole",
        "AssumeRoleWithWebIdentity",
    } <= actions
    problems = []
    for ex in exchanges:
        problems += contract.request_violations(ex.service, ex.action, ex.params)
        problems += contract.response_violations(ex.service, ex.action, ex.response)
    assert problems == []
    assert {
        ("cam", "GetRole", "RoleInfo.PolicyDocument"),
        ("cam", "GetPolicy", "PolicyDocument"),
        ("cam", "ListAttachedRolePolicies", "List.PolicyId"),
        ("cam", "DescribeRoleList", "TotalNum"),
        ("sts", "AssumeRoleWithWebIdentity", "Credentials.TmpSecretKey"),
        ("sts", "AssumeRole", "ExpiredTime"),
    } <= reads
    assert [v for r in sorted(reads) if (v := contract.read_violation(*r))] == []


def _client(double: TencentDouble, service: str) -> CommonClient:
    cred = credential.Credential(double.root.secret_id, double.root.secret_key)
    return CommonClient(
        service, contract.SERVICES[service].version, cred, double.region, sdk.profile(double)
    )


def test_a_parameter_the_action_does_not_have_is_answered_with_unknown_parameter(
    double: TencentDouble,
) -> None:
    cam = _client(double, "cam")
    with pytest.raises(TencentCloudSDKException) as exc:
        cam.call_json("GetRole", {"RoleName": "x", "RoleNameTypo": "x"})
    assert exc.value.get_code() == "UnknownParameter"
    sts = _client(double, "sts")
    with pytest.raises(TencentCloudSDKException) as exc:
        sts.call_json(
            "AssumeRole",
            {
                "RoleArn": f"qcs::cam::uin/{double.owner_uin}:roleName/x",
                "RoleSessionName": "s1",
                "Tags": [{"Key": "k", "Value": "v", "Colour": "red"}],
            },
        )
    assert exc.value.get_code() == "UnknownParameter"
    # AssumeRoleWithWebIdentity has no Policy: a session policy cannot be smuggled in.
    web = sdk.unsigned_sts(double)
    with pytest.raises(TencentCloudSDKException) as exc:
        web.call_json(
            "AssumeRoleWithWebIdentity",
            {"ProviderId": "x", "WebIdentityToken": "t", "RoleArn": "r", "Policy": "{}"},
            options={"SkipSign": True},
        )
    assert exc.value.get_code() == "UnknownParameter"


def test_trust_policies_see_only_iss_aud_and_sub(
    double: TencentDouble, idp: TestIdentityProvider
) -> None:
    cam = _client(double, "cam")
    cam.call_json(
        "CreateOIDCConfig",
        {
            "Name": "idp",
            "IdentityUrl": ISSUER,
            "IdentityKey": idp.identity_key(),
            "ClientId": [AUDIENCE],
        },
    )
    principal = {"federated": [f"qcs::cam::uin/{double.owner_uin}:oidc-provider/idp"]}

    def role(name: str, condition: dict[str, list[str]]) -> None:
        doc = {
            "version": "2.0",
            "statement": [
                {
                    "effect": "allow",
                    "action": ["name/sts:AssumeRoleWithWebIdentity"],
                    "principal": principal,
                    "condition": {"string_equal": condition},
                }
            ],
        }
        cam.call_json("CreateRole", {"RoleName": name, "PolicyDocument": json.dumps(doc)})

    role("by-sub", {"oidc:iss": [ISSUER], "oidc:sub": [WALLET_A]})
    role("by-email", {"oidc:iss": [ISSUER], "oidc:email": ["a@example.com"]})
    token = idp.mint(WALLET_A, AUDIENCE, extra={"email": "a@example.com"})
    sts = sdk.unsigned_sts(double)

    def assume(name: str) -> dict[str, object]:
        params = {
            "ProviderId": "idp",
            "WebIdentityToken": token,
            "RoleArn": f"qcs::cam::uin/{double.owner_uin}:roleName/{name}",
            "RoleSessionName": "s1",
        }
        resp = sts.call_json("AssumeRoleWithWebIdentity", params, options={"SkipSign": True})
        return dict(resp["Response"])

    assert "Credentials" in assume("by-sub")
    with pytest.raises(TencentCloudSDKException) as exc:
        assume("by-email")
    assert exc.value.get_code() == "UnauthorizedOperation"


def test_bad_idp_key_or_url_get_the_documented_codes(
    double: TencentDouble, idp: TestIdentityProvider
) -> None:
    cam = _client(double, "cam")
    good = {
        "Name": "idp",
        "IdentityUrl": ISSUER,
        "IdentityKey": idp.identity_key(),
        "ClientId": [AUDIENCE],
    }
    for change, code in (
        ({"IdentityUrl": "http://issuer.example"}, "InvalidParameterValue.IdentityUrlError"),
        ({"IdentityKey": "not base64 of a JWKS"}, "InvalidParameterValue.IdentityKeyError"),
    ):
        with pytest.raises(TencentCloudSDKException) as exc:
            cam.call_json("CreateOIDCConfig", {**good, **change})
        assert exc.value.get_code() == code
