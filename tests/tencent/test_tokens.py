"""Token sources named in the ``cos://`` URL (what the CLI uses): a token file re-read at every
exchange, the agentKeys broker over HTTP, and the errors when none is configured."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from portable_creds_tencent.driver import CosDriver
from portable_creds_tencent.tokens import BrokerTokenSource, FileTokenSource

from portable_creds.driver import StoreTarget
from portable_creds.errors import ConfigurationError, CredentialsError, InvalidToken

from .conftest import AUDIENCE, WALLET_A, Env, key

SESSION_JWT = "broker-session-for-tests"


def _open(url: str, **options: Any) -> Any:
    return CosDriver().open_object_store(StoreTarget(url=url, wallet=WALLET_A, options=options))


def test_token_file_is_read_again_at_every_exchange(env: Env, tmp_path: Path) -> None:
    d = env.double
    token_file = tmp_path / "token.jwt"
    token_file.write_text(env.idp.mint(WALLET_A, AUDIENCE, now=d.now(), lifetime=600) + "\n")
    store = _open(f"{env.url}&mode=role-per-tenant&duration=900&token_file={token_file}")
    store.put(key(WALLET_A), b"x")
    first = d.issued_sessions[-1]
    # Both the session and the first token are now expired on the double's clock; only a
    # token written to the file afterwards can be exchanged.
    d.advance(1000)
    token_file.write_text(env.idp.mint(WALLET_A, AUDIENCE, now=d.now(), lifetime=600))
    assert store.get(key(WALLET_A)).data == b"x"
    assert d.issued_sessions[-1] is not first
    assert d.issued_sessions[-1].via == "AssumeRoleWithWebIdentity"


def test_token_file_problems_are_typed(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="does not exist"):
        FileTokenSource(tmp_path / "absent")()
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(InvalidToken, match="empty"):
        FileTokenSource(empty)()


def test_federated_modes_without_a_token_say_how_to_provide_one(env: Env) -> None:
    for mode in ("role-per-tenant", "token-vendor"):
        url = env.vendor_url() if mode == "token-vendor" else f"{env.url}&mode={mode}"
        with pytest.raises(ConfigurationError) as info:
            _open(url, secret_id=env.vendor.secret_id, secret_key=env.vendor.secret_key)
        message = info.value.message
        assert "token_file=" in message and "broker_url=" in message and "token=" in message


def test_secrets_are_refused_in_the_url(env: Env) -> None:
    for param in ("token", "session_jwt", "secret_key", "session_token"):
        with pytest.raises(ConfigurationError, match=param):
            _open(f"{env.url}&mode=role-per-tenant&{param}=s3cr3t")


class _Broker(BaseHTTPRequestHandler):
    """The agentKeys broker's ``POST /v1/mint-oidc-jwt``: bearer session in, ``{"jwt"}`` out."""

    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        if self.path != "/v1/mint-oidc-jwt" or (
            self.headers.get("Authorization") != f"Bearer {SESSION_JWT}"
        ):
            status, answer = 401, {"error": "unauthorized"}
        else:
            self.server.ttls.append(body["ttl_seconds"])
            status, answer = 200, {"jwt": self.server.mint()}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def broker(env: Env) -> Iterator[Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Broker)
    server.ttls = []  # type: ignore[attr-defined]
    server.mint = lambda: env.idp.mint(WALLET_A, AUDIENCE, now=env.double.now())  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_broker_mints_the_token_for_each_exchange(env: Env, broker: Any, tmp_path: Path) -> None:
    session_file = tmp_path / "session.jwt"
    session_file.write_text(SESSION_JWT)
    url = (
        f"{env.url}&mode=role-per-tenant&duration=900&broker_ttl=120"
        f"&broker_url=http://127.0.0.1:{broker.server_address[1]}&session_jwt_file={session_file}"
    )
    store = _open(url)
    store.put(key(WALLET_A), b"via broker")
    env.double.advance(1000)  # session expired: the next request needs a fresh exchange
    assert store.get(key(WALLET_A)).data == b"via broker"
    assert broker.ttls == [120, 120]


def test_broker_refusal_and_missing_session(env: Env, broker: Any) -> None:
    url = f"http://127.0.0.1:{broker.server_address[1]}"
    with pytest.raises(CredentialsError, match="log in again"):
        BrokerTokenSource(url, "not-the-session")()
    with pytest.raises(ConfigurationError, match="session_jwt"):
        _open(f"{env.url}&mode=role-per-tenant&broker_url={url}")
    with pytest.raises(ConfigurationError, match="https"):
        _open(f"{env.url}&mode=role-per-tenant&broker_url=http://broker.example&session_jwt_file=x")
