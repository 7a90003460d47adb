"""A test OIDC identity provider: an RSA key, its JWKS, and tokens minted on demand.

Not a server: CAM stores the JWKS given to ``CreateOIDCConfig`` (``IdentityKey``), and the
token vendor is handed the JWKS directly or fetches it from the double's ``/.oidc/`` path.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


class TestIdentityProvider:
    """Issues RS256 JWTs for ``issuer``; ``kid`` identifies the key in the JWKS."""

    __test__ = False  # not a pytest class

    def __init__(self, issuer: str = "https://oidc.portable-creds.test", kid: str | None = None):
        self.issuer = issuer
        self.kid = kid or uuid.uuid4().hex[:16]
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        jwk.update({"kid": self.kid, "alg": "RS256", "use": "sig"})
        return {"keys": [jwk]}

    def identity_key(self) -> str:
        """The JWKS as CAM's ``CreateOIDCConfig`` wants it: base64 of the JSON."""
        return base64.b64encode(json.dumps(self.jwks()).encode()).decode()

    def mint(
        self,
        sub: str,
        audience: str,
        *,
        lifetime: int = 600,
        issuer: str | None = None,
        now: float | None = None,
        not_before: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        t = time.time() if now is None else now
        claims: dict[str, Any] = {
            "iss": issuer or self.issuer,
            "sub": sub,
            "aud": audience,
            "iat": int(t),
            "exp": int(t + lifetime),
        }
        if not_before is not None:
            claims["nbf"] = int(not_before)
        claims.update(extra or {})
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})
