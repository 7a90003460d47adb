"""Offboarding that scales on AWS ``tag-variable``: 100,000 revoked wallets within IAM quotas.

The problem: with one data role, every offboarded wallet is an explicit Deny on that role, and
all of a role's inline policies share **10,240 characters** (IAM quota): the current
``agentkeys-offboarded`` document fills it at about 70 wallets (two ~75-character resources per
wallet), after which ``put_role_policy`` fails and revocation silently stops working.

The design (pure rendering here; quota arithmetic in docs/aws.md, checked by
tests/aws/test_revocation_plan.py):

* **Shard the data role by the wallet's first two hex digits**: 256 roles
  ``<role_name>-<xx>``, each with the same tag-variable isolation policy and a trust policy
  that additionally requires ``aws:RequestTag/agentkeys_user_wallet`` ``StringLike 0x<xx>*``,
  so a wallet can only ever assume *its* shard (and be denied there). Tenants use
  ``role_arn=...:role/<role_name>-{shard}``. Wallets are uniformly distributed hex, so each
  shard carries ~1/256 of the revoked set.
* **Deny by tag, not by resource**: one statement ``Deny s3:* on * when
  aws:PrincipalTag/agentkeys_user_wallet`` is one of a list. A wallet costs 45 characters
  (``"0x<40 hex>",``) instead of ~150, and it also covers listing.
* **Customer managed policies** hold the lists: 6,144 characters each, up to 10 attached per
  role (20 after a quota increase), 1,500 per account (5,000 after an increase).

Capacity: (6,144 - 181) // 45 = 132 wallets per policy, x 10 per role = 1,320 per shard,
x 256 shards = 337,920 wallets if uniform. At 100,000 revoked wallets a shard holds ~391 (the
fullest of 256 measured at 441), i.e. 3-4 managed policies per shard, ~860 in all (<= 1,500).

Status: with ``revocation="inline"`` (the default) the provisioner's ``tag-variable`` offboard
writes the single-role deny document and refuses, with a clear error, once that would pass
10,240 characters (``check_single_role``). With ``revocation="sharded"`` ``apply`` / ``onboard``
/ ``offboard`` / ``verify`` deploy this layout (``sharded``; stable packing there, same quotas).
"""

from __future__ import annotations

import collections
import json
from typing import Any

import attrs

from portable_creds.names import validate_wallet

from . import policies as P

# AWS IAM quotas (IAM User Guide, "IAM and AWS STS quotas"); IAM does not count white space.
INLINE_POLICIES_PER_ROLE_CHARS = 10_240
MANAGED_POLICY_CHARS = 6_144
MANAGED_POLICIES_PER_ROLE = 10
MANAGED_POLICIES_PER_ACCOUNT = 1_500
ROLES_PER_ACCOUNT = 1_000
TRUST_POLICY_CHARS = 2_048
ROLE_NAME_CHARS = 64
POLICY_NAME_CHARS = 128
SHARD_DIGITS = 2
SHARDS = 16**SHARD_DIGITS


def size(doc: Any) -> int:
    """Characters IAM counts: the document without white space."""
    return len(json.dumps(doc, separators=(",", ":")))


def shard_of(wallet: str) -> str:
    return validate_wallet(wallet)[2 : 2 + SHARD_DIGITS]


def shard_role_name(d: P.Deployment, shard: str) -> str:
    return f"{d.role_name}-{shard}"


def shard_trust_policy(d: P.Deployment, shard: str) -> dict[str, Any]:
    """The tag-variable trust policy, restricted to the wallets of one shard."""
    doc = P.trust_policy(d)
    cond = doc["Statement"][0]["Condition"]
    cond["StringLike"] = {f"aws:RequestTag/{P.TAG_KEY}": f"0x{shard}*"}
    return doc


def deny_policy(wallets: list[str]) -> dict[str, Any]:
    return {
        "Version": P.VERSION,
        "Statement": [
            {
                "Sid": "Offboarded",
                "Effect": "Deny",
                "Action": "s3:*",
                "Resource": "*",
                "Condition": {"StringEquals": {f"aws:PrincipalTag/{P.TAG_KEY}": sorted(wallets)}},
            }
        ],
    }


def _chunks(wallets: list[str]) -> list[list[str]]:
    """Greedy packing into documents of at most ``MANAGED_POLICY_CHARS`` characters."""
    out: list[list[str]] = []
    empty = size(deny_policy([]))
    current: list[str] = []
    used = empty
    for w in sorted(wallets):
        cost = len(w) + 3  # quotes and comma
        if current and used + cost > MANAGED_POLICY_CHARS:
            out.append(current)
            current, used = [], empty
        current.append(w)
        used += cost
    if current:
        out.append(current)
    return out


