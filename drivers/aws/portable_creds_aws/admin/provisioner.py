"""Apply, inspect and verify a deployment with the administrator's (static) credentials.

``apply`` is idempotent (create what is missing, overwrite what differs). ``deployed`` reads the
live state back into the same shape ``render`` produces, so ``verify`` is a plain diff of two
canonical JSON documents and cannot drift from ``apply``.
"""

from __future__ import annotations

import difflib
import functools
import json
from typing import Any

from portable_creds.errors import PortableCredsError
from portable_creds.names import validate_wallet

from . import policies as P
from . import tenant_roles as TR
from .calls import _call, _doc, _maybe
from .policies import canonical


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A live lifecycle rule in ``render``'s shape: only the fields we write, and a legacy
    top-level ``Prefix`` (which a rule written by other tooling may come back with) read as
    ``Filter.Prefix``, so the same rule never shows as drift."""
    out = {k: v for k, v in rule.items() if k in P.LIFECYCLE_RULE_FIELDS}
    if "Filter" not in out and "Prefix" in rule:
        out["Filter"] = {"Prefix": rule["Prefix"]}
    return out


class Provisioner:
    def __init__(
        self, deployment: P.Deployment, *, iam: Any, s3: Any, region: str, kms: Any = None
    ) -> None:
        self.d = deployment
        self.iam = iam
        self.s3 = s3
        self.region = region
        self.kms = kms
        """KMS client (admin credentials); needed only with ``deployment.kms_key``."""

    @functools.cached_property
    def tenancy(self) -> Any:
        """Onboard/offboard/tenant-set logic (``tenancy.Tenancy``), per strategy."""
        from .tenancy import Tenancy

        return Tenancy(self)

    # ------------------------------------------------------------------ read
    def tenants(self) -> list[str]:
        """The operator's intended tenant set (the intent records; see ``intent``)."""
        return list(self.tenancy.tenants())

    def policy_tenants(self) -> list[str]:
        """``per-tenant``: wallets with a tenant policy on the shared role."""
        names = self._role_policy_names()
        return sorted(
            n[len(P.TENANT_POLICY_PREFIX) :] for n in names if n.startswith(P.TENANT_POLICY_PREFIX)
        )

    @functools.cached_property
    def sharded(self) -> Any:
        """The sharded revocation layout (``sharded.ShardedRevocation``)."""
        from .sharded import ShardedRevocation

        return ShardedRevocation(self)

    def offboarded(self) -> list[str]:
        if self.d.revocation == "sharded":
            return list(self.sharded.denied())
        doc = self._role_policy(P.OFFBOARDED_POLICY)
        if doc is None:
            return []
        resources = doc["Statement"][0]["Resource"]
        resources = [resources] if isinstance(resources, str) else resources
        return sorted(r.rsplit("/", 2)[-2] for r in resources)

    def _role_policy_names(self) -> list[str]:
        role = _maybe("get role", lambda: self.iam.get_role(RoleName=self.d.role_name))
        if role is None:
            return []
        names: list[str] = []
        marker: str | None = None
        while True:
            kwargs: dict[str, Any] = {"RoleName": self.d.role_name}
            if marker:
                kwargs["Marker"] = marker
            page: dict[str, Any] = _call(
                "list role policies", functools.partial(self.iam.list_role_policies, **kwargs)
            )
            names.extend(page.get("PolicyNames", []))
            marker = page.get("Marker") if page.get("IsTruncated") else None
            if not marker:
                return names

    def shared_role_exists(self) -> bool:
        return _maybe("get role", lambda: self.iam.get_role(RoleName=self.d.role_name)) is not None

    def role_policy(self, name: str) -> Any:
        return self._role_policy(name)

    def _role_policy(self, name: str) -> Any:
        got = _maybe(
            f"get role policy {name}",
            lambda: self.iam.get_role_policy(RoleName=self.d.role_name, PolicyName=name),
        )
        return None if got is None else _doc(got["PolicyDocument"])

    def deployed(self) -> dict[str, Any]:
        """The live state, in ``render``'s shape (``None`` for what is missing)."""
        d = self.d
        provider = _maybe(
            "get OIDC provider",
            lambda: self.iam.get_open_id_connect_provider(OpenIDConnectProviderArn=d.provider_arn),
        )
        provider_doc: Any = None
        if provider is not None:
            provider_doc = {
                "arn": d.provider_arn,
                "Url": d.issuer,
                "ClientIDList": provider.get("ClientIDList", []),
            }
            if provider.get("ThumbprintList"):
                provider_doc["ThumbprintList"] = provider["ThumbprintList"]
        role = _maybe("get role", lambda: self.iam.get_role(RoleName=d.role_name))
        role_doc: Any = None
        if role is not None:
            r = role["Role"]
            role_doc = {
                "name": d.role_name,
                "arn": r.get("Arn"),
                "max_session_duration": int(r.get("MaxSessionDuration") or 3600),
                "trust_policy": _doc(r["AssumeRolePolicyDocument"]),
                "inline_policies": {
                    name: self._role_policy(name)
                    for name in self._role_policy_names()
                    if name != P.OFFBOARDED_POLICY
                },
            }
        bucket_exists = _maybe("head bucket", lambda: self.s3.head_bucket(Bucket=d.bucket))
        bucket_doc: Any = None
        if bucket_exists is not None:
            policy = _maybe("get bucket policy", lambda: self.s3.get_bucket_policy(Bucket=d.bucket))
            pab = _maybe(
                "get public access block", lambda: self.s3.get_public_access_block(Bucket=d.bucket)
            )
            lc = _maybe(
                "get lifecycle",
                lambda: self.s3.get_bucket_lifecycle_configuration(Bucket=d.bucket),
            )
            ver = _call("get versioning", lambda: self.s3.get_bucket_versioning(Bucket=d.bucket))
            # RGW 16.2 answers GetBucketLogging with an empty status (and refuses the PUT).
            logging_status = _maybe(
                "get bucket logging", lambda: self.s3.get_bucket_logging(Bucket=d.bucket)
            )
            enabled = (logging_status or {}).get("LoggingEnabled")
            bucket_doc = {
                "name": d.bucket,
                "policy": None if policy is None else _doc(policy["Policy"]),
                "public_access_block": None
                if pab is None
                else pab["PublicAccessBlockConfiguration"],
                "lifecycle": None
                if lc is None
                else {"Rules": [_lifecycle_rule(rule) for rule in lc.get("Rules", [])]},
                "ownership_controls": self._ownership_controls(),
                "versioning": ver.get("Status"),
                "access_logging": None
                if not enabled
                else {
                    "LoggingEnabled": {
                        "TargetBucket": enabled.get("TargetBucket"),
                        "TargetPrefix": enabled.get("TargetPrefix", ""),
                    }
                },
            }
        docs = {
            "oidc_provider": provider_doc,
            "role": role_doc,
            "bucket": bucket_doc,
            "store_url": d.store_url(),
        }
        if d.strategy == "role-per-tenant":
            roles = TR.TenantRoles(d, self.iam)
            docs["tenant_roles"] = {w: roles.deployed(w, _doc) for w in roles.wallets()}
        return docs

    def _ownership_controls(self) -> Any:
        """Live ``OwnershipControls`` (AWS flavour only: RGW 16.2 has none, render says None)."""
        if self.d.flavor != "aws":
            return None
        got = _maybe(
            "get ownership controls",
            lambda: self.s3.get_bucket_ownership_controls(Bucket=self.d.bucket),
        )
        if got is None:
            return None
        rules = got.get("OwnershipControls", {}).get("Rules", [])
        return {"Rules": [{"ObjectOwnership": r.get("ObjectOwnership")} for r in rules]}

    def verify(self) -> list[str]:
        """Unified diff lines between what is deployed and what ``render`` says; empty if equal."""
        tenants = self.tenants()
        rendered = P.render(self.d, tenants)
        if self.d.strategy == "role-per-tenant":
            rendered["tenant_roles"] = TR.render_roles(self.d, tenants)
        want = canonical(rendered)
        have = canonical(self.deployed())
        if self.d.strategy == "tag-variable":
            # The deny list is compared with the recorded offboarded wallets, so a wallet the
            # operator offboarded but a concurrent writer un-denied shows up as drift.
            denied = self.offboarded() if self.d.revocation == "inline" else None
            if self.d.revocation == "sharded":
                # No single data role: 256 shard roles, every deny in its wallet's shard.
                by_shard = self.sharded.scan()
                denied = sorted(w for ws in by_shard.values() for w in ws)
                want["role"] = None
                want["shard_roles"] = canonical(self.sharded.rendered_roles())
                have["shard_roles"] = canonical(self.sharded.deployed_roles())
                want["misplaced_denies"] = []
                have["misplaced_denies"] = self.sharded.misplaced(by_shard)
            want["offboarded"] = self.tenancy.expected_denied(denied)
            have["offboarded"] = denied
        kms_drift = self.key_policy_drift()
        if want == have:
            return kms_drift
        a = json.dumps(have, indent=2, sort_keys=True).splitlines()
        b = json.dumps(want, indent=2, sort_keys=True).splitlines()
        return [*difflib.unified_diff(a, b, "deployed", "rendered", lineterm=""), *kms_drift]

    def _kms_client(self) -> Any:
        if self.kms is None:
            raise PortableCredsError("--kms-key given but the provisioner has no KMS client")
        return self.kms

    def key_policy_drift(self) -> list[str]:
        """``--kms-key``: the key policy compared by meaning (statement by statement; see
        ``kms_policy.key_policy_drift``), one line per difference; empty without a key."""
        key = self.d.kms_key
        if key is None:
            return []
        from .kms_policy import policy_drift

        kms = self._kms_client()
        got = _maybe(
            f"get key policy of {key}",
            lambda: kms.get_key_policy(KeyId=key, PolicyName="default"),
        )
        if got is None:
            return [f"KMS key {key} does not exist (create it, then run apply)"]
        return [f"{key}: {line}" for line in policy_drift(self.d, got["Policy"])]

    def put_key_policy(self) -> list[str]:
        """``--kms-key``: put the rendered key policy on the operator's (existing) key."""
        key = self.d.kms_key
        if key is None:
            return []
        from .kms_policy import key_policy

        kms = self._kms_client()
        policy = json.dumps(key_policy(self.d), sort_keys=True)
        _call(
            f"put key policy on {key}",
            lambda: kms.put_key_policy(KeyId=key, PolicyName="default", Policy=policy),
        )
        return [f"key policy on {key}: tenants use only their own wallet's context"]

    # ------------------------------------------------------------------ write
    def apply(self) -> list[str]:
        """Create or update everything; returns a line per change made."""
        d = self.d
        done: list[str] = []
        if _maybe("head bucket", lambda: self.s3.head_bucket(Bucket=d.bucket)) is None:
            kwargs: dict[str, Any] = {"Bucket": d.bucket}
            if d.flavor == "aws" and self.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            _call("create bucket", lambda: self.s3.create_bucket(**kwargs))
            done.append(f"created bucket {d.bucket}")
        _call(
            "put public access block",
            lambda: self.s3.put_public_access_block(
                Bucket=d.bucket, PublicAccessBlockConfiguration=P.public_access_block(d)
            ),
        )
        ownership = P.ownership_controls(d)
        if ownership is not None:
            _call(
                "put ownership controls",
                lambda: self.s3.put_bucket_ownership_controls(
                    Bucket=d.bucket, OwnershipControls=ownership
                ),
            )
        policy = P.bucket_policy(d)
        if policy is not None:
            _call(
                "put bucket policy",
                lambda: self.s3.put_bucket_policy(Bucket=d.bucket, Policy=P.compact(policy)),
            )
            done.append("bucket policy: admin read")
        lc = P.lifecycle(d)
        if lc is not None:
            _call(
                "put lifecycle",
                lambda: self.s3.put_bucket_lifecycle_configuration(
                    Bucket=d.bucket, LifecycleConfiguration=lc
                ),
            )
            done.append(
                f"lifecycle: expire {d.prefix}/ after {d.lifecycle_days} days"
                + (" (and noncurrent versions, expired delete markers)" if d.versioning else "")
            )
        if d.versioning:
            _call(
                "put versioning",
                lambda: self.s3.put_bucket_versioning(
                    Bucket=d.bucket, VersioningConfiguration={"Status": "Enabled"}
                ),
            )
            done.append("versioning enabled")
        logging_status = P.access_logging(d)
        if logging_status is not None:
            _call(
                "put bucket logging",
                lambda: self.s3.put_bucket_logging(
                    Bucket=d.bucket, BucketLoggingStatus=logging_status
                ),
            )
            done.append(f"server access logging: s3://{d.log_bucket}/{d.log_prefix}")
        existing = _maybe(
            "get OIDC provider",
            lambda: self.iam.get_open_id_connect_provider(OpenIDConnectProviderArn=d.provider_arn),
        )
        if existing is None:
            _call(
                "create OIDC provider",
                lambda: self.iam.create_open_id_connect_provider(**P.oidc_provider(d)),
            )
            done.append(f"registered OIDC provider {d.provider_arn}")
        if d.strategy == "role-per-tenant":
            return done  # no shared role: each tenant's role is created by onboard
        if d.revocation == "sharded":  # shard roles instead of one role; key policy last
            return done + list(self.sharded.apply()) + self.put_key_policy()
        trust = P.compact(P.trust_policy(d))
        if _maybe("get role", lambda: self.iam.get_role(RoleName=d.role_name)) is None:
            _call(
                "create role",
                lambda: self.iam.create_role(
                    RoleName=d.role_name,
                    AssumeRolePolicyDocument=trust,
                    MaxSessionDuration=d.max_session_duration,
                    Description="portable-creds data role: tenants via OIDC web identity",
                ),
            )
            done.append(f"created role {d.role_arn}")
        else:
            _call(
                "update trust policy",
                lambda: self.iam.update_assume_role_policy(
                    RoleName=d.role_name, PolicyDocument=trust
                ),
            )
            done.append("trust policy updated")
        if d.strategy == "tag-variable":
            self._put_role_policy(P.ISOLATION_POLICY, P.isolation_policy(d))
            done.append(f"role policy {P.ISOLATION_POLICY}")
        # Last: AWS refuses a key policy naming a principal that does not exist yet.
        return done + self.put_key_policy()

    def _put_role_policy(self, name: str, doc: dict[str, Any]) -> None:
        _call(
            f"put role policy {name}",
            lambda: self.iam.put_role_policy(
                RoleName=self.d.role_name, PolicyName=name, PolicyDocument=P.compact(doc)
            ),
        )

    def _delete_role_policy(self, name: str) -> bool:
        # Check first: RGW answers a delete of a missing policy with an unparseable body.
        if self._role_policy(name) is None:
            return False
        got = _maybe(
            f"delete role policy {name}",
            lambda: self.iam.delete_role_policy(RoleName=self.d.role_name, PolicyName=name),
        )
        return got is not None

    def onboard(self, wallet: str) -> str:
        """Record the wallet as intended, then grant (see ``tenancy`` for concurrency)."""
        return str(self.tenancy.onboard(wallet))

    def offboard(self, wallet: str) -> str:
        """Remove the wallet's access. Live sessions lose it as soon as the service re-reads the
        role's policies (RGW: next request; AWS: within seconds), at the latest at refresh."""
        return str(self.tenancy.offboard(wallet))

    def put_tenant_policy(self, wallet: str) -> None:
        w = validate_wallet(wallet)
        self._put_role_policy(P.tenant_policy_name(w), P.tenant_policy(self.d, w))

    def delete_tenant_policy(self, wallet: str) -> bool:
        return self._delete_role_policy(P.tenant_policy_name(validate_wallet(wallet)))

    def role_policy_names(self) -> list[str]:
        return self._role_policy_names()

    def delete_role_policy(self, name: str) -> bool:
        return self._delete_role_policy(name)

    def delete_shared_role(self) -> None:
        """The shared data role (after its inline policies are gone), e.g. after migration."""
        _maybe("delete role", lambda: self.iam.delete_role(RoleName=self.d.role_name))

    def set_offboarded(self, wallets: list[str]) -> None:
        self._set_offboarded(wallets)

    def _set_offboarded(self, wallets: list[str]) -> None:
        doc = P.offboarded_policy(self.d, wallets)
        if doc is None:
            self._delete_role_policy(P.OFFBOARDED_POLICY)
        else:
            self._put_role_policy(P.OFFBOARDED_POLICY, doc)


__all__ = ["PortableCredsError", "Provisioner", "canonical"]
