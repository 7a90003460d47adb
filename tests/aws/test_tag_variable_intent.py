"""``tag-variable`` on moto (IAM documents only; moto evaluates no policy): offboarding is
recorded, concurrent offboards all land in the deny list, and a lost revocation is drift."""

from __future__ import annotations

import threading

import boto3
from portable_creds_aws.admin import policies as P
from portable_creds_aws.admin.provisioner import Provisioner

from .conftest import REGION, random_wallet


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
    )
    prov = Provisioner(d, iam=boto3.client("iam", **kw), s3=boto3.client("s3", **kw), region=REGION)
    prov.apply()
    return prov


def test_concurrent_offboards_all_land_and_lost_ones_are_drift(moto_endpoint: str) -> None:
    prov = _prov(moto_endpoint, "pc-tagvar-intent")
    wallets = [random_wallet() for _ in range(16)]
    for w in wallets:
        prov.onboard(w)
    threads = [threading.Thread(target=prov.offboard, args=(w,)) for w in wallets[:12]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert prov.offboarded() == sorted(wallets[:12])
    assert prov.tenants() == sorted(wallets[12:])
    assert prov.verify() == []
    # A stale writer drops one wallet from the deny list: verify names it.
    prov.set_offboarded(sorted(wallets[1:12]))
    assert wallets[0] in "\n".join(prov.verify())
    prov.offboard(wallets[0])
    assert prov.verify() == []
