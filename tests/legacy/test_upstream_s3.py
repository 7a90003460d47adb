"""Upstream 0x01/0x02 objects already in S3 (moto over HTTP, written with boto3 the way upstream
wrote them) -> `portable-creds migrate --from-upstream s3://...` -> read back identically; with
--delete-source the upstream objects are gone afterwards, and only after verification."""

from __future__ import annotations

import json
from pathlib import Path

import boto3

from portable_creds.testing.signer_server import SignerServer
from tests.cloud_fixtures import REGION, moto_url

from .conftest import WALLET_A, WALLET_B, clean_env, run_cli
from .helpers import signer_kek, upstream_v1, upstream_v2


def test_upstream_objects_in_s3_migrate(
    moto_endpoint: str, moto_bucket: str, tmp_path: Path
) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with SignerServer() as signer:
        expected = {
            (WALLET_A, "openai"): b"sk-s3-v1",
            (WALLET_A, "github"): b"ghp-s3-v2",
            (WALLET_B, "openai"): b"sk-s3-b-v2",
        }
        builders = {(WALLET_A, "openai"): upstream_v1}
        for (wallet, service), secret in expected.items():
            build = builders.get((wallet, service), upstream_v2)
            key, blob = build(signer_kek(signer.url, wallet, service), wallet, service, secret)
            s3.put_object(
                Bucket=moto_bucket, Key=key, Body=blob, ContentType="application/octet-stream"
            )
        env = clean_env(
            tmp_path,
            PORTABLE_CREDS_BACKEND=f"local://{tmp_path / 'dest'}",
            PORTABLE_CREDS_HOME=str(tmp_path / "state"),
            AGENTKEYS_SIGNER_URL=signer.url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
        )
        source = moto_url(moto_endpoint, moto_bucket)
        args = ["migrate", "--from-upstream", source, WALLET_A, WALLET_B, "--json"]
        proc = run_cli([*args, "--delete-source"], env)
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)
        assert report["counts"]["migrated"] == 3
        assert all(w["source_deleted"] for w in report["wallets"])
        for (wallet, service), secret in expected.items():
            got = run_cli(["--wallet", wallet, "get", service], env)
            assert got.stdout == secret, got.stderr
        left = s3.list_objects_v2(Bucket=moto_bucket).get("Contents", [])
        assert left == []
        again = json.loads(run_cli(args, env).stdout)
        assert again["items"] == []  # nothing upstream-shaped is left to migrate
