"""``cos://`` cold CLI: a fresh process reuses the previous one's STS session (issue 13).

The CLI is a subprocess against the signature-verifying Tencent double; the double records
every session it issues, which is what is counted. Role-per-tenant (the tenant itself calls
``AssumeRoleWithWebIdentity``) and token-vendor (``vendor_url=``) are both covered.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from portable_creds_tencent.driver import build_vendor
from portable_creds_tencent.settings import parse_settings
from portable_creds_tencent.vendor_service import VendorServer

from portable_creds.driver import StoreTarget

from .conftest import AUDIENCE, WALLET_A, Env

BIN = Path(sys.executable).parent / "portable-creds"
_SCRUB = ("PORTABLE_CREDS_", "AGENTKEYS_", "XDG_", "AWS_", "TENCENTCLOUD_", "COS_")
SECRET = b"sk-cos-cached-0007"


@pytest.fixture
def vendor_server(env: Env) -> Iterator[VendorServer]:
    settings = parse_settings(StoreTarget(url=env.vendor_url(), wallet=WALLET_A))
    vendor = build_vendor(
        settings, {"secret_id": env.vendor.secret_id, "secret_key": env.vendor.secret_key}
    )
    with VendorServer(vendor) as server:
        yield server


def _cli(env: Env, home: Path, backend: str, *args: str, input: bytes = b"",
         extra: dict[str, str] | None = None) -> bytes:
    token = home / "token.jwt"
    if not token.exists():
        token.write_text(env.idp.mint(WALLET_A, AUDIENCE, lifetime=3600))
        secret = home / "root.key"
        secret.write_bytes(os.urandom(32))
        secret.chmod(0o600)
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB)}
    run_env.update(HOME=str(home), **(extra or {}))
    run_env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [str(BIN), "--backend", f"{backend}&token_file={token}", "--wallet", WALLET_A,
         "--secret-file", str(home / "root.key"), "--home", str(home / "data"), *args],
        input=input, capture_output=True, env=run_env, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout


def _issued(env: Env) -> int:
    return len(env.double.issued_sessions)


@pytest.mark.parametrize("mode", ["role-per-tenant", "token-vendor"])
def test_later_processes_reuse_the_session(
    mode: str, env: Env, vendor_server: VendorServer, tmp_path: Path
) -> None:
    backend = f"{env.url}&mode={mode}"
    if mode == "token-vendor":
        backend += f"&vendor_url={vendor_server.url}"
    _cli(env, tmp_path, backend, "put", "svc", input=SECRET)
    first = _issued(env)
    for _ in range(2):
        assert _cli(env, tmp_path, backend, "get", "svc") == SECRET
    assert _issued(env) == first  # no STS call from the later processes
    cached = list((tmp_path / "data" / "cache" / "credentials").glob("*.json"))
    assert len(cached) == 1 and cached[0].stat().st_mode & 0o777 == 0o600
    _cli(env, tmp_path, backend, "get", "svc", "--no-credential-cache")
    assert _issued(env) == first + 1


def test_refused_session_is_replaced(env: Env, tmp_path: Path) -> None:
    """COS refuses a cached session (its token no longer matches): the next process
    exchanges again once, and the cache then holds the new session, not the refused one."""
    import json

    backend = f"{env.url}&mode=role-per-tenant"
    _cli(env, tmp_path, backend, "put", "svc", input=SECRET)
    [path] = (tmp_path / "data" / "cache" / "credentials").glob("*.json")
    entry = json.loads(path.read_bytes())
    refused_id = entry["access_key_id"]
    entry["session_token"] = "not-the-session-token"
    path.write_text(json.dumps(entry))
    first = _issued(env)
    assert _cli(env, tmp_path, backend, "get", "svc") == SECRET
    assert _issued(env) == first + 1
    fresh = json.loads(path.read_bytes())
    assert fresh["access_key_id"] != refused_id
    assert fresh["session_token"] != "not-the-session-token"
