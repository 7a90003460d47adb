"""The project's RGW launcher: loopback only, private state, clean stop."""

from __future__ import annotations

import os
import stat
import urllib.request

import boto3
import pytest
from portable_creds_aws.testing.rgw import RgwCluster, RgwEndpoint

pytestmark = pytest.mark.rgw


def test_second_cluster_starts_and_stops_cleanly(rgw: RgwEndpoint) -> None:
    """Runs beside the session cluster (own ports, own state) and leaves nothing behind."""
    cluster = RgwCluster()
    endpoint = cluster.start()
    try:
        assert endpoint.url.startswith("http://127.0.0.1:") and endpoint.url != rgw.url
        assert stat.S_IMODE(os.stat(endpoint.state_dir).st_mode) == 0o700
        pids = cluster.pids
        assert set(pids) == {"mon.a", "osd.0", "client.rgw"}
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint.url,
            region_name="us-east-1",
            aws_access_key_id=endpoint.admin_access_key,
            aws_secret_access_key=endpoint.admin_secret_key,
        )
        s3.create_bucket(Bucket="launcher-check")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["launcher-check"]
        assert endpoint.admin_secret_key not in repr(endpoint)
    finally:
        cluster.stop()
    for pid in pids.values():
        assert not os.path.exists(f"/proc/{pid}") or _is_zombie(pid)
    assert not endpoint.state_dir.exists()
    with pytest.raises(OSError):
        urllib.request.urlopen(endpoint.url, timeout=2)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True
