"""A local OIDC issuer (and agentKeys-style token broker) for web-identity tests.

Serves discovery (``/.well-known/openid-configuration``) and a JWKS whose key carries ``x5c``:
Ceph RGW verifies the token with the public key of that certificate and ignores ``n``/``e``/``x``/
``y``. It also answers ``POST /v1/mint-oidc-jwt`` like the agentKeys broker (bearer session
token in, ``{"jwt", "wallet", "expiration"}`` out), so the broker token source is tested against
a real HTTP endpoint. Listens on 127.0.0.1 only, port picked by the kernel.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any

try:
    import jwt
except ImportError as exc:  # an optional dependency: say which extra brings it
    raise ImportError(
        "portable_creds_aws.testing.oidc needs PyJWT: pip install 'portable-creds-aws[testing]'"
    ) from exc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from portable_creds.oidc_claims import claim_problems, payload
from portable_creds.testing.loopback import LoopbackHTTPServer

DEFAULT_AUDIENCE = "sts.amazonaws.com"
TAG_KEY = "agentkeys_user_wallet"
TAGS_CLAIM = "https://aws.amazon.com/tags"


def _b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _self_signed(key: ec.EllipticCurvePrivateKey, common_name: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )


class SigningKey:
    """An ES256 key with a self-signed certificate, published as a JWK with ``x5c``."""

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.kid = uuid.uuid4().hex[:16]
        self.cert_der = _self_signed(self.private_key, "portable-creds-test-oidc").public_bytes(
            serialization.Encoding.DER
        )

    @property
    def thumbprint(self) -> str:
        """SHA-1 of the x5c certificate: what IAM's ``ThumbprintList`` holds."""
        return hashlib.sha1(self.cert_der).hexdigest()

    def jwk(self) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "use": "sig",
            "alg": "ES256",
            "kid": self.kid,
            "x": _b64u(numbers.x.to_bytes(32, "big")),
            "y": _b64u(numbers.y.to_bytes(32, "big")),
            "x5c": [base64.b64encode(self.cert_der).decode()],
        }


class OidcIssuer(LoopbackHTTPServer):
    """Start with ``start()`` or as a context manager; ``token(wallet)`` mints a JWT."""

    def __init__(self, *, audience: str = DEFAULT_AUDIENCE) -> None:
        self.audience = audience
        self.key = SigningKey()
        self._sessions: dict[str, str] = {}
        self._lock = threading.Lock()
        self.minted = 0
        """How many tokens the broker endpoint handed out."""
        super().__init__(_handler_for(self), name="oidc-issuer")
        self.iss = self.url
        """The issuer URL, exactly as it appears in tokens and in the IAM provider."""

    @property
    def host_port(self) -> str:
        """How IAM names this provider in ARNs and condition keys (scheme stripped)."""
        return self.iss.split("://", 1)[1]

    @property
    def thumbprint(self) -> str:
        return self.key.thumbprint

    # ----------------------------------------------------------------- tokens
    def token(
        self,
        wallet: str,
        *,
        ttl: int = 300,
        audience: str | None = None,
        issuer: str | None = None,
        key: SigningKey | None = None,
        tags: bool = True,
        not_before: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """A token shaped like the agentKeys broker's (upstream §6). Knobs make bad ones."""
        now = int(time.time())
        wallet_lc = wallet.lower()
        claims: dict[str, Any] = {
            "iss": issuer or self.iss,
            "sub": f"agentkeys:agent:{wallet_lc}",
            "aud": audience or self.audience,
            "iat": now,
            "nbf": now - 5 if not_before is None else not_before,
            "exp": now + ttl,
            TAG_KEY: wallet_lc,
        }
        if tags:
            claims[TAGS_CLAIM] = {
                "principal_tags": {TAG_KEY: [wallet_lc]},
                "transitive_tag_keys": [TAG_KEY],
            }
        if extra:
            claims.update(extra)
        signer = key or self.key
        return jwt.encode(
            claims, signer.private_key, algorithm="ES256", headers={"kid": signer.kid}
        )

    def open_session(self, wallet: str) -> str:
        """A broker session bearer for ``wallet`` (what ``agentkeys login`` would hold)."""
        session = secrets.token_urlsafe(24)
        with self._lock:
            self._sessions[session] = wallet.lower()
        return session

    def close_session(self, session: str) -> None:
        with self._lock:
            self._sessions.pop(session, None)

    def _mint(self, bearer: str, ttl: int) -> dict[str, Any] | None:
        with self._lock:
            wallet = self._sessions.get(bearer)
            if wallet is None:
                return None
            self.minted += 1
        token = self.token(wallet, ttl=ttl)
        # The broker never hands out a token RGW would over-trust (no exp, several wallets).
        problems = claim_problems(payload(token) or {})
        if problems:
            raise ValueError("refusing to mint: " + "; ".join(problems))
        expiration = dt.datetime.fromtimestamp(time.time() + ttl, dt.UTC)
        return {"jwt": token, "wallet": wallet, "expiration": expiration.isoformat()}


def _handler_for(issuer: OidcIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Silence the per-request log."""

        def _send(self, status: int, body: Mapping[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            if path.endswith("/.well-known/openid-configuration"):
                self._send(
                    200,
                    {
                        "issuer": issuer.iss,
                        "jwks_uri": issuer.iss + "/jwks",
                        "id_token_signing_alg_values_supported": ["ES256"],
                        "response_types_supported": ["id_token"],
                        "subject_types_supported": ["public"],
                    },
                )
            elif path.endswith("/jwks"):
                self._send(200, {"keys": [issuer.key.jwk()]})
            else:
                self._send(404, {"error": "NOT_FOUND", "message": "no such path"})

        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] != "/v1/mint-oidc-jwt":
                self._send(404, {"error": "NOT_FOUND", "message": "no such path"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else {}
                ttl = int(body.get("ttl_seconds", 300))
            except (ValueError, TypeError, AttributeError):
                self._send(400, {"error": "BAD_REQUEST", "message": "body must be JSON"})
                return
            if not 60 <= ttl <= 3600:
                self._send(400, {"error": "BAD_REQUEST", "message": "ttl_seconds 60..3600"})
                return
            auth = self.headers.get("Authorization", "")
            bearer = auth[7:] if auth.startswith("Bearer ") else ""
            minted = issuer._mint(bearer, ttl) if bearer else None
            if minted is None:
                self._send(401, {"error": "UNAUTHORIZED", "message": "unknown session"})
                return
            self._send(200, minted)

    return Handler
