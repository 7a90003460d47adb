"""Issue 11 item 13: revocation for 100,000 offboarded wallets within AWS's documented IAM
quotas (the arithmetic is in docs/aws.md; this test is its proof, run on the real documents)."""

from __future__ import annotations

import collections
import secrets

from portable_creds_aws.admin import policies as P
from portable_creds_aws.admin import revocation as R

D = P.Deployment(
    bucket="acme-creds", issuer="https://broker.example.com", account_id="123456789012"
)


def test_single_role_deny_list_runs_out_near_70_wallets() -> None:
    """Today's design: one inline deny document on the one role."""
    capacity = R.single_role_capacity(D)
    assert 40 <= capacity <= 100


def test_100000_offboarded_wallets_fit_every_quota() -> None:
    wallets = ["0x" + secrets.token_hex(20) for _ in range(100_000)]
    plans = R.plan(D, wallets)
    assert R.quota_violations(plans) == []
    assert len(plans) == R.SHARDS == 256
    # Every revoked wallet is denied on exactly its own shard, nowhere else.
    denied: dict[str, list[str]] = collections.defaultdict(list)
    for p in plans:
        for doc in p.managed_policies.values():
            cond = doc["Statement"][0]["Condition"]["StringEquals"]
            for w in cond[f"aws:PrincipalTag/{P.TAG_KEY}"]:
                assert R.shard_of(w) == p.shard
                denied[w].append(p.shard)
    assert set(denied) == set(wallets)
    assert all(len(v) == 1 for v in denied.values())
    total = sum(len(p.managed_policies) for p in plans)
    fullest = max(len(p.managed_policies) for p in plans)
    assert total <= R.MANAGED_POLICIES_PER_ACCOUNT and fullest <= R.MANAGED_POLICIES_PER_ROLE


def test_a_wallet_can_only_assume_its_own_shard() -> None:
    (p,) = [p for p in R.plan(D, []) if p.shard == "ab"]
    cond = p.trust_policy["Statement"][0]["Condition"]
    assert cond["StringLike"] == {f"aws:RequestTag/{P.TAG_KEY}": "0xab*"}
    assert cond["Null"] == {f"aws:RequestTag/{P.TAG_KEY}": "false"}


def test_too_many_offboarded_wallets_are_reported_not_truncated() -> None:
    """Past capacity the plan names the quota it breaks instead of dropping revocations."""
    wallets = ["0xab" + secrets.token_hex(19) for _ in range(1_500)]  # all in one shard
    problems = R.quota_violations(R.plan(D, wallets))
    assert any("managed policies attached" in p for p in problems)


def test_single_role_offboard_refuses_clearly_past_capacity() -> None:
    import pytest

    from portable_creds.errors import ConfigurationError

    fits = ["0x" + f"{i:040x}" for i in range(R.single_role_capacity(D))]
    R.check_single_role(D, fits)
    with pytest.raises(ConfigurationError, match="sharded layout"):
        R.check_single_role(D, [*fits, "0x" + "f" * 40])
