"""The CAM and COS documents this driver relies on, rendered from a few inputs.

One place builds them so the provisioner, the token vendor and the tests agree byte for byte.
``cos:prefix`` values are URL-encoded because that is how COS compares them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import attrs

TENANT_OBJECT_ACTIONS = (
    "name/cos:PutObject",
    "name/cos:GetObject",
    "name/cos:HeadObject",
    "name/cos:DeleteObject",
)
WALLET_TAG = "portable-creds-wallet"


@attrs.frozen
class BucketRef:
    bucket: str
    appid: str
    region: str

    @property
    def bucket_resource(self) -> str:
        return f"qcs::cos:{self.region}:uid/{self.appid}:{self.bucket}/"

    def object_resource(self, key_pattern: str) -> str:
        return self.bucket_resource + key_pattern


def encoded_prefix(prefix: str) -> str:
    """``cos:prefix`` condition value: URL-encoded, ``*`` kept as the wildcard."""
    return quote(prefix, safe="-_.~") + "*"


def prefix_policy(ref: BucketRef, key_prefix: str) -> dict[str, Any]:
    """Object access below ``key_prefix`` (ends with '/') and listing restricted to it."""
    return {
        "version": "2.0",
        "statement": [
            {
                "effect": "allow",
                "action": list(TENANT_OBJECT_ACTIONS),
                "resource": [ref.object_resource(key_prefix + "*")],
            },
            {
                "effect": "allow",
                "action": ["name/cos:GetBucket"],
                "resource": [ref.bucket_resource],
                "condition": {"string_like": {"cos:prefix": encoded_prefix(key_prefix)}},
            },
        ],
    }


def scoped_policy(ref: BucketRef, keys: list[str], *, read_only: bool) -> dict[str, Any]:
    """Exactly these objects; reads only if ``read_only``; no listing."""
    actions = ["name/cos:GetObject", "name/cos:HeadObject"]
    if not read_only:
        actions += ["name/cos:PutObject", "name/cos:DeleteObject"]
    return {
        "version": "2.0",
        "statement": [
            {
                "effect": "allow",
                "action": actions,
                "resource": [ref.object_resource(k) for k in keys],
            }
        ],
    }


def tenant_policy(ref: BucketRef, prefix: str, wallet: str) -> dict[str, Any]:
    return prefix_policy(ref, f"{prefix}/{wallet}/")


def vendor_policy(ref: BucketRef, prefix: str) -> dict[str, Any]:
    """The vendor role's ceiling: every tenant. Each session is cut down by its inline policy."""
    return prefix_policy(ref, f"{prefix}/")


def tenant_trust_policy(
    owner_uin: str,
    provider: str,
    issuer: str,
    audiences: list[str],
    wallet: str,
    wallet_claim: str = "sub",
) -> dict[str, Any]:
    return {
        "version": "2.0",
        "statement": [
            {
                "effect": "allow",
                "action": ["name/sts:AssumeRoleWithWebIdentity"],
                "principal": {"federated": [f"qcs::cam::uin/{owner_uin}:oidc-provider/{provider}"]},
                "condition": {
                    "string_equal": {
                        "oidc:iss": [issuer],
                        "oidc:aud": list(audiences),
                        f"oidc:{wallet_claim}": [wallet],
                    }
                },
            }
        ],
    }


def vendor_trust_policy(principals: list[str]) -> dict[str, Any]:
    return {
        "version": "2.0",
        "statement": [
            {
                "effect": "allow",
                "action": ["name/sts:AssumeRole"],
                "principal": {"qcs": list(principals)},
            }
        ],
    }


def bucket_policy(
    ref: BucketRef, *, require_tls: bool, allowed_cidrs: list[str]
) -> dict[str, Any] | None:
    """Deny-only guard rails on the bucket (grants stay in identity policies)."""
    statements: list[dict[str, Any]] = []
    if require_tls:
        statements.append(
            {
                "effect": "deny",
                "principal": {"qcs": ["*"]},
                "action": ["name/cos:*"],
                "resource": [ref.object_resource("*"), ref.bucket_resource],
                "condition": {"bool_equal": {"cos:secure-transport": "false"}},
            }
        )
    if allowed_cidrs:
        statements.append(
            {
                "effect": "deny",
                "principal": {"qcs": ["*"]},
                "action": ["name/cos:*"],
                "resource": [ref.object_resource("*"), ref.bucket_resource],
                "condition": {"ip_not_equal": {"qcs:ip": list(allowed_cidrs)}},
            }
        )
    if not statements:
        return None
    return {"version": "2.0", "statement": statements}


def lifecycle(prefix: str, expire_days: int | None) -> dict[str, Any]:
    """Lifecycle for the credential prefix. COS filters are plain prefixes (no wildcards), so
    ``<prefix>/`` covers every tenant's ``credentials/`` directory."""
    rules: list[dict[str, Any]] = [
        {
            "ID": "portable-creds-abort-incomplete",
            "Filter": {"Prefix": f"{prefix}/"},
            "Status": "Enabled",
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": "1"},
        }
    ]
    if expire_days:
        rules.append(
            {
                "ID": "portable-creds-expire-credentials",
                "Filter": {"Prefix": f"{prefix}/"},
                "Status": "Enabled",
                "Expiration": {"Days": str(expire_days)},
            }
        )
    return {"Rule": rules}


def logging_config(target_bucket: str, target_prefix: str) -> dict[str, Any]:
    return {"LoggingEnabled": {"TargetBucket": target_bucket, "TargetPrefix": target_prefix}}
