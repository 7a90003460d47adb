"""The KMS key policy that makes a tenant's session unwrap only its own wallet's data keys.

AWS KMS evaluates the key policy on every GenerateDataKey/Decrypt. The data role (every
tenant's web-identity session) may use the key only when the request's encryption context
names the caller's own wallet: ``kms:EncryptionContext:pc_wallet`` must equal the session tag
``${aws:PrincipalTag/agentkeys_user_wallet}`` (AWS documents both the condition key and policy
variables in key policies). So even a tenant holding another tenant's blob, and asking KMS
with that tenant's context (the only context the ciphertext opens with), is denied; with its
own context, KMS refuses the ciphertext (the context is bound). The request must also carry
exactly our three context keys, so a stray context cannot slip through.

With ``kms_custodian`` (``--kms-custodian ARN``) one more statement lets that principal, the
fleet operator that runs ``rewrap --all-wallets`` / ``copy`` with the key, GenerateDataKey and
Decrypt for *any* wallet, but still only with our three context keys and a ``pc_wallet``
present, so it can move custody of credential blobs and nothing else. Without it only tenants
(each for its own wallet) and whatever IAM grants through the root statement use the key.

The account root keeps full control (the AWS default key-policy statement; without it the key
becomes unmanageable). Proven offline: rendering, ``parliament`` lint, drift detection on
moto; the condition evaluation itself only on real AWS (moto evaluates no key policy).
"""

from __future__ import annotations

import json
from typing import Any

from portable_creds.envelope import (
    KMS_CONTEXT_SERVICE,
    KMS_CONTEXT_STORAGE_KEY,
    KMS_CONTEXT_WALLET,
)

from .policies import TAG_KEY, Deployment, canonical

TENANT_SID = "TenantsUseOnlyTheirOwnWalletContext"
CUSTODIAN_SID = "CustodianMovesCredentialBlobs"
_CONTEXT_KEYS = [KMS_CONTEXT_WALLET, KMS_CONTEXT_SERVICE, KMS_CONTEXT_STORAGE_KEY]


MAX_POLICY_BYTES = 32768
"""AWS KMS's key policy size limit (KMS developer guide, "Key policy format")."""


def tenant_principals(d: Deployment) -> str | list[str]:
    """The data role; with sharded revocation every shard role (``<role_name>-00..ff``: a key
    policy names principals literally, a wildcard ARN is no principal). ``role-per-tenant``
    (a role per wallet, created at onboarding) is refused by ``Deployment``."""
    if d.revocation != "sharded":
        return d.role_arn
    from .revocation import SHARD_DIGITS, SHARDS, shard_role_name

    return [
        f"arn:aws:iam::{d.account_id}:role/{shard_role_name(d, f'{i:0{SHARD_DIGITS}x}')}"
        for i in range(SHARDS)
    ]


def key_policy(d: Deployment) -> dict[str, Any]:
    """The key policy document for the deployment's KMS key (flavor ``aws`` only)."""
    doc: dict[str, Any] = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministersTheKey",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{d.account_id}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": TENANT_SID,
                "Effect": "Allow",
                "Principal": {"AWS": tenant_principals(d)},
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        f"kms:EncryptionContext:{KMS_CONTEXT_WALLET}": (
                            "${aws:PrincipalTag/" + TAG_KEY + "}"
                        )
                    },
                    "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": list(_CONTEXT_KEYS)},
                    "Null": {f"aws:PrincipalTag/{TAG_KEY}": "false"},
                },
            },
        ],
    }
    if d.kms_custodian:
        doc["Statement"].append(
            {
                "Sid": CUSTODIAN_SID,
                "Effect": "Allow",
                "Principal": {"AWS": d.kms_custodian},
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": "*",
                "Condition": {
                    "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": list(_CONTEXT_KEYS)},
                    "Null": {f"kms:EncryptionContext:{KMS_CONTEXT_WALLET}": "false"},
                },
            }
        )
    return doc


def key_policy_drift(d: Deployment, kms: Any, key_id: str) -> list[str]:
    """What differs between the key's live policy and the rendered one (empty: no drift).

    Statements are compared by Sid, order-insensitively, so a policy edited in the console
    (a widened condition, an extra principal, a removed statement) is reported by name.
    """
    return policy_drift(d, kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])


def policy_drift(d: Deployment, live_text: str) -> list[str]:
    """``key_policy_drift`` on a policy already read (GetKeyPolicy's ``Policy`` string)."""
    live = json.loads(live_text)
    want = {s.get("Sid"): canonical(s) for s in key_policy(d)["Statement"]}
    have = {s.get("Sid"): canonical(s) for s in live.get("Statement", [])}
    drift = [f"key policy statement {sid!r} is missing" for sid in want if sid not in have]
    drift += [f"key policy statement {sid!r} is not ours" for sid in have if sid not in want]
    drift += [
        f"key policy statement {sid!r} differs from the rendered one"
        for sid in want
        if sid in have and have[sid] != want[sid]
    ]
    return drift
