"""Provisioner: ``portable-creds admin cos render|apply|verify|onboard WALLET|offboard WALLET``.

Renders every CAM/COS document from one deployment description, applies it idempotently with
the account's API key (``TENCENTCLOUD_SECRET_ID``/``TENCENTCLOUD_SECRET_KEY``), and verifies
what is deployed against what would be rendered (exit 1 on drift).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO, TypeVar

import attrs
from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosClientError, CosServiceError

from portable_creds.driver import StoreTarget
from portable_creds.errors import ConfigurationError, NotFound, PortableCredsError
from portable_creds.httpclient import check_service_url, open_url
from portable_creds.names import tenant_prefix, validate_wallet

from . import policies
from .errors import cos_error, tencent_code
from .kms_keys import find_key, kms_alias
from .policy_compare import same_policy
from .settings import CosSettings, StaticKeys, parse_settings, static_keys
from .tcapi import TcApi

T = TypeVar("T")

ROLE_QUOTA = 1000
"""CAM roles per root account: https://intl.cloud.tencent.com/document/product/598/10609
("Number of roles under one root account: 1000"). Quotas can be raised on request, hence
the ``role-quota`` option. role-per-tenant uses one role per wallet."""
QUOTA_WARN = 0.8
"""Warn once this share of the role quota is in use."""
ROLE_NOT_EXIST = "InvalidParameter.RoleNotExist"
"""What CAM answers GetRole/DeleteRole/AttachRolePolicy/UpdateAssumeRolePolicy/... for a role
that does not exist: the only "role does not exist" code in cam/v20190116/errorcodes.py."""
KMS_DELETION_DAYS = 7
"""``offboard --delete-data`` schedules the disabled CMK's deletion after the shortest window
ScheduleKeyDeletion allows (``PendingWindowInDays`` is 7..30)."""


@attrs.frozen
class Deployment:
    """Everything that determines the rendered documents."""

    settings: CosSettings
    issuer: str
    audiences: tuple[str, ...]
    jwks: dict[str, Any]
    vendor_principals: tuple[str, ...] = ()
    log_bucket: str | None = None
    log_prefix: str = ""
    expire_days: int | None = None
    require_tls: bool = True
    allowed_cidrs: tuple[str, ...] = ()
    session_duration: int = 43200
    session_tags: bool = False
    role_quota: int = ROLE_QUOTA
    kms: bool = False
    """Per-tenant KMS keys: onboarding creates (or adopts) the wallet's CMK and grants its role
    ``kms:GenerateDataKey``/``kms:Decrypt`` on that key only (docs/tencent.md)."""

    @property
    def ref(self) -> policies.BucketRef:
        s = self.settings
        return policies.BucketRef(s.bucket, s.appid, s.region)

    @property
    def owner(self) -> str:
        assert self.settings.owner_uin is not None
        return self.settings.owner_uin

    def oidc_config(self) -> dict[str, Any]:
        return {
            "Name": self.settings.provider,
            "IdentityUrl": self.issuer,
            "IdentityKey": base64.b64encode(
                json.dumps(self.jwks, sort_keys=True).encode()
            ).decode(),
            "ClientId": list(self.audiences),
            "Description": "portable-creds tenants",
        }

    def kms_alias(self, wallet: str) -> str:
        """The wallet's CMK alias (how onboarding finds the key again): the tenant role name."""
        return kms_alias(self.settings.role_prefix, wallet)

    def kms_resource(self, key: Mapping[str, Any] | None) -> str | None:
        """The CAM resource of the tenant's CMK (``KeyMetadata``), a placeholder when rendering
        without the account, ``None`` without KMS."""
        if not self.kms:
            return None
        if key is None:
            return policies.kms_key_resource(
                self.settings.region, self.owner, "${CreatorUin}", "${KeyId}"
            )
        return policies.kms_key_resource(
            self.settings.region, self.owner, str(key["CreatorUin"]), str(key["KeyId"])
        )

    def tenant_role(self, wallet: str, kms_key: Mapping[str, Any] | None = None) -> dict[str, Any]:
        wallet = validate_wallet(wallet)
        name = self.settings.tenant_role_name(wallet)
        return {
            "RoleName": name,
            "TrustPolicy": policies.tenant_trust_policy(
                self.owner,
                self.settings.provider,
                self.issuer,
                list(self.audiences),
                wallet,
                self.settings.wallet_claim,
            ),
            "PolicyName": f"{name}-policy",
            "Policy": policies.tenant_policy(
                self.ref, self.settings.prefix, wallet, self.kms_resource(kms_key)
            ),
            "SessionDuration": self.session_duration,
        }

    def vendor_role(self) -> dict[str, Any] | None:
        if not self.vendor_principals:
            return None
        name = self.settings.vendor_role
        return {
            "RoleName": name,
            "TrustPolicy": policies.vendor_trust_policy(
                list(self.vendor_principals), session_tags=self.session_tags
            ),
            "PolicyName": f"{name}-policy",
            "Policy": policies.vendor_policy(
                self.ref,
                self.settings.prefix,
                kms_account=(self.settings.region, self.owner) if self.kms else None,
            ),
            "SessionDuration": self.session_duration,
        }

    def bucket_policy(self) -> dict[str, Any] | None:
        return policies.bucket_policy(
            self.ref, require_tls=self.require_tls, allowed_cidrs=list(self.allowed_cidrs)
        )

    def lifecycle(self) -> dict[str, Any]:
        return policies.lifecycle(self.settings.prefix, self.expire_days)

    def logging(self) -> dict[str, Any] | None:
        if not self.log_bucket:
            return None
        prefix = self.log_prefix or f"cos-access/{self.settings.bucket}/"
        return policies.logging_config(self.log_bucket, prefix)

    def render(self, wallets: Sequence[str] = ()) -> dict[str, Any]:
        return {
            "oidc_provider": self.oidc_config(),
            "vendor_role": self.vendor_role(),
            "tenant_roles": [self.tenant_role(w) for w in wallets],
            "bucket_policy": self.bucket_policy(),
            "lifecycle": self.lifecycle(),
            "lifecycle_xml": to_xml("LifecycleConfiguration", self.lifecycle()),
            "logging": self.logging(),
            "logging_xml": to_xml("BucketLoggingStatus", self.logging() or {}),
        }