@attrs.frozen
class ShardPlan:
    shard: str
    role_name: str
    trust_policy: dict[str, Any]
    inline_policies: dict[str, Any]
    managed_policies: dict[str, dict[str, Any]]


def plan(d: P.Deployment, offboarded: list[str]) -> list[ShardPlan]:
    """Every shard role with its documents for the given revoked set."""
    by_shard: dict[str, list[str]] = collections.defaultdict(list)
    for w in offboarded:
        by_shard[shard_of(w)].append(validate_wallet(w))
    plans = []
    for i in range(SHARDS):
        shard = f"{i:0{SHARD_DIGITS}x}"
        name = shard_role_name(d, shard)
        managed = {
            f"{name}-offboarded-{n}": deny_policy(chunk)
            for n, chunk in enumerate(_chunks(by_shard.get(shard, [])))
        }
        plans.append(
            ShardPlan(
                shard=shard,
                role_name=name,
                trust_policy=shard_trust_policy(d, shard),
                inline_policies={P.ISOLATION_POLICY: P.isolation_policy(d)},
                managed_policies=managed,
            )
        )
    return plans


def quota_violations(plans: list[ShardPlan]) -> list[str]:
    """Every documented IAM quota the plan would exceed (empty: it deploys)."""
    problems: list[str] = []
    if len(plans) > ROLES_PER_ACCOUNT:
        problems.append(f"{len(plans)} roles > {ROLES_PER_ACCOUNT} per account")
    total_managed = sum(len(p.managed_policies) for p in plans)
    if total_managed > MANAGED_POLICIES_PER_ACCOUNT:
        problems.append(
            f"{total_managed} managed policies > {MANAGED_POLICIES_PER_ACCOUNT} per account"
        )
    for p in plans:
        if len(p.role_name) > ROLE_NAME_CHARS:
            problems.append(f"{p.role_name}: name longer than {ROLE_NAME_CHARS}")
        if size(p.trust_policy) > TRUST_POLICY_CHARS:
            problems.append(f"{p.role_name}: trust policy > {TRUST_POLICY_CHARS} characters")
        inline = sum(size(doc) for doc in p.inline_policies.values())
        if inline > INLINE_POLICIES_PER_ROLE_CHARS:
            problems.append(f"{p.role_name}: inline policies {inline} > 10,240 characters")
        if len(p.managed_policies) > MANAGED_POLICIES_PER_ROLE:
            problems.append(
                f"{p.role_name}: {len(p.managed_policies)} managed policies attached > "
                f"{MANAGED_POLICIES_PER_ROLE}"
            )
        for name, doc in p.managed_policies.items():
            if len(name) > POLICY_NAME_CHARS:
                problems.append(f"{name}: policy name longer than {POLICY_NAME_CHARS}")
            if size(doc) > MANAGED_POLICY_CHARS:
                problems.append(f"{name}: {size(doc)} > {MANAGED_POLICY_CHARS} characters")
    return problems


def single_role_capacity(d: P.Deployment) -> int:
    """How many wallets today's single-role ``agentkeys-offboarded`` inline policy holds before
    the role's inline policies pass 10,240 characters (the failure this module replaces)."""
    base = size(P.isolation_policy(d))
    n = 0
    while True:
        wallets = ["0x" + f"{i:040x}" for i in range(n + 1)]
        doc = P.offboarded_policy(d, wallets)
        if base + size(doc) > INLINE_POLICIES_PER_ROLE_CHARS:
            return n
        n += 1


def check_single_role(d: P.Deployment, wallets: list[str]) -> None:
    """Refuse, before calling IAM, a deny list the one role cannot hold."""
    from portable_creds.errors import ConfigurationError

    doc = P.offboarded_policy(d, wallets)
    used = size(P.isolation_policy(d)) + (size(doc) if doc is not None else 0)
    if used > INLINE_POLICIES_PER_ROLE_CHARS:
        raise ConfigurationError(
            f"offboarding {len(wallets)} wallets needs {used} characters of inline policy on "
            f"{d.role_name}, over IAM's 10,240 per role: revocation at this scale needs the "
            "sharded layout: --revocation sharded (docs/aws.md, 'Offboarding at scale')"
        )
