"""Cold CLI on a federated backend: the STS session is shared across processes (issue 13).

Real parts: the installed CLI as a subprocess, boto3 against a moto server, and a loopback
proxy in front of moto's STS that counts the ``AssumeRoleWithWebIdentity`` calls (and, in
front of S3, refuses a session once, the way a revoked session is refused).
"""

from __future__ import annotations

import datetime as dt
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from portable_creds.testing.faultproxy import Fault, FaultProxy, match

from .conftest import Cli

pytest.importorskip("portable_creds_aws")

SECRET = b"sk-cached-session-0042"
ROLE = "arn:aws:iam::123456789012:role/agentkeys-data-role"


class Federated:
    def __init__(self, cli: Cli, sts: FaultProxy, s3: FaultProxy) -> None:
        self.cli = cli
        self.sts = sts
        self.s3 = s3

    def sts_calls(self) -> int:
        return sum(1 for r in self.sts.records if r.request.method == "POST")

    @property
    def cache_dir(self) -> Path:
        return self.cli.data_home / "cache" / "credentials"

    def cached(self) -> list[dict[str, str]]:
        if not self.cache_dir.is_dir():
            return []
        return [json.loads(p.read_bytes()) for p in sorted(self.cache_dir.glob("*.json"))]


@pytest.fixture
def fed(wallet_cli: Cli, moto_endpoint: str, moto_bucket: str, tmp_path: Path
        ) -> Iterator[Federated]:
    host, port = moto_endpoint.removeprefix("http://").split(":")
    token = tmp_path / "oidc.jwt"
    token.write_text("header.payload.signature")
    with FaultProxy((host, int(port))) as sts, FaultProxy((host, int(port))) as s3:
        wallet_cli.env["PORTABLE_CREDS_BACKEND"] = (
            f"s3://{moto_bucket}?endpoint={s3.url}&sts_endpoint={sts.url}&region=us-east-1"
            f"&role_arn={ROLE}&token_file={token}"
        )
        yield Federated(wallet_cli, sts, s3)


def test_second_and_later_processes_make_no_sts_call(fed: Federated) -> None:
    fed.cli.ok("put", "svc", input=SECRET)
    assert fed.sts_calls() == 1
    for _ in range(3):
        assert fed.cli.ok("get", "svc").stdout == SECRET
    assert fed.sts_calls() == 1  # every later process reused the cached session
    [entry] = fed.cached()
    assert dt.datetime.fromisoformat(entry["expiration"]) > dt.datetime.now(dt.UTC)
    [path] = fed.cache_dir.glob("*.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(fed.cache_dir.stat().st_mode) == 0o700
    assert fed.cli.env["PORTABLE_CREDS_WALLET"] not in path.name  # the name reveals nothing
    assert SECRET not in path.read_bytes()


def test_cache_can_be_turned_off(fed: Federated) -> None:
    fed.cli.ok("--no-credential-cache", "put", "svc", input=SECRET)
    fed.cli.ok("get", "svc", "--no-credential-cache")
    assert fed.sts_calls() == 2
    assert fed.cached() == []
    fed.cli.ok("get", "svc", env={"PORTABLE_CREDS_NO_CREDENTIAL_CACHE": "1"})
    assert fed.sts_calls() == 3
    assert fed.cached() == []


def test_expired_entry_is_never_used_and_is_replaced(fed: Federated) -> None:
    fed.cli.ok("put", "svc", input=SECRET)
    [path] = fed.cache_dir.glob("*.json")
    entry = json.loads(path.read_bytes())
    entry["expiration"] = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat()
    entry["access_key_id"] = "EXPIREDKEY"
    path.write_text(json.dumps(entry))
    assert fed.cli.ok("get", "svc").stdout == SECRET
    assert fed.sts_calls() == 2
    [fresh] = fed.cached()
    assert fresh["access_key_id"] != "EXPIREDKEY"


def test_refused_session_is_dropped_from_the_cache(fed: Federated) -> None:
    fed.cli.ok("put", "svc", input=SECRET)
    [before] = fed.cached()
    fed.s3.inject(Fault.s3_error(403, "InvalidAccessKeyId"), times=1, when=match(method="GET"))
    assert fed.cli.ok("get", "svc").stdout == SECRET  # one re-exchange, then the read
    assert fed.sts_calls() == 2
    [after] = fed.cached()
    assert after["access_key_id"] != before["access_key_id"]
    fed.cli.ok("get", "svc")
    assert fed.sts_calls() == 2  # the new session is shared again


def test_scoped_sessions_are_cached_apart(fed: Federated) -> None:
    fed.cli.ok("put", "svc", input=SECRET)
    fed.cli.ok("--scope", "svc", "--read-only", "get", "svc")
    assert fed.sts_calls() == 2  # its own session (with a session policy), not the wide one
    assert len(fed.cached()) == 2
    fed.cli.ok("--scope", "svc", "--read-only", "get", "svc")
    assert fed.sts_calls() == 2
    # Another scope is another session policy: never served from the first one's entry.
    # (moto does not enforce session policies, so only the exchange count is checked here;
    # the RGW scoping tests show the service refusing outside the scope.)
    fed.cli.ok("--scope", "svc,other", "--read-only", "get", "svc")
    assert fed.sts_calls() == 3
    assert len(fed.cached()) == 3