def to_xml(root: str, data: dict[str, Any]) -> str:
    """The XML COS receives for a dict in the SDK's convention (lists repeat the element)."""

    def build(parent: ET.Element, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                for item in v if isinstance(v, list) else [v]:
                    build(ET.SubElement(parent, k), item)
        else:
            parent.text = str(value)

    el = ET.Element(root)
    build(el, data)
    return ET.tostring(el, encoding="unicode")


class Provisioner:
    """Applies and verifies a ``Deployment`` with the account's API key."""

    def __init__(self, deployment: Deployment, keys: StaticKeys) -> None:
        self.d = deployment
        self.warnings: list[str] = []
        """Set by ``verify``: not drift, but worth an operator's attention (quota)."""
        s = deployment.settings
        self.cam = TcApi.for_settings("cam", s, keys)
        self.kms = TcApi.for_settings("kms", s, keys)
        conf: dict[str, Any] = {
            "Region": s.region,
            "SecretId": keys.secret_id,
            "SecretKey": keys.secret_key,
            "Token": keys.token,
            "Scheme": s.scheme,
            "Timeout": s.timeout,
        }
        if s.ip:
            conf["IP"], conf["Port"] = s.ip, s.port
        self.cos = CosS3Client(CosConfig(**conf), retry=2)

    def _cos(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (CosServiceError, CosClientError) as exc:
            raise cos_error(exc, what, self.d.settings.bucket) from None

    # CAM helpers --------------------------------------------------------------------------
    def _get_role(self, name: str) -> dict[str, Any] | None:
        try:
            info = self.cam.call("GetRole", {"RoleName": name})["RoleInfo"]
            return info if isinstance(info, dict) else None
        except NotFound:
            return None
        except ConfigurationError as exc:
            if tencent_code(exc) == ROLE_NOT_EXIST:
                return None
            raise

    def _call_unless_role_gone(self, action: str, params: dict[str, Any]) -> bool:
        """``action`` on a role that may have vanished meanwhile (a concurrent offboard):
        False if CAM says the role does not exist, so offboarding twice is not an error."""
        try:
            self.cam.call(action, params)
        except ConfigurationError as exc:
            if tencent_code(exc) == ROLE_NOT_EXIST:
                return False
            raise
        return True

    def role_count(self) -> int:
        """Roles in the account (one ``DescribeRoleList`` call of one item: O(1))."""
        resp = self.cam.call("DescribeRoleList", {"Page": 1, "Rp": 1})
        return int(resp.get("TotalNum") or 0)

    def quota_problems(self, count: int | None = None) -> list[str]:
        """A warning once ``QUOTA_WARN`` of the role quota is used (role-per-tenant)."""
        count = self.role_count() if count is None else count
        quota = self.d.role_quota
        if count < quota * QUOTA_WARN:
            return []
        return [
            f"{count} of the account's {quota} CAM roles are in use (role-per-tenant uses one "
            "per wallet); beyond the quota onboarding fails: raise the quota with Tencent or "
            "move to mode=token-vendor (one role for every tenant)"
        ]

    def _check_quota(self) -> None:
        count = self.role_count()
        if count >= self.d.role_quota:
            raise ConfigurationError(
                f"cannot onboard: the account already has {count} CAM roles, the quota is "
                f"{self.d.role_quota} (role-per-tenant needs one per wallet); use "
                "mode=token-vendor, or raise the quota with Tencent and pass --role-quota"
            )

    def _find_policy(self, name: str) -> int | None:
        page = 1
        while True:
            resp = self.cam.call(
                "ListPolicies", {"Keyword": name, "Scope": "Local", "Page": page, "Rp": 200}
            )
            for item in resp.get("List") or []:
                if item.get("PolicyName") == name:
                    return int(item["PolicyId"])
            if page * 200 >= int(resp.get("TotalNum") or 0):
                return None
            page += 1

    def _ensure_role(self, spec: dict[str, Any]) -> list[str]:
        done: list[str] = []
        trust = json.dumps(spec["TrustPolicy"])
        doc = json.dumps(spec["Policy"])
        role = self._get_role(spec["RoleName"])
        if role is None:
            if spec["RoleName"] != self.d.settings.vendor_role:
                self._check_quota()
            self.cam.call(
                "CreateRole",
                {
                    "RoleName": spec["RoleName"],
                    "PolicyDocument": trust,
                    "SessionDuration": spec["SessionDuration"],
                    "Description": "managed by portable-creds",
                },
            )
            done.append(f"created role {spec['RoleName']}")
        elif not same_policy(role.get("PolicyDocument"), spec["TrustPolicy"]):
            self.cam.call(
                "UpdateAssumeRolePolicy", {"RoleName": spec["RoleName"], "PolicyDocument": trust}
            )
            done.append(f"updated trust policy of {spec['RoleName']}")
        pid = self._find_policy(spec["PolicyName"])
        if pid is None:
            pid = int(
                self.cam.call(
                    "CreatePolicy",
                    {
                        "PolicyName": spec["PolicyName"],
                        "PolicyDocument": doc,
                        "Description": "managed by portable-creds",
                    },
                )["PolicyId"]
            )
            done.append(f"created policy {spec['PolicyName']}")
        else:
            current = self.cam.call("GetPolicy", {"PolicyId": pid})
            if not same_policy(current.get("PolicyDocument"), spec["Policy"]):
                self.cam.call("UpdatePolicy", {"PolicyId": pid, "PolicyDocument": doc})
                done.append(f"updated policy {spec['PolicyName']}")
        attached = self.cam.call(
            "ListAttachedRolePolicies", {"RoleName": spec["RoleName"], "Page": 1, "Rp": 200}
        )
        if pid not in [int(p["PolicyId"]) for p in attached.get("List") or []]:
            self.cam.call("AttachRolePolicy", {"PolicyId": pid, "AttachRoleName": spec["RoleName"]})
            done.append(f"attached {spec['PolicyName']} to {spec['RoleName']}")
        return done

    # KMS helpers --------------------------------------------------------------------------
    def tenant_key(self, wallet: str) -> dict[str, Any] | None:
        """The wallet's CMK (``KeyMetadata``), found by its alias, or None."""
        return find_key(self.kms, self.d.kms_alias(wallet))

    def _ensure_key(self, wallet: str) -> tuple[dict[str, Any], list[str]]:
        """Create the wallet's CMK, or adopt it (enabling it again after an offboard)."""
        key = self.tenant_key(wallet)
        if key is None:
            alias = self.d.kms_alias(wallet)
            self.kms.call(
                "CreateKey",
                {"Alias": alias, "Description": f"portable-creds tenant {wallet}"},
            )
            key = self.tenant_key(wallet)
            if key is None:
                raise ConfigurationError(f"KMS CreateKey succeeded but alias {alias} is not found")
            return key, [f"created KMS key {key['KeyId']} ({alias}) for {wallet}"]
        if key.get("KeyState") == "Disabled":
            self.kms.call("EnableKey", {"KeyId": key["KeyId"]})
            return key, [f"enabled KMS key {key['KeyId']} for {wallet}"]
        if key.get("KeyState") != "Enabled":
            raise ConfigurationError(
                f"the KMS key {key['KeyId']} of {wallet} is {key.get('KeyState')}; cancel its "
                "deletion in the KMS console (or delete the alias) before onboarding again"
            )
        return key, []

    # commands -----------------------------------------------------------------------------
    def apply(self) -> list[str]:
        done: list[str] = []
        oidc = self.d.oidc_config()
        try:
            current = self.cam.call("DescribeOIDCConfig", {"Name": oidc["Name"]})
        except NotFound:
            current = None
        if current is None:
            self.cam.call("CreateOIDCConfig", oidc)
            done.append(f"created OIDC provider {oidc['Name']}")
        elif self._oidc_drift(current):
            self.cam.call("UpdateOIDCConfig", oidc)
            done.append(f"updated OIDC provider {oidc['Name']}")
        vendor = self.d.vendor_role()
        if vendor is not None:
            done += self._ensure_role(vendor)
        bucket = self.d.settings.bucket
        bp = self.d.bucket_policy()
        if bp is not None:
            self._cos("PUT ?policy", lambda: self.cos.put_bucket_policy(Bucket=bucket, Policy=bp))
            done.append("put bucket policy")
        lc = self.d.lifecycle()
        self._cos(
            "PUT ?lifecycle",
            lambda: self.cos.put_bucket_lifecycle(Bucket=bucket, LifecycleConfiguration=lc),
        )
        done.append("put bucket lifecycle")
        lg = self.d.logging()
        if lg is not None:
            self._cos(
                "PUT ?logging",
                lambda: self.cos.put_bucket_logging(Bucket=bucket, BucketLoggingStatus=lg),
            )
            done.append("put bucket logging")
        return done

    def onboard(self, wallet: str) -> list[str]:
        key, done = self._ensure_key(wallet) if self.d.kms else (None, [])
        done += self._ensure_role(self.d.tenant_role(wallet, key))
        self.warnings = self.quota_problems() if done else []
        return done

    def offboard(self, wallet: str, *, delete_data: bool = False) -> list[str]:
        spec = self.d.tenant_role(wallet)
        done: list[str] = []
        pid = self._find_policy(spec["PolicyName"])
        if self._get_role(spec["RoleName"]) is not None:
            if pid is not None:
                self._call_unless_role_gone(
                    "DetachRolePolicy", {"PolicyId": pid, "DetachRoleName": spec["RoleName"]}
                )
            if self._call_unless_role_gone("DeleteRole", {"RoleName": spec["RoleName"]}):
                done.append(f"deleted role {spec['RoleName']}")
        if pid is not None:
            try:
                self.cam.call("DeletePolicy", {"PolicyId": [pid]})
                done.append(f"deleted policy {spec['PolicyName']}")
            except NotFound:
                pass  # deleted by a concurrent offboard

        if self.d.kms:
            done += self._revoke_key(wallet, delete=delete_data)
        if delete_data:
            prefix = tenant_prefix(wallet, self.d.settings.prefix)
            bucket = self.d.settings.bucket
            while True:
                page = self._cos(
                    "LIST",
                    lambda: self.cos.list_objects(Bucket=bucket, Prefix=prefix, MaxKeys=1000),
                )
                keys = [c["Key"] for c in page.get("Contents") or []]
                if not keys:
                    break
                self._cos(
                    "DELETE",
                    lambda k=keys: self.cos.delete_objects(  # type: ignore[misc]
                        Bucket=bucket, Delete={"Quiet": "true", "Object": [{"Key": x} for x in k]}
                    ),
                )
                done.append(f"deleted {len(keys)} objects under {prefix}")
        return done

    def _revoke_key(self, wallet: str, *, delete: bool) -> list[str]:
        """Disable the wallet's CMK: no identity can unwrap its data keys any more (a cached
        data key in a running client lives at most ``kms_cache_age``). ``delete`` (with
        ``--delete-data``) also schedules the key's deletion: irreversible after the window."""
        key = self.tenant_key(wallet)
        if key is None:
            return []
        done: list[str] = []
        if key.get("KeyState") == "Enabled":
            self.kms.call("DisableKey", {"KeyId": key["KeyId"]})
            done.append(f"disabled KMS key {key['KeyId']} of {wallet}")
        if delete and key.get("KeyState") != "PendingDelete":
            self.kms.call(
                "ScheduleKeyDeletion",
                {"KeyId": key["KeyId"], "PendingWindowInDays": KMS_DELETION_DAYS},
            )
            done.append(f"scheduled deletion of KMS key {key['KeyId']} in {KMS_DELETION_DAYS} days")
        return done

    def _key_drift(self, wallet: str) -> tuple[dict[str, Any] | None, list[str]]:
        key = self.tenant_key(wallet)
        if key is None:
            return None, [f"KMS key of {wallet} ({self.d.kms_alias(wallet)}) is missing"]
        if key.get("KeyState") != "Enabled":
            return key, [f"KMS key {key['KeyId']} of {wallet} is {key.get('KeyState')}"]
        return key, []

    def _oidc_drift(self, current: dict[str, Any]) -> list[str]:
        want = self.d.oidc_config()
        drift = []
        if current.get("IdentityUrl") != want["IdentityUrl"]:
            drift.append("OIDC provider IdentityUrl differs")
        if sorted(current.get("ClientId") or []) != sorted(want["ClientId"]):
            drift.append("OIDC provider ClientId (audiences) differs")
        try:
            deployed_jwks = json.loads(base64.b64decode(current.get("IdentityKey") or ""))
        except ValueError:
            deployed_jwks = None
        if deployed_jwks != self.d.jwks:
            drift.append("OIDC provider IdentityKey (JWKS) differs")
        return drift

    def _role_drift(self, spec: dict[str, Any]) -> list[str]:
        role = self._get_role(spec["RoleName"])
        if role is None:
            return [f"role {spec['RoleName']} is missing"]
        drift = []
        if not same_policy(role.get("PolicyDocument"), spec["TrustPolicy"]):
            drift.append(f"role {spec['RoleName']} trust policy differs")
        pid = self._find_policy(spec["PolicyName"])
        if pid is None:
            return [*drift, f"policy {spec['PolicyName']} is missing"]
        doc = self.cam.call("GetPolicy", {"PolicyId": pid}).get("PolicyDocument")
        if not same_policy(doc, spec["Policy"]):
            drift.append(f"policy {spec['PolicyName']} document differs")
        attached = self.cam.call(
            "ListAttachedRolePolicies", {"RoleName": spec["RoleName"], "Page": 1, "Rp": 200}
        )
        ids = [int(p["PolicyId"]) for p in attached.get("List") or []]
        if pid not in ids:
            drift.append(f"policy {spec['PolicyName']} is not attached to {spec['RoleName']}")
        if len(ids) > 1:
            drift.append(f"role {spec['RoleName']} has extra policies attached: {ids}")
        return drift

    def onboarded_wallets(self) -> list[str]:
        return self._roles()[0]

    def _roles(self) -> tuple[list[str], int]:
        """(wallets with a tenant role, number of roles in the account)."""
        prefix = self.d.settings.role_prefix
        wallets = []
        page = 1
        while True:
            resp = self.cam.call("DescribeRoleList", {"Page": page, "Rp": 200})
            for role in resp.get("List") or []:
                name = str(role.get("RoleName") or "")
                if name.startswith(prefix) and name != self.d.settings.vendor_role:
                    rest = name[len(prefix) :]
                    try:
                        wallets.append(validate_wallet(rest))
                    except PortableCredsError:
                        continue
            total = int(resp.get("TotalNum") or 0)
            if page * 200 >= total:
                return wallets, total
            page += 1

    def versioning_problems(self) -> list[str]:
        """A bucket that has (or ever had) versioning: COS reportedly ignores
        ``x-cos-forbid-overwrite`` there, so create-only writes are not atomic."""
        bucket = self.d.settings.bucket
        got = self._cos("GET ?versioning", lambda: self.cos.get_bucket_versioning(Bucket=bucket))
        status = str((got or {}).get("Status") or "") if isinstance(got, dict) else ""
        if status in ("Enabled", "Suspended"):
            return [
                f"bucket {bucket} has versioning {status}: COS ignores x-cos-forbid-overwrite "
                "on a bucket that ever had versioning, so create-only writes are not atomic "
                "(the driver stops declaring create_only); use a bucket that never had "
                "versioning"
            ]
        return []

    def verify(self) -> list[str]:
        drift: list[str] = []
        try:
            current = self.cam.call("DescribeOIDCConfig", {"Name": self.d.settings.provider})
            drift += self._oidc_drift(current)
        except NotFound:
            drift.append(f"OIDC provider {self.d.settings.provider} is missing")
        vendor = self.d.vendor_role()
        if vendor is not None:
            drift += self._role_drift(vendor)
        wallets, role_total = self._roles()
        for wallet in wallets:
            key, key_drift = self._key_drift(wallet) if self.d.kms else (None, [])
            drift += key_drift
            drift += self._role_drift(self.d.tenant_role(wallet, key))
        bucket = self.d.settings.bucket
        want_bp = self.d.bucket_policy()
        try:
            got = self._cos("GET ?policy", lambda: self.cos.get_bucket_policy(Bucket=bucket))
            deployed_bp: Any = json.loads(got["Policy"])
        except NotFound:
            deployed_bp = None
        if not same_policy(deployed_bp, want_bp):
            drift.append("bucket policy differs")
        try:
            lc = self._cos("GET ?lifecycle", lambda: self.cos.get_bucket_lifecycle(Bucket=bucket))
        except NotFound:
            lc = None
        if lc != self.d.lifecycle():
            drift.append("bucket lifecycle differs")
        lg = self._cos("GET ?logging", lambda: self.cos.get_bucket_logging(Bucket=bucket))
        want_lg = self.d.logging()
        got_lg = lg.get("LoggingEnabled") if isinstance(lg, dict) else None
        if (want_lg or {}).get("LoggingEnabled") != (got_lg or None):
            drift.append("bucket logging differs")
        drift += self.versioning_problems()
        self.warnings = self.quota_problems(role_total) if wallets else []
        return drift


# CLI --------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="portable-creds admin cos", description=__doc__)
    p.add_argument("command", choices=["render", "apply", "verify", "onboard", "offboard"])
    p.add_argument("wallet", nargs="?", help="wallet for onboard/offboard (and render)")
    p.add_argument("--config", help="JSON file with any of the options below (flags win)")
    p.add_argument("--url", help="cos://BUCKET-APPID?region=..&owner_uin=..[&provider=..]")
    p.add_argument("--issuer", help="OIDC issuer URL (https)")
    p.add_argument("--audience", action="append", help="accepted OIDC audience (repeatable)")
    p.add_argument("--jwks-file", help="the issuer's JWKS as a JSON file")
    p.add_argument("--jwks-url", help="fetch the issuer's JWKS from this URL")
    p.add_argument(
        "--vendor-principal",
        action="append",
        help="CAM principal allowed to assume the vendor role (repeatable)",
    )
    p.add_argument("--log-bucket", help="bucket receiving access logs")
    p.add_argument("--log-prefix", help="prefix for access logs")
    # --lifecycle-days: the spelling `admin s3` uses for the same rule; --expire-days still works.
    p.add_argument("--lifecycle-days", "--expire-days", dest="expire_days", type=int,
                   help="lifecycle: expire credentials after N days")
    p.add_argument("--allowed-cidr", action="append", help="bucket policy: deny other source IPs")
    p.add_argument(
        "--no-require-tls",
        action="store_true",
        help="omit the bucket-policy deny on plain HTTP (only for local doubles)",
    )
    p.add_argument(
        "--document",
        choices=["all", "bucket-policy", "lifecycle", "logging"],
        default="all",
        help="render: print one document only (JSON or XML)",
    )
    p.add_argument("--delete-data", action="store_true", help="offboard: also delete objects")
    p.add_argument(
        "--session-tags",
        action="store_true",
        help="allow the vendor principals name/sts:TagSession (needed by session_tags=true)",
    )
    p.add_argument(
        "--kms",
        action="store_true",
        help="per-tenant KMS keys: onboard creates the wallet's CMK and grants its role use of "
        "it only; offboard disables it (with --delete-data: schedules its deletion)",
    )
    p.add_argument(
        "--role-quota",
        type=int,
        help=f"the account's CAM role quota (default {ROLE_QUOTA}, Tencent's documented limit)",
    )
    return p


def _load_jwks(jwks_file: str | None, jwks_url: str | None) -> dict[str, Any]:
    try:
        if jwks_file:
            with open(jwks_file, encoding="utf-8") as fh:
                data = json.load(fh)
        elif jwks_url:
            check_service_url(jwks_url, what="--jwks-url")
            # Never follows https -> http: a downgraded JWKS would trust an attacker's key.
            with open_url(jwks_url, timeout=10) as resp:
                data = json.loads(resp.read(1 << 20))
        else:
            raise ConfigurationError("give the issuer's JWKS with --jwks-file or --jwks-url")
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"could not read the JWKS: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ConfigurationError("the JWKS must be a JSON object with a 'keys' list")
    return data


def deployment_from_args(args: argparse.Namespace) -> Deployment:
    cfg: dict[str, Any] = {}
    if args.config:
        try:
            with open(args.config, encoding="utf-8") as fh:
                cfg = json.load(fh)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"could not read --config {args.config}: {exc}") from None

    def opt(name: str) -> Any:
        value = getattr(args, name)
        return value if value not in (None, False, []) else cfg.get(name.replace("_", "-"))

    url = opt("url")
    if not url:
        raise ConfigurationError(
            "give the bucket with --url cos://BUCKET-APPID?region=..&owner_uin=.."
        )
    settings = parse_settings(
        StoreTarget(url=url, wallet="0x" + "0" * 40, options={"mode": "role-per-tenant"})
    )
    issuer = opt("issuer")
    audiences = opt("audience")
    if not issuer or not audiences:
        raise ConfigurationError("give the OIDC issuer and audience: --issuer URL --audience AUD")
    if isinstance(audiences, str):
        audiences = [audiences]
    return Deployment(
        settings=settings,
        issuer=issuer,
        audiences=tuple(audiences),
        jwks=_load_jwks(opt("jwks_file"), opt("jwks_url")),
        vendor_principals=tuple(opt("vendor_principal") or ()),
        log_bucket=opt("log_bucket"),
        log_prefix=opt("log_prefix") or "",
        expire_days=opt("expire_days"),
        require_tls=not opt("no_require_tls"),
        allowed_cidrs=tuple(opt("allowed_cidr") or ()),
        session_tags=bool(opt("session_tags")),
        role_quota=int(opt("role_quota") or ROLE_QUOTA),
        kms=bool(opt("kms")),
    )


def main(argv: list[str], *, stdout: TextIO | None = None, keys: StaticKeys | None = None) -> int:
    out = stdout or sys.stdout
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        if args.command in ("onboard", "offboard") and not args.wallet:
            parser.print_usage(sys.stderr)
            print(f"error: {args.command} needs a WALLET", file=sys.stderr)
            return 2
        d = deployment_from_args(args)
        if args.command == "render":
            wallets = [args.wallet] if args.wallet else []
            if args.document == "bucket-policy":
                print(json.dumps(d.bucket_policy(), indent=2), file=out)
            elif args.document == "lifecycle":
                print(to_xml("LifecycleConfiguration", d.lifecycle()), file=out)
            elif args.document == "logging":
                print(to_xml("BucketLoggingStatus", d.logging() or {}), file=out)
            else:
                print(json.dumps(d.render(wallets), indent=2), file=out)
            return 0
        prov = Provisioner(d, keys or static_keys({}, what="portable-creds admin cos"))
        if args.command == "verify":
            drift = prov.verify()
            for line in drift:
                print(f"DRIFT: {line}", file=out)
            for line in prov.warnings:
                print(f"WARNING: {line}", file=out)
            print(
                "verify: OK, deployed matches rendered"
                if not drift
                else f"verify: {len(drift)} difference(s); run apply/onboard",
                file=out,
            )
            return 1 if drift else 0
        problems: list[str] = []
        if args.command == "apply":
            done = prov.apply()
            problems = prov.versioning_problems()
        elif args.command == "onboard":
            done = prov.onboard(args.wallet)
        else:
            done = prov.offboard(args.wallet, delete_data=args.delete_data)
        for line in done or ["nothing to do"]:
            print(line, file=out)
        for line in prov.warnings:
            print(f"WARNING: {line}", file=out)
        for line in problems:
            print(f"PROBLEM: {line}", file=out)
        return 1 if problems else 0
    except PortableCredsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
