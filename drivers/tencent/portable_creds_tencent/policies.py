"""The CAM and COS documents this driver relies on, rendered from a few inputs.

One place builds them so the provisioner, the token vendor and the tests agree byte for byte.
``cos:prefix`` values are URL-encoded because that is how COS compares them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import attrs

from portable_creds import upstream
from portable_creds.errors import ConfigurationError
from portable_creds.names import CREDENTIALS_DIR

TENANT_OBJECT_ACTIONS = (
    "name/cos:PutObject",
    "name/cos:GetObject",
    "name/cos:HeadObject",
    "name/cos:DeleteObject",
)
WALLET_TAG = "portable-creds-wallet"
MAX_SESSION_POLICY_BYTES = 2048
"""Largest URL-encoded inline ``Policy`` the token vendor sends to ``AssumeRole``.

Nothing documents a Policy limit; STS documents that the session ``Token`` is "at most 4,096
bytes, depending on the associated policy" (sts/v20180813 models.py, ``Credentials.Token``) and
has ``InvalidParameter.PolicyTooLong``. Half the token maximum leaves room for the token's own
fields. The double refuses larger policies with ``InvalidParameter.PolicyTooLong`` too."""


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


def exact_prefix(prefix: str) -> str:
    """``cos:prefix`` value for ``string_equal``: the URL-encoded prefix, no wildcard."""
    return quote(prefix, safe="-_.~")


def listed_prefixes(prefix: str, wallet: str) -> list[str]:
    """Every exact prefix the store and ``migrate`` list for ``wallet``.

    The tenant prefix, its ``credentials/`` directory, and - when the store uses upstream's
    ``bots`` prefix - upstream's v1 and v2 credential directories that ``migrate`` reads.
    """
    base = f"{prefix}/{wallet}/"
    out = [base, f"{base}{CREDENTIALS_DIR}/"]
    if prefix == upstream.UPSTREAM_PREFIX:
        out += [upstream.v1_prefix(wallet), upstream.v2_prefix(wallet)]
    return list(dict.fromkeys(out))


def _listing(ref: BucketRef, key_prefix: str, exact: Sequence[str]) -> list[dict[str, Any]]:
    """``GetBucket`` below ``key_prefix``, written twice.

    COS's documented examples compare ``cos:prefix`` with ``string_equal`` on URL-encoded
    values; whether ``string_like`` with ``%2F*`` matches is undocumented. So the exact prefixes
    the store lists are also granted with ``string_equal`` (a separate statement: conditions
    inside one statement are AND-ed), and listing works under either reading.
    """
    outside = [encoded_prefix(p) for p in exact if not p.startswith(key_prefix)]
    like: str | list[str] = (
        [encoded_prefix(key_prefix), *outside] if outside else (encoded_prefix(key_prefix))
    )
    statements: list[dict[str, Any]] = [
        {
            "effect": "allow",
            "action": ["name/cos:GetBucket"],
            "resource": [ref.bucket_resource],
            "condition": {"string_like": {"cos:prefix": like}},
        }
    ]
    if exact:
        statements.append(
            {
                "effect": "allow",
                "action": ["name/cos:GetBucket"],
                "resource": [ref.bucket_resource],
                "condition": {"string_equal": {"cos:prefix": [exact_prefix(p) for p in exact]}},
            }
        )
    return statements


def prefix_policy(
    ref: BucketRef, key_prefix: str, exact: Sequence[str] = (), *, listing_anywhere: bool = False
) -> dict[str, Any]:
    """Object access below ``key_prefix`` (ends with '/') and listing restricted to it.

    ``listing_anywhere`` (the vendor role's ceiling) grants ``GetBucket`` without a prefix
    condition: no finite ``string_equal`` list covers every tenant, and every vended session is
    cut down to its tenant's exact prefixes by the session policy anyway.
    """
    listing: list[dict[str, Any]]
    if listing_anywhere:
        listing = [
            {"effect": "allow", "action": ["name/cos:GetBucket"], "resource": [ref.bucket_resource]}
        ]
    else:
        listing = _listing(ref, key_prefix, exact)
    return {
        "version": "2.0",
        "statement": [
            {
                "effect": "allow",
                "action": list(TENANT_OBJECT_ACTIONS),
                "resource": [ref.object_resource(key_prefix + "*")],
            },
            *listing,
            {
                # Lets the driver see whether the bucket is (or was) versioned, where
                # x-cos-forbid-overwrite is reportedly ignored (no create-only writes then).
                "effect": "allow",
                "action": ["name/cos:GetBucketVersioning"],
                "resource": [ref.bucket_resource],
            },
        ],
    }


def encoded_policy(policy: dict[str, Any]) -> str:
    """The inline ``Policy`` parameter as STS receives it: compact JSON, URL-encoded."""
    return quote(json.dumps(policy, separators=(",", ":")), safe="")


def checked_session_policy(policy: dict[str, Any], what: str) -> str:
    """``encoded_policy``, refused with a clear error before STS if over the safe bound."""
    encoded = encoded_policy(policy)
    if len(encoded) > MAX_SESSION_POLICY_BYTES:
        raise ConfigurationError(
            f"{what}: the session policy would be {len(encoded)} bytes URL-encoded, over the "
            f"safe bound of {MAX_SESSION_POLICY_BYTES} (STS tokens are at most 4,096 bytes "
            "depending on the policy); ask for fewer services at a time"
        )
    return encoded


def scoped_policy(
    ref: BucketRef, keys: list[str], *, read_only: bool, kms_key: str | None = None
) -> dict[str, Any]:
    """Exactly these objects; reads only if ``read_only``; no listing. With a per-tenant KMS
    key (its resource), unwrapping with it (and, unless ``read_only``, making data keys)."""
    actions = ["name/cos:GetObject", "name/cos:HeadObject"]
    if not read_only:
        actions += ["name/cos:PutObject", "name/cos:DeleteObject"]
    statements: list[dict[str, Any]] = [
        {
            "effect": "allow",
            "action": actions,
            "resource": [ref.object_resource(k) for k in keys],
        }
    ]
    if kms_key is not None:
        kms = kms_statement(kms_key)
        if read_only:
            kms["action"] = ["name/kms:Decrypt"]
        statements.append(kms)
    return {"version": "2.0", "statement": statements}


KMS_TENANT_ACTIONS = ("name/kms:GenerateDataKey", "name/kms:Decrypt")
"""What a tenant does with its own CMK: make data keys (put) and unwrap them (get)."""


def kms_key_resource(region: str, owner_uin: str, creator_uin: str, key_id: str) -> str:
    """CAM's resource for one CMK: ``qcs::kms:$region:$account:key/creatorUin/$creatorUin/$keyid``
    ("resource-level permissions supported by KMS API operations"), the account written
    ``uin/<uin>`` as in CAM's general resource syntax."""
    return f"qcs::kms:{region}:uin/{owner_uin}:key/creatorUin/{creator_uin}/{key_id}"


def kms_statement(resource: str) -> dict[str, Any]:
    """The tenant's only KMS grant: its own key (CAM has no encryption-context condition)."""
    return {"effect": "allow", "action": list(KMS_TENANT_ACTIONS), "resource": [resource]}


def tenant_policy(
    ref: BucketRef, prefix: str, wallet: str, kms_key: str | None = None
) -> dict[str, Any]:
    """The tenant's prefix, plus (with per-tenant KMS keys) its own key's resource."""
    policy = prefix_policy(ref, f"{prefix}/{wallet}/", listed_prefixes(prefix, wallet))
    if kms_key is not None:
        policy["statement"].append(kms_statement(kms_key))
    return policy


def vendor_policy(
    ref: BucketRef, prefix: str, kms_account: tuple[str, str] | None = None
) -> dict[str, Any]:
    """The vendor role's ceiling: every tenant. Each session is cut down by its inline policy.

    ``kms_account`` (region, owner UIN): per-tenant KMS keys, so the ceiling also allows the
    tenant actions on every CMK of the account (``key/*``: no finite list covers tenants
    onboarded later); each vended session names exactly its wallet's key."""
    policy = prefix_policy(ref, f"{prefix}/", listing_anywhere=True)
    if kms_account is not None:
        region, owner = kms_account
        policy["statement"].append(kms_statement(f"qcs::kms:{region}:uin/{owner}:key/*"))
    return policy


def tenant_trust_policy(
    owner_uin: str,
    provider: str,
    issuer: str,
    audiences: list[str],
    wallet: str,
    wallet_claim: str = "sub",
) -> dict[str, Any]:
    if wallet_claim != "sub":
        # CAM documents oidc:iss, oidc:aud and oidc:sub as trust-policy condition keys and no
        # other claim; a condition on an unknown key would never match (or never be checked).
        raise ConfigurationError(
            f"role-per-tenant binds a token to its wallet by oidc:sub; wallet_claim="
            f"{wallet_claim!r} is not a documented CAM condition key. Issue tokens with the "
            "wallet in 'sub', or use mode=token-vendor (the vendor checks any claim itself)"
        )
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


def vendor_trust_policy(principals: list[str], *, session_tags: bool = False) -> dict[str, Any]:
    """Who may assume the vendor role; ``session_tags`` also allows ``name/sts:TagSession``
    (what the double requires before it accepts ``Tags`` on ``AssumeRole``)."""
    actions = ["name/sts:AssumeRole"] + (["name/sts:TagSession"] if session_tags else [])
    return {
        "version": "2.0",
        "statement": [
            {
                "effect": "allow",
                "action": actions,
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
