"""Issue 12 item 1: tokens never follow a redirect to another origin, nor leave https.

Every client is run against a real loopback server answering 302 (and 307) to a second server
on another port; the second server records everything that reaches it, and must never see the
token. The legacy case runs the CLI as a subprocess, as the issue reproduced it.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import urllib.request
from http.client import HTTPMessage
from pathlib import Path

import pytest

from portable_creds.errors import ConfigurationError, PortableCredsError
from portable_creds.httpclient import (
    RedirectRefused,
    SafeRedirectHandler,
    build_opener,
    check_service_url,
    redact,
)
from portable_creds.legacy import LegacyClient
from portable_creds.signer import SignerKeySource
from portable_creds.tokens import BrokerTokenSource, broker_endpoint

from .redirects import redirect_pair

BIN = Path(sys.executable).parent / "portable-creds"
WALLET = "0x" + "a1" * 20
TOKEN = "bearer-token-that-must-stay-home"


def _cli(*args: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    full = {
        k: v
        for k, v in __import__("os").environ.items()
        if not k.startswith(("PORTABLE_CREDS_", "AGENTKEYS_", "XDG_", "AWS_"))
    }
    full.update(HOME=str(tmp_path), PORTABLE_CREDS_HOME=str(tmp_path / "state"), **env)
    return subprocess.run(
        [str(BIN), *args], env=full, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("code", [302, 307])
def test_cli_legacy_token_never_reaches_another_origin(tmp_path: Path, code: int) -> None:
    (tmp_path / "state").mkdir(mode=0o700)
    (tmp_path / "state" / "root.key").write_bytes(b"\x01" * 32)
    (tmp_path / "state" / "root.key").chmod(0o600)
    with redirect_pair(code) as (redirector, target):
        proc = _cli(
            "--backend",
            redirector.url,
            "--wallet",
            WALLET,
            "list",
            env={"PORTABLE_CREDS_LEGACY_TOKEN": TOKEN},
            tmp_path=tmp_path,
        )
    assert redirector.hits >= 1
    assert not target.saw(TOKEN), target.requests
    assert target.requests == []
    assert proc.returncode == ConfigurationError.exit_code, proc.stderr
    assert "another origin" in proc.stderr
    assert TOKEN not in proc.stderr


def test_same_origin_redirect_keeps_the_request() -> None:
    """Only cross-origin redirects are refused; a server may move its own paths."""
    handler = SafeRedirectHandler()
    req = urllib.request.Request(
        "http://127.0.0.1:1/a", headers={"Authorization": "Bearer x"}, method="GET"
    )
    # urllib resolves Location against the request URL before it calls the handler.
    follow = handler.redirect_request(
        req, io.BytesIO(), 302, "Found", HTTPMessage(), "http://127.0.0.1:1/b"
    )
    assert follow is not None and follow.full_url == "http://127.0.0.1:1/b"
    assert follow.get_header("Authorization") == "Bearer x"


def test_https_to_http_is_never_followed_even_without_credentials() -> None:
    handler = SafeRedirectHandler()
    req = urllib.request.Request("https://issuer.example/jwks.json")
    with pytest.raises(RedirectRefused, match="non-https"):
        handler.redirect_request(
            req, io.BytesIO(), 301, "Moved", HTTPMessage(), "http://issuer.example/jwks.json"
        )


def test_credential_free_get_may_follow_to_another_origin_without_sensitive_headers() -> None:
    with redirect_pair() as (redirector, target):
        opener = build_opener(redirector.url)
        with opener.open(redirector.url + "/jwks.json", timeout=10) as resp:
            assert json.loads(resp.read()) == {"keys": []}
    assert [p for _, p, _, _ in target.requests] == ["/jwks.json"]


def test_signer_bearer_token_never_reaches_another_origin() -> None:
    with redirect_pair() as (redirector, target):
        signer = SignerKeySource(redirector.url, token=TOKEN, cache=False)
        with pytest.raises(RedirectRefused, match="another origin"):
            signer.current_kek(WALLET, "openai")
    assert target.requests == []


def test_broker_session_jwt_never_reaches_another_origin() -> None:
    with redirect_pair() as (redirector, target), pytest.raises(RedirectRefused):
        BrokerTokenSource(redirector.url, TOKEN)()
    assert target.requests == []


def test_doctor_signer_probe_does_not_leak_the_token(tmp_path: Path) -> None:
    with redirect_pair() as (redirector, target):
        proc = _cli(
            "--wallet",
            WALLET,
            "doctor",
            "--json",
            env={"AGENTKEYS_SIGNER_URL": redirector.url, "AGENTKEYS_SIGNER_TOKEN": TOKEN},
            tmp_path=tmp_path,
        )
    assert target.requests == []
    signer = [c for c in json.loads(proc.stdout)["checks"] if c["name"] == "signer"]
    assert signer and signer[0]["status"] == "fail" and "another origin" in signer[0]["detail"]


# -- https required off loopback ------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda u: LegacyClient(u),
        lambda u: SignerKeySource(u),
        lambda u: broker_endpoint(u),
    ],
)
def test_plain_http_refused_off_loopback(make: object) -> None:
    assert callable(make)
    with pytest.raises(ConfigurationError, match="https"):
        make("http://creds.example:8090")
    make("https://creds.example:8090")
    make("http://127.0.0.1:8090")
    make("http://localhost:8090")
    make("http://[::1]:8090")


def test_cli_refuses_plain_http_legacy_url_off_loopback(tmp_path: Path) -> None:
    proc = _cli(
        "--backend",
        "http://legacy.invalid:8090",
        "--wallet",
        WALLET,
        "list",
        env={"PORTABLE_CREDS_LEGACY_TOKEN": TOKEN},
        tmp_path=tmp_path,
    )
    assert proc.returncode == ConfigurationError.exit_code
    assert "https" in proc.stderr and TOKEN not in proc.stderr


# -- user:password@ is refused everywhere, and never echoed ---------------------------------


PASSWORD = "hunter2-in-url"


@pytest.mark.parametrize(
    "url",
    [
        f"http://alice:{PASSWORD}@127.0.0.1:8090",
        f"local://alice:{PASSWORD}@/tmp/x",
        f"s3://alice:{PASSWORD}@bucket",
        f"cos://alice:{PASSWORD}@creds-1250000000?region=ap-guangzhou",
        f"s3://bucket?endpoint=http://alice:{PASSWORD}@127.0.0.1:9000",
    ],
)
def test_cli_rejects_userinfo_in_backend_url(tmp_path: Path, url: str) -> None:
    audit = tmp_path / "audit.jsonl"
    proc = _cli(
        "--backend",
        url,
        "--wallet",
        WALLET,
        "put",
        "openai",
        env={"PORTABLE_CREDS_AUDIT": f"file:{audit}"},
        tmp_path=tmp_path,
    )
    assert proc.returncode == ConfigurationError.exit_code, proc.stderr
    assert PASSWORD not in proc.stderr + proc.stdout
    assert "password" in proc.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(
    "make",
    [
        lambda u: LegacyClient(u),
        lambda u: SignerKeySource(u),
        lambda u: broker_endpoint(u),
        lambda u: check_service_url(u, what="x"),
    ],
)
def test_service_urls_reject_userinfo_without_echoing_it(make: object) -> None:
    assert callable(make)
    with pytest.raises(PortableCredsError) as exc:
        make(f"https://alice:{PASSWORD}@creds.example")
    assert PASSWORD not in str(exc.value)
    assert redact(f"https://alice:{PASSWORD}@h/p") == "https://***@h/p"
