"""Tencent Cloud API 3.0 emulation for STS (2018-08-13), CAM (2019-01-16) and KMS (2019-01-18,
``kms_service``).

POST JSON to ``/``; TC3-HMAC-SHA256 verified with the real secret; errors in the JSON envelope
with HTTP 200, as the real API does.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import json
import re
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import attrs
import jwt

from ..policies import MAX_SESSION_POLICY_BYTES
from . import contract
from .account import Account, Caller, OidcConfig, Role, Session, new_request_id
from .cam_eval import PolicyError, evaluate, parse_policy
from .http_types import HttpRequest, HttpResponse
from .kms_service import KMS_VERSION, KmsError, KmsService
from .normalise import cam_stored_form
from .signatures import parse_tc3_authorization, tc3_signature

STS_VERSION = "2018-08-13"
CAM_VERSION = "2019-01-16"
_SKEW = 300
_ROLE_ARN = re.compile(
    r"^qcs::cam::uin/(?P<uin>\d+):role(?:Name/(?P<name>[\w+=,.@-]+)|/(?P<id>\d+))$"
)
_SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,128}$")
_ALLOWED_JWT_ALGS = {"RS256", "RS384", "RS512", "ES256", "ES384", "PS256"}
OIDC_CONDITION_CLAIMS = ("iss", "aud", "sub")
"""The only claims the double exposes as ``oidc:<claim>`` trust-policy condition keys: CAM's
OIDC role documentation shows ``oidc:iss``, ``oidc:aud`` and ``oidc:sub`` and nothing else."""
DEFAULT_ROLE_QUOTA = 1000
"""Roles per root account: https://intl.cloud.tencent.com/document/product/598/10609 (CAM
"Limits", 1,000 roles per root account); CreateRole beyond it answers InvalidParameter.RoleFull."""


@attrs.frozen
class Exchange:
    """One API call as the double saw it (for the fidelity contract tests)."""

    service: str
    action: str
    params: dict[str, Any]
    response: dict[str, Any]


class ApiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Handler = Callable[[dict[str, Any], Caller | None], dict[str, Any]]


class ApiService:
    def __init__(
        self,
        account: Account,
        *,
        json_content_type: str = "application/json",
        role_quota: int = DEFAULT_ROLE_QUOTA,
    ) -> None:
        self.account = account
        self.json_content_type = json_content_type
        self.role_quota = role_quota
        self.exchanges: deque[Exchange] = deque(maxlen=5000)
        self.routes: dict[tuple[str, str], tuple[str, Handler, bool]] = {}
        for action, fn, unsigned in (
            ("AssumeRoleWithWebIdentity", self.assume_role_with_web_identity, True),
            ("AssumeRole", self.assume_role, False),
            ("GetCallerIdentity", self.get_caller_identity, False),
        ):
            self.routes[(STS_VERSION, action)] = ("sts", fn, unsigned)
        for action, fn in (
            ("CreateOIDCConfig", self.create_oidc_config),
            ("UpdateOIDCConfig", self.update_oidc_config),
            ("DescribeOIDCConfig", self.describe_oidc_config),
            ("DeleteOIDCConfig", self.delete_oidc_config),
            ("CreateRole", self.create_role),
            ("GetRole", self.get_role),
            ("DeleteRole", self.delete_role),
            ("UpdateAssumeRolePolicy", self.update_assume_role_policy),
            ("DescribeRoleList", self.describe_role_list),
            ("CreatePolicy", self.create_policy),
            ("GetPolicy", self.get_policy),
            ("UpdatePolicy", self.update_policy),
            ("DeletePolicy", self.delete_policy),
            ("ListPolicies", self.list_policies),
            ("AttachRolePolicy", self.attach_role_policy),
            ("DetachRolePolicy", self.detach_role_policy),
            ("ListAttachedRolePolicies", self.list_attached_role_policies),
            ("AttachUserPolicy", self.attach_user_policy),
        ):
            self.routes[(CAM_VERSION, action)] = ("cam", fn, False)
        self.kms = KmsService(account)
        for action, handler in self.kms.routes().items():
            self.routes[(KMS_VERSION, action)] = ("kms", handler, False)

    # entry --------------------------------------------------------------------------------
    def handle(self, req: HttpRequest) -> HttpResponse:
        request_id = new_request_id()
        try:
            if req.method != "POST" or req.raw_path.split("?")[0] != "/":
                raise ApiError("UnsupportedProtocol", "the double only speaks POST / with JSON")
            action = req.header("x-tc-action") or ""
            version = req.header("x-tc-version") or ""
            route = self.routes.get((version, action))
            if route is None:
                raise ApiError(
                    "InvalidAction", f"action {action!r} (version {version!r}) is unknown"
                )
            service, fn, unsigned_ok = route
            auth = req.header("authorization") or ""
            caller: Caller | None
            if auth == "SKIP":
                if not unsigned_ok:
                    raise ApiError("AuthFailure.InvalidAuthorization", "this action must be signed")
                caller = None
            else:
                caller = self._verify_tc3(req, service)
            if not (req.header("content-type") or "").startswith("application/json"):
                raise ApiError("InvalidParameter", "send the parameters as a JSON body")
            try:
                params = json.loads(req.body or b"{}")
            except ValueError:
                raise ApiError("InvalidParameter", "the body is not JSON") from None
            if not isinstance(params, dict):
                raise ApiError("InvalidParameter", "the body must be a JSON object")
            unknown = contract.request_violations(service, action, params)
            if unknown:
                raise ApiError("UnknownParameter", f"unknown parameter: {unknown[0]}")
            if service == "cam" and caller is not None:
                self._authorize_cam(caller, action)
            result = fn(params, caller)
            result["RequestId"] = request_id
            body = {"Response": result}
            self.exchanges.append(Exchange(service, action, params, result))
        except (ApiError, KmsError) as err:
            body = {
                "Response": {
                    "Error": {"Code": err.code, "Message": err.message},
                    "RequestId": request_id,
                }
            }
        return HttpResponse(
            200,
            (("Content-Type", self.json_content_type),),
            json.dumps(body).encode(),
        )

    # authentication -----------------------------------------------------------------------
    def _verify_tc3(self, req: HttpRequest, service: str) -> Caller:
        auth = parse_tc3_authorization(req.header("authorization") or "")
        if auth is None:
            raise ApiError(
                "AuthFailure.InvalidAuthorization", "Authorization is not TC3-HMAC-SHA256"
            )
        if not {"content-type", "host"} <= set(auth.signed_headers):
            raise ApiError(
                "AuthFailure.InvalidAuthorization", "content-type and host must be signed"
            )
        ts_raw = req.header("x-tc-timestamp") or ""
        try:
            ts = int(ts_raw)
        except ValueError:
            raise ApiError(
                "AuthFailure.InvalidAuthorization", "X-TC-Timestamp is missing"
            ) from None
        if abs(time.time() - ts) > _SKEW:
            raise ApiError(
                "AuthFailure.SignatureExpire", "the signature timestamp is too old or in the future"
            )
        if auth.date != dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d"):
            raise ApiError(
                "AuthFailure.SignatureFailure", "credential date does not match X-TC-Timestamp"
            )
        if auth.service != service:
            raise ApiError(
                "AuthFailure.SignatureFailure", f"credential scope must name service {service}"
            )
        acct = self.account
        with acct.lock:
            perm = acct.keys.get(auth.secret_id)
            sess = acct.sessions.get(auth.secret_id)
        caller: Caller
        if perm is not None:
            secret = perm.secret_key
            caller = (
                Caller("root", perm.uin)
                if perm.uin == acct.owner_uin
                else Caller("user", perm.uin, user=acct.users[perm.uin])
            )
        elif sess is not None:
            secret = sess.secret_key
            token = req.header("x-tc-token")
            if token is None or not hmac.compare_digest(token, sess.token):
                raise ApiError(
                    "AuthFailure.TokenFailure", "the token does not match the temporary key"
                )
            if acct.now() >= sess.expires_at:
                raise ApiError("AuthFailure.TokenFailure", "the temporary credentials expired")
            caller = Caller("session", acct.owner_uin, session=sess)
        else:
            raise ApiError("AuthFailure.SecretIdNotFound", "the SecretId does not exist")
        path, _, query = req.raw_path.partition("?")
        expected = tc3_signature(
            secret,
            service=auth.service,
            date=auth.date,
            timestamp=ts_raw,
            method=req.method,
            path=path,
            query=query,
            headers=req.headers,
            signed_headers=auth.signed_headers,
            payload=req.body,
        )
        if not hmac.compare_digest(expected, auth.signature):
            raise ApiError("AuthFailure.SignatureFailure", "the signature does not match")
        return caller

    def _authorize_cam(self, caller: Caller, action: str) -> None:
        with self.account.lock:
            identity = self.account.identity_statements(caller)
        decision = evaluate(
            f"name/cam:{action}",
            "*",
            {},
            identity=identity,
            session=caller.session.session_policy if caller.session else None,
        )
        if not decision.allowed:
            raise ApiError("AuthFailure.UnauthorizedOperation", f"not allowed: {decision.reason}")

    # STS ----------------------------------------------------------------------------------
    def _role_from_arn(self, arn: Any, *, web_identity: bool = False) -> Role:
        m = _ROLE_ARN.match(arn) if isinstance(arn, str) else None
        if m is None:
            raise ApiError("InvalidParameter.ParamError", "RoleArn is malformed")
        acct = self.account
        role = None
        if m.group("uin") == acct.owner_uin:
            with acct.lock:
                role = (
                    acct.role_by_name(m.group("name"))
                    if m.group("name")
                    else acct.role_by_id(m.group("id"))
                )
        if role is None and web_identity:
            # AssumeRoleWithWebIdentity's documented "no such role" code (tencentcloud-sdk-go
            # sts/v20180813/client.go lists InternalError.GetRoleError, not ResourceNotFound.*).
            raise ApiError("InternalError.GetRoleError", "the role does not exist")
        if role is None:
            raise ApiError("ResourceNotFound.RoleNotFound", "the role does not exist")
        return role

    def _duration(self, params: dict[str, Any], role: Role) -> int:
        raw = params.get("DurationSeconds", 7200)
        try:
            duration = int(raw)
        except (TypeError, ValueError):
            raise ApiError(
                "InvalidParameter.ParamError", "DurationSeconds must be an integer"
            ) from None
        if duration == 0:
            duration = 7200
        limit = min(43200, role.session_duration or 43200)
        if not 1 <= duration <= limit:
            raise ApiError("InvalidParameter.ParamError", f"DurationSeconds must be 1..{limit}")
        return duration

    def _credentials(self, sess: Session) -> dict[str, Any]:
        return {
            "Credentials": {
                "Token": sess.token,
                "TmpSecretId": sess.secret_id,
                "TmpSecretKey": sess.secret_key,
            },
            "ExpiredTime": sess.expires_at,
            "Expiration": dt.datetime.fromtimestamp(sess.expires_at, dt.UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
        }

    def _session_name(self, params: dict[str, Any]) -> str:
        name = params.get("RoleSessionName")
        if not isinstance(name, str) or not _SESSION_NAME.match(name):
            raise ApiError(
                "InvalidParameter.ParamError", "RoleSessionName must be 2-128 of [\\w+=,.@-]"
            )
        return name

    def assume_role_with_web_identity(
        self, params: dict[str, Any], caller: Caller | None
    ) -> dict[str, Any]:
        acct = self.account
        provider = params.get("ProviderId")
        with acct.lock:
            cfg = acct.oidc.get(provider) if isinstance(provider, str) else None
        if cfg is None:
            # Undocumented which code real STS uses; ParamError is in its documented list.
            raise ApiError(
                "InvalidParameter.ParamError",
                "no OIDC identity provider with that ProviderId",
            )
        claims = self._validate_jwt(params.get("WebIdentityToken"), cfg)
        role = self._role_from_arn(params.get("RoleArn"), web_identity=True)
        session_name = self._session_name(params)
        duration = self._duration(params, role)
        context: dict[str, str | list[str]] = {}
        for name in OIDC_CONDITION_CLAIMS:
            value = claims.get(name)
            if isinstance(value, str):
                context[f"oidc:{name}"] = value
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                context[f"oidc:{name}"] = [str(v) for v in value]
        try:
            trust = parse_policy(role.trust_document)
        except PolicyError:
            trust = ()
        decision = evaluate(
            "name/sts:AssumeRoleWithWebIdentity",
            acct.role_arn(role),
            context,
            identity=[],
            resource_policy=trust,
            principal_names=[f"qcs::cam::uin/{acct.owner_uin}:oidc-provider/{cfg.name}"],
        )
        if not decision.allowed:
            raise ApiError(
                "UnauthorizedOperation",
                f"the role's trust policy refuses this token ({decision.reason})",
            )
        sess = acct.issue_session(
            role,
            session_name=session_name,
            duration=duration,
            policy_text=None,
            tags=(),
            via="AssumeRoleWithWebIdentity",
        )
        return self._credentials(sess)

    def _validate_jwt(self, token: Any, cfg: OidcConfig) -> dict[str, Any]:
        def bad(why: str) -> ApiError:
            return ApiError(
                "InvalidParameter.WebIdentityTokenError", f"WebIdentityToken is invalid: {why}"
            )

        if not isinstance(token, str) or not token:
            raise bad("missing")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise bad("not a JWT") from None
        alg = header.get("alg")
        if alg not in _ALLOWED_JWT_ALGS:
            raise bad(f"algorithm {alg!r} is not accepted")
        try:
            jwks = json.loads(base64.b64decode(cfg.identity_key))
            keys = jwks["keys"]
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise bad("the IdP's IdentityKey is not a base64 JWKS") from None
        kid = header.get("kid")
        candidates = [k for k in keys if kid is None or k.get("kid") == kid]
        if not candidates:
            raise bad("no key in the IdP's JWKS matches the token's kid")
        claims: dict[str, Any] | None = None
        for jwk in candidates:
            try:
                key = jwt.PyJWK.from_dict(jwk, algorithm=alg).key
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=[alg],
                    options={
                        "verify_exp": False,
                        "verify_nbf": False,
                        "verify_iat": False,
                        "verify_aud": False,
                        "verify_iss": False,
                    },
                )
                break
            except jwt.PyJWTError:
                continue
        if claims is None:
            raise bad("signature verification failed")
        if claims.get("iss") != cfg.identity_url:
            raise bad("issuer does not match the IdP")
        aud = claims.get("aud")
        auds = [aud] if isinstance(aud, str) else list(aud or [])
        if not set(auds) & set(cfg.client_ids):
            raise bad("audience is not one of the IdP's ClientId values")
        now = self.account.now()
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or now >= exp:
            raise bad("token expired")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and now < nbf:
            raise bad("token not valid yet (nbf)")
        return claims

    def assume_role(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        assert caller is not None
        acct = self.account
        role = self._role_from_arn(params.get("RoleArn"))
        session_name = self._session_name(params)
        duration = self._duration(params, role)
        policy_text: str | None = None
        raw_policy = params.get("Policy")
        if raw_policy:
            if not isinstance(raw_policy, str):
                raise ApiError(
                    "InvalidParameter.ParamError", "Policy must be a URL-encoded JSON string"
                )
            if len(raw_policy.encode()) > MAX_SESSION_POLICY_BYTES:
                raise ApiError(
                    "InvalidParameter.PolicyTooLong",
                    f"Policy is longer than {MAX_SESSION_POLICY_BYTES} bytes (URL-encoded)",
                )
            policy_text = unquote(raw_policy)
            try:
                parse_policy(policy_text)
            except PolicyError as exc:
                raise ApiError(
                    "InvalidParameter.StrategyFormatError", f"Policy is invalid: {exc}"
                ) from None
        tags: list[tuple[str, str]] = []
        raw_tags = params.get("Tags") or []
        if not isinstance(raw_tags, list) or len(raw_tags) > 50:
            raise ApiError("InvalidParameter.ParamError", "Tags must be a list of at most 50")
        for t in raw_tags:
            if (
                not isinstance(t, dict)
                or not isinstance(t.get("Key"), str)
                or not isinstance(t.get("Value"), str)
            ):
                raise ApiError("InvalidParameter.ParamError", "each tag needs string Key and Value")
            tags.append((t["Key"], t["Value"]))
        with acct.lock:
            identity = acct.identity_statements(caller)
        arn = acct.role_arn(role)
        if caller.kind != "root":
            allowed = evaluate(
                "name/sts:AssumeRole",
                arn,
                {},
                identity=identity,
                session=caller.session.session_policy if caller.session else None,
            )
            if not allowed.allowed:
                raise ApiError(
                    "AuthFailure.UnauthorizedOperation",
                    "the caller may not call sts:AssumeRole on this role",
                )
        try:
            trust = parse_policy(role.trust_document)
        except PolicyError:
            trust = ()
        decision = evaluate(
            "name/sts:AssumeRole",
            arn,
            {},
            identity=[],
            resource_policy=trust,
            principal_names=caller.principal_names(acct.owner_uin),
        )
        if not decision.allowed:
            raise ApiError(
                "UnauthorizedOperation", "the role's trust policy does not name the caller"
            )
        if (
            tags
            and not evaluate(
                "name/sts:TagSession",
                arn,
                {},
                identity=[],
                resource_policy=trust,
                principal_names=caller.principal_names(acct.owner_uin),
            ).allowed
        ):
            # Stricter than anything documented (session tags' permission is not documented
            # for Tencent): the trust policy must also allow name/sts:TagSession.
            raise ApiError(
                "UnauthorizedOperation",
                "session Tags need name/sts:TagSession in the role's trust policy",
            )
        sess = acct.issue_session(
            role,
            session_name=session_name,
            duration=duration,
            policy_text=policy_text,
            tags=tuple(tags),
            via="AssumeRole",
        )
        return self._credentials(sess)

    def get_caller_identity(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        assert caller is not None
        owner = self.account.owner_uin
        if caller.kind == "session" and caller.session is not None:
            s = caller.session
            return {
                "Arn": f"qcs::sts:{owner}:assumed-role/{s.role.role_id}/{s.session_name}",
                "AccountId": owner,
                "UserId": f"{s.role.role_id}:{s.session_name}",
                "PrincipalId": owner,
                "Type": "AssumedRole",
            }
        return {
            "Arn": f"qcs::cam::uin/{owner}:uin/{caller.uin}",
            "AccountId": owner,
            "UserId": caller.uin,
            "PrincipalId": caller.uin,
            "Type": "RootAccount" if caller.kind == "root" else "CAMUser",
        }

    # CAM ----------------------------------------------------------------------------------
    @staticmethod
    def _str(params: dict[str, Any], name: str, *, required: bool = True) -> str:
        value = params.get(name)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or (required and not value):
            raise ApiError("InvalidParameter.ParamError", f"{name} is required")
        return value

    def _oidc_from(self, params: dict[str, Any]) -> OidcConfig:
        url = self._str(params, "IdentityUrl")
        if not url.startswith("https://"):
            raise ApiError("InvalidParameterValue.IdentityUrlError", "IdentityUrl must be https")
        key = self._str(params, "IdentityKey")
        try:
            jwks = json.loads(base64.b64decode(key, validate=True))
            if not isinstance(jwks.get("keys"), list):
                raise ValueError
        except (ValueError, binascii.Error, AttributeError):
            raise ApiError(
                "InvalidParameterValue.IdentityKeyError", "IdentityKey must be base64 of a JWKS"
            ) from None
        client_ids = params.get("ClientId")
        if (
            not isinstance(client_ids, list)
            or not client_ids
            or not all(isinstance(c, str) for c in client_ids)
        ):
            raise ApiError("InvalidParameter.ParamError", "ClientId must be a non-empty list")
        return OidcConfig(
            self._str(params, "Name"),
            url,
            key,
            list(client_ids),
            self._str(params, "Description", required=False),
        )

    def create_oidc_config(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        cfg = self._oidc_from(params)
        with self.account.lock:
            if cfg.name in self.account.oidc:
                raise ApiError("InvalidParameter.IdentityNameInUse", "an IdP with this name exists")
            self.account.oidc[cfg.name] = cfg
        return {}

    def update_oidc_config(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        cfg = self._oidc_from(params)
        with self.account.lock:
            if cfg.name not in self.account.oidc:
                raise ApiError("ResourceNotFound.IdentityNotExist", "no IdP with this name")
            self.account.oidc[cfg.name] = cfg
        return {}

    def describe_oidc_config(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        name = self._str(params, "Name")
        with self.account.lock:
            cfg = self.account.oidc.get(name)
        if cfg is None:
            raise ApiError("ResourceNotFound.IdentityNotExist", "no IdP with this name")
        return {
            "ProviderType": 11,
            "IdentityUrl": cfg.identity_url,
            "IdentityKey": cfg.identity_key,
            "ClientId": cfg.client_ids,
            "Status": 2,
            "Description": cfg.description,
            "Name": cfg.name,
        }

    def delete_oidc_config(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        name = self._str(params, "Name")
        with self.account.lock:
            if self.account.oidc.pop(name, None) is None:
                raise ApiError("ResourceNotFound.IdentityNotExist", "no IdP with this name")
        return {}

    def _check_doc(self, text: str) -> None:
        try:
            parse_policy(text)
        except PolicyError as exc:
            raise ApiError("InvalidParameter.PolicyDocumentError", str(exc)) from None

    def create_role(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        name = self._str(params, "RoleName")
        doc = self._str(params, "PolicyDocument")
        self._check_doc(doc)
        acct = self.account
        with acct.lock:
            if name in acct.roles:
                raise ApiError("InvalidParameter.RoleNameInUse", "a role with this name exists")
            if len(acct.roles) >= self.role_quota:
                raise ApiError(
                    "InvalidParameter.RoleFull",
                    f"the account has reached its quota of {self.role_quota} roles",
                )
            role_id = str(4611686018427387904 + len(acct.roles) + 1000)
            acct.roles[name] = Role(
                role_id=role_id,
                name=name,
                trust_document=doc,
                session_duration=int(params.get("SessionDuration") or 43200),
                description=self._str(params, "Description", required=False),
                add_time=time.strftime("%Y-%m-%d %H:%M:%S"),
            )
        return {"RoleId": role_id}

    def _role(
        self, params: dict[str, Any], name_key: str = "RoleName", id_key: str = "RoleId"
    ) -> Role:
        with self.account.lock:
            if params.get(name_key):
                role = self.account.role_by_name(str(params[name_key]))
            elif params.get(id_key):
                role = self.account.role_by_id(str(params[id_key]))
            else:
                raise ApiError("InvalidParameter.ParamError", f"{name_key} or {id_key} is required")
        if role is None:
            # The only "no such role" code cam/v20190116/errorcodes.py has (GetRole, DeleteRole,
            # AttachRolePolicy, UpdateAssumeRolePolicy, ... all list it).
            raise ApiError("InvalidParameter.RoleNotExist", "the role does not exist")
        return role

    def _role_info(self, role: Role) -> dict[str, Any]:
        return {
            "RoleId": role.role_id,
            "RoleName": role.name,
            "PolicyDocument": cam_stored_form(role.trust_document),
            "Description": role.description,
            "AddTime": role.add_time,
            "UpdateTime": role.add_time,
            "ConsoleLogin": 0,
            "RoleType": "user",
            "SessionDuration": role.session_duration,
            "RoleArn": self.account.role_arn(role),
        }

    def get_role(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        return {"RoleInfo": self._role_info(self._role(params))}

    def delete_role(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        role = self._role(params)
        with self.account.lock:
            self.account.roles.pop(role.name, None)
            for sid in [k for k, s in self.account.sessions.items() if s.role is role]:
                del self.account.sessions[sid]
        return {}

    def update_assume_role_policy(
        self, params: dict[str, Any], caller: Caller | None
    ) -> dict[str, Any]:
        role = self._role(params)
        doc = self._str(params, "PolicyDocument")
        self._check_doc(doc)
        with self.account.lock:
            role.trust_document = doc
        return {}

    def describe_role_list(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        page = int(params.get("Page") or 1)
        rp = int(params.get("Rp") or 20)
        with self.account.lock:
            roles = sorted(self.account.roles.values(), key=lambda r: r.name)
        chunk = roles[(page - 1) * rp : page * rp]
        return {"List": [self._role_info(r) for r in chunk], "TotalNum": len(roles)}

    def create_policy(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        name = self._str(params, "PolicyName")
        doc = self._str(params, "PolicyDocument")
        self._check_doc(doc)
        with self.account.lock:
            if self.account.policy_by_name(name) is not None:
                raise ApiError("FailedOperation.PolicyNameInUse", "a policy with this name exists")
            pol = self.account.create_policy(
                name, doc, self._str(params, "Description", required=False)
            )
        return {"PolicyId": pol.policy_id}

    def _policy(self, params: dict[str, Any], id_key: str = "PolicyId") -> Any:
        acct = self.account
        with acct.lock:
            if params.get(id_key):
                pol = acct.policies.get(int(params[id_key]))
            elif params.get("PolicyName"):
                pol = acct.policy_by_name(str(params["PolicyName"]))
            else:
                raise ApiError("InvalidParameter.ParamError", "PolicyId or PolicyName is required")
        if pol is None:
            raise ApiError("ResourceNotFound.PolicyIdNotFound", "the policy does not exist")
        return pol

    def get_policy(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        pol = self._policy(params)
        return {
            "PolicyName": pol.name,
            "Description": pol.description,
            "Type": 1,
            "PolicyDocument": cam_stored_form(pol.document),
            "AddTime": "",
            "UpdateTime": "",
        }

    def update_policy(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        pol = self._policy(params)
        if params.get("PolicyDocument"):
            doc = self._str(params, "PolicyDocument")
            self._check_doc(doc)
            pol.document = doc
        if isinstance(params.get("Description"), str):
            pol.description = params["Description"]
        return {"PolicyId": pol.policy_id}

    def delete_policy(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        ids = params.get("PolicyId")
        if not isinstance(ids, list) or not ids:
            raise ApiError("InvalidParameter.ParamError", "PolicyId must be a list")
        acct = self.account
        with acct.lock:
            for pid in ids:
                if int(pid) not in acct.policies:
                    raise ApiError(
                        "ResourceNotFound.PolicyIdNotFound", f"policy {pid} does not exist"
                    )
            for pid in ids:
                del acct.policies[int(pid)]
                for role in acct.roles.values():
                    if int(pid) in role.policy_ids:
                        role.policy_ids.remove(int(pid))
                for user in acct.users.values():
                    if int(pid) in user.policy_ids:
                        user.policy_ids.remove(int(pid))
        return {}

    def list_policies(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        keyword = str(params.get("Keyword") or "")
        page = int(params.get("Page") or 1)
        rp = int(params.get("Rp") or 20)
        with self.account.lock:
            pols = sorted(
                (p for p in self.account.policies.values() if keyword in p.name),
                key=lambda p: p.policy_id,
            )
        chunk = pols[(page - 1) * rp : page * rp]
        return {
            "List": [
                {
                    "PolicyId": p.policy_id,
                    "PolicyName": p.name,
                    "Type": 1,
                    "Description": p.description,
                    "CreateMode": 1,
                }
                for p in chunk
            ],
            "TotalNum": len(pols),
        }

    def attach_role_policy(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        pol = self._policy(params)
        role = self._role(params, "AttachRoleName", "AttachRoleId")
        with self.account.lock:
            if pol.policy_id not in role.policy_ids:
                role.policy_ids.append(pol.policy_id)
        return {}

    def detach_role_policy(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        pol = self._policy(params)
        role = self._role(params, "DetachRoleName", "DetachRoleId")
        with self.account.lock:
            if pol.policy_id in role.policy_ids:
                role.policy_ids.remove(pol.policy_id)
        return {}

    def list_attached_role_policies(
        self, params: dict[str, Any], caller: Caller | None
    ) -> dict[str, Any]:
        role = self._role(params)
        page = int(params.get("Page") or 1)
        rp = int(params.get("Rp") or 20)
        with self.account.lock:
            pols = [self.account.policies[p] for p in role.policy_ids if p in self.account.policies]
        chunk = pols[(page - 1) * rp : page * rp]
        return {
            "List": [
                {
                    "PolicyId": p.policy_id,
                    "PolicyName": p.name,
                    "PolicyType": "User",
                    "CreateMode": 1,
                    "Description": p.description,
                }
                for p in chunk
            ],
            "TotalNum": len(pols),
        }

    def attach_user_policy(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        pol = self._policy(params)
        uin = str(params.get("AttachUin") or "")
        with self.account.lock:
            user = self.account.users.get(uin)
            if user is None:
                raise ApiError("ResourceNotFound.UserNotExist", "the user does not exist")
            if pol.policy_id not in user.policy_ids:
                user.policy_ids.append(pol.policy_id)
        return {}
