"""Issue 11 item 13 wired in: ``tag-variable`` with ``revocation=sharded`` on moto server.

What moto proves here: the IAM *layout* (256 shard roles, managed deny policies attached to the
wallet's shard, each within IAM's size quota), that offboarding goes past the single-role limit
(~72), concurrency of writers on one shard, and that ``verify`` reports a lost revocation. moto
stores managed policies but evaluates no policy, and Ceph RGW has neither managed policies nor
policy variables, so the *enforcement* (a denied session tag really loses access; a wallet
cannot assume another shard) rests on AWS's documented semantics (explicit Deny wins;
``aws:PrincipalTag`` / ``aws:RequestTag`` conditions), unverified against a live engine here.
"""

from __future__ import annotations

import secrets
import threading

import boto3
import pytest
from portable_creds_aws import settings as S
from portable_creds_aws.admin import policies as P
from portable_creds_aws.admin import revocation as R
from portable_creds_aws.admin import sharded as SH
from portable_creds_aws.admin.provisioner import Provisioner
from portable_creds_aws.settings import parse_settings

from portable_creds.driver import StoreTarget
from portable_creds.errors import ConfigurationError

from .conftest import REGION


def _prov(moto_endpoint: str, bucket: str) -> Provisioner:
    kw = {
        "endpoint_url": moto_endpoint,
        "region_name": REGION,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    d = P.Deployment(
        bucket=bucket,
        issuer="https://broker.example.com",
        account_id="123456789012",
        role_name=f"r-{bucket}",
        revocation="sharded",
    )
    return Provisioner(d, iam=boto3.client("iam", **kw), s3=boto3.client("s3", **kw), region=REGION)


@pytest.fixture(scope="module")
def prov(moto_endpoint: str) -> Provisioner:
    p = _prov(moto_endpoint, "pc-sharded-revoke")
    p.apply()
    return p


def test_shard_placeholder_is_filled_from_the_wallet() -> None:
    d = P.Deployment(
        bucket="creds", issuer="https://i.example", account_id="123456789012", revocation="sharded"
    )
    assert d.role_arn.endswith(":role/agentkeys-data-role-{shard}")
    w = "0xAB" + "cd" * 19
    s = parse_settings(StoreTarget(url=d.store_url(), wallet=w))
    assert s.role_arn == "arn:aws:iam::123456789012:role/agentkeys-data-role-ab"
    assert S.SHARD_DIGITS == R.SHARD_DIGITS
    with pytest.raises(ConfigurationError, match="wallet"):
        parse_settings(StoreTarget(url=d.store_url(), wallet=None))


def test_sharded_needs_tag_variable_and_a_short_role_name() -> None:
    with pytest.raises(ConfigurationError, match="tag-variable"):
        P.Deployment(
            bucket="creds",
            issuer="https://i.example",
            account_id="123456789012",
            strategy="per-tenant",
            revocation="sharded",
        )
    with pytest.raises(ConfigurationError, match="61"):
        P.Deployment(
            bucket="creds",
            issuer="https://i.example",
            account_id="123456789012",
            role_name="r" * 62,
            revocation="sharded",
        )


def test_apply_creates_256_shard_roles_and_verify_is_clean(prov: Provisioner) -> None:
    roles = prov.sharded.deployed_roles()
    assert len(roles) == 256 and all(r is not None for r in roles.values())
    ab = roles[f"{prov.d.role_name}-ab"]
    assert ab["trust_policy"]["Statement"][0]["Condition"]["StringLike"] == {
        f"aws:RequestTag/{P.TAG_KEY}": "0xab*"
    }
    assert prov.verify() == []


def test_offboarding_200_wallets_passes_the_old_single_role_limit(prov: Provisioner) -> None:
    d = prov.d
    assert R.single_role_capacity(d) < 200
    wallets = sorted({"0x" + secrets.token_hex(20) for _ in range(200)})
    for w in wallets:
        prov.offboard(w)
    assert prov.offboarded() == wallets
    for w in wallets[:5]:
        layout = prov.sharded.layout(R.shard_of(w))
        assert any(w in ws for _, ws in layout.values())
    assert prov.verify() == []


def test_one_shard_fills_several_managed_policies_within_quota(prov: Provisioner) -> None:
    """Past 132 wallets a shard needs a second managed policy; each stays <= 6,144 chars."""
    wallets = ["0x7e" + secrets.token_hex(19) for _ in range(140)]
    # 139 recorded in one settling round (as a batch or a racing fleet would), one by offboard.
    for w in wallets[:-1]:
        prov.tenancy.intent.mark_offboarded(w)
    assert prov.sharded.settle_shard("7e", set(), set(wallets[:-1]))
    prov.offboard(wallets[-1])
    layout = prov.sharded.layout("7e")
    assert len(layout) >= 2
    for arn, ws in layout.values():
        assert R.size(R.deny_policy(ws)) <= R.MANAGED_POLICY_CHARS
        assert arn.startswith(f"arn:aws:iam::{prov.d.account_id}:policy/{prov.d.role_name}-7e-")
    assert set(wallets) <= set(prov.sharded.shard_denied("7e"))
    # Onboarding one again lifts exactly its deny.
    prov.onboard(wallets[0])
    assert not prov.sharded.is_denied(wallets[0])
    assert prov.sharded.is_denied(wallets[1])


def test_concurrent_offboards_in_one_shard_all_land(prov: Provisioner) -> None:
    wallets = ["0x3c" + secrets.token_hex(19) for _ in range(10)]
    threads = [threading.Thread(target=prov.offboard, args=(w,)) for w in wallets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(wallets) <= set(prov.sharded.shard_denied("3c"))


def test_a_lost_or_misplaced_revocation_is_drift(prov: Provisioner) -> None:
    w = "0x5a" + secrets.token_hex(19)
    other = "0x5a" + secrets.token_hex(19)
    moved = "0x11" + secrets.token_hex(19)
    for x in (w, other, moved):
        prov.offboard(x)
    # A stale writer (or a hand edit) drops w from its shard's deny policy ...
    ((arn, ws),) = prov.sharded.layout("5a").values()
    prov.sharded._new_version(arn, [x for x in ws if x != w])
    # ... and moves another deny to a shard where it revokes nothing.
    ((arn11, ws11),) = prov.sharded.layout("11").values()
    prov.sharded._new_version(arn11, [x for x in ws11 if x != moved])
    prov.sharded._create("22", 9, [moved])
    diff = "\n".join(prov.verify())
    assert w in diff
    assert "misplaced_denies" in diff and moved in diff
    prov.sharded._delete(
        SH.policy_arn(prov.d, SH.policy_name(prov.d, "22", 9)), f"{prov.d.role_name}-22"
    )
    prov.offboard(w)
    prov.offboard(moved)
    assert prov.verify() == []


def test_pack_refuses_past_the_per_role_quota_instead_of_dropping() -> None:
    wallets = ["0xab" + f"{i:038x}" for i in range(1_321)]
    with pytest.raises(ConfigurationError, match="Managed policies per role"):
        SH.pack({}, wallets)
    assert sum(len(v) for v in SH.pack({}, wallets[:1_320]).values()) == 1_320


def test_iac_rendering_refuses_the_sharded_layout_it_cannot_hold() -> None:
    from portable_creds_aws.admin import render_iac

    d = P.Deployment(
        bucket="creds", issuer="https://i.example", account_id="123456789012", revocation="sharded"
    )
    with pytest.raises(ConfigurationError, match="sharded"):
        render_iac.cloudformation(d)
