"""The token vendor's JWKS comes through ``jwt.PyJWKClient``: cached, refetched on a rotated
key, and not refetched for every made-up ``kid`` (which would let anyone with a junk token make
the vendor hammer the issuer). Against a real loopback HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from portable_creds_tencent.federation import JwksSource

from portable_creds.errors import TransientError


def _jwk(kid: str) -> dict[str, Any]:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    jwk: dict[str, Any] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(public))
    return {**jwk, "kid": kid, "use": "sig", "alg": "ES256"}


class _Issuer:
    def __init__(self) -> None:
        self.keys = [_jwk("k1")]
        self.hits = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.hits += 1
                body = json.dumps({"keys": issuer.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def issuer() -> Iterator[_Issuer]:
    srv = _Issuer()
    yield srv
    srv.server.shutdown()
    srv.server.server_close()


def test_known_key_is_fetched_once_and_cached(issuer: _Issuer) -> None:
    source = JwksSource(url=issuer.url)
    for _ in range(3):
        assert len(source.key_for("k1", "ES256")) == 1
    assert issuer.hits == 1


def test_unknown_kids_do_not_refetch_every_time(issuer: _Issuer) -> None:
    source = JwksSource(url=issuer.url, cooldown=3600)
    for n in range(5):
        assert source.key_for(f"made-up-{n}", "ES256") == []
    assert issuer.hits == 1  # the initial fetch; refetches wait for the cooldown


def test_a_rotated_key_is_picked_up(issuer: _Issuer) -> None:
    source = JwksSource(url=issuer.url, cooldown=0)
    assert len(source.key_for("k1", "ES256")) == 1
    issuer.keys.append(_jwk("k2"))
    assert len(source.key_for("k2", "ES256")) == 1
    assert issuer.hits == 2


def test_unreachable_issuer_is_transient(issuer: _Issuer) -> None:
    url = issuer.url
    issuer.server.shutdown()
    issuer.server.server_close()
    with pytest.raises(TransientError):
        JwksSource(url=url).key_for("k1", "ES256")
