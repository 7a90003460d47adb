"""A loopback agentKeys signer implementing the documented ``/dev/*`` protocol for real.

Used by the tests (``SignerKeySource`` talks real HTTP to it) and usable by hand::

    python -m portable_creds.testing.signer_server --port 8091 [--token T] [--unstable]

Signatures are genuine: the wallet key is derived from a 32-byte master secret with
HKDF-SHA256 exactly as upstream's signer does, the message is hashed EIP-191 style with
keccak256 and signed with secp256k1 ECDSA, RFC 6979 deterministic nonces (libsecp256k1 via
coincurve), low-s, encoded ``r || s || v`` with v in {0, 1}. ``unstable=True`` signs with a
fresh random nonce each time instead: still a valid signature by the same key, but a different
one on every call, like signers with anti-exfiltration nonces.

coincurve and pycryptodome (keccak) are development dependencies; they are imported only when
a signature is made, so importing this module stays light.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .loopback import LoopbackHTTPServer

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
WALLET_SALT = b"agentkeys-signer-v0"
WALLET_INFO = b"\x01" + b"agentkeys-evm-wallet"
MALFORMED_MODES = ("not-json", "no-signature", "short-signature", "not-hex")


def keccak256(data: bytes) -> bytes:
    from Crypto.Hash import keccak

    return bytes(keccak.new(digest_bits=256, data=data).digest())


def eip191_digest(message: bytes) -> bytes:
    """keccak256("\\x19Ethereum Signed Message:\\n" + decimal(len) + message)."""
    return keccak256(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message)


def wallet_private_key(master_secret: bytes, omni_account: bytes) -> bytes:
    """Upstream's wallet key: HKDF-SHA256(ikm=master, salt, info=0x01||label||omni[, counter])."""
    for counter in range(17):
        info = WALLET_INFO + omni_account + (bytes([counter]) if counter else b"")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=WALLET_SALT, info=info).derive(
            master_secret
        )
        if 0 < int.from_bytes(key, "big") < SECP256K1_N:
            return key
    raise RuntimeError("no valid secp256k1 scalar after 16 retries")  # probability ~2^-2000


def address_of(private_key: bytes) -> str:
    from coincurve import PrivateKey

    public = PrivateKey(private_key).public_key.format(compressed=False)
    return "0x" + keccak256(public[1:])[-20:].hex()


def sign_deterministic(private_key: bytes, message: bytes) -> bytes:
    """EIP-191 signature, RFC 6979 nonce, low-s, ``r || s || v`` with v in {0, 1}."""
    from coincurve import PrivateKey

    return bytes(PrivateKey(private_key).sign_recoverable(eip191_digest(message), hasher=None))


def sign_random_nonce(private_key: bytes, message: bytes) -> bytes:
    """A valid EIP-191 signature by the same key, with a fresh random nonce (so never repeats)."""
    from coincurve import PrivateKey, PublicKey

    digest = eip191_digest(message)
    z = int.from_bytes(digest, "big")
    d = int.from_bytes(private_key, "big")
    n = SECP256K1_N
    while True:
        k = secrets.randbelow(n - 1) + 1
        x, y = PublicKey.from_secret(k.to_bytes(32, "big")).point()
        r = x % n
        s = pow(k, -1, n) * (z + r * d) % n
        if r == 0 or s == 0 or x >= n:
            continue
        recid = y & 1
        if s > n // 2:
            s, recid = n - s, recid ^ 1
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([recid])
        recovered = PublicKey.from_signature_and_message(sig, digest, hasher=None)
        if recovered.format() != PrivateKey(private_key).public_key.format():
            raise AssertionError("random-nonce signature does not verify")  # pragma: no cover
        return sig


class SignerServer(LoopbackHTTPServer):
    """The signer on 127.0.0.1, an ephemeral port by default. Use as a context manager.

    Attributes may be changed while it runs, to simulate a signer whose state changes:
    ``token`` (require ``Authorization: Bearer <token>``), ``disabled`` (503),
    ``unstable`` (random nonces), ``fail_internal`` (500), ``malformed`` (one of
    ``MALFORMED_MODES``: a 200 reply that is not the documented JSON), ``master_secret``
    (another wallet key), ``force_error`` (``(status, code)``: answer every request with that
    documented error, e.g. ``(400, "invalid_message_hex")``, which a well-behaved client can
    otherwise never provoke). ``sign_requests`` counts POST /dev/sign-message calls.
    """

    def __init__(
        self,
        master_secret: bytes | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        disabled: bool = False,
        unstable: bool = False,
        fail_internal: bool = False,
        malformed: str | None = None,
        force_error: tuple[int, str] | None = None,
        key_version: int = 1,
    ) -> None:
        self.master_secret = master_secret if master_secret is not None else os.urandom(32)
        if len(self.master_secret) != 32:
            raise ValueError("the signer master secret is 32 bytes")
        if malformed is not None and malformed not in MALFORMED_MODES:
            raise ValueError(f"malformed must be one of {MALFORMED_MODES}")
        self.token = token
        self.disabled = disabled
        self.unstable = unstable
        self.fail_internal = fail_internal
        self.malformed = malformed
        self.force_error = force_error
        self.key_version = key_version
        self.sign_requests = 0
        self._count_lock = threading.Lock()
        super().__init__(_make_handler(self), host=host, port=port, name="signer-server")

    def __repr__(self) -> str:
        return f"SignerServer(url={self.url!r}, master_secret=<32 bytes>)"

    def private_key(self, omni_account_hex: str) -> bytes:
        return wallet_private_key(self.master_secret, bytes.fromhex(omni_account_hex))

    def address(self, omni_account_hex: str) -> str:
        return address_of(self.private_key(omni_account_hex))

    def _count_sign(self) -> None:
        with self._count_lock:
            self.sign_requests += 1


def _make_handler(server: SignerServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "portable-creds-test-signer/1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean; nothing secret is logged either way

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, doc: dict[str, Any]) -> None:
            self._send(status, json.dumps(doc).encode())

        def _error(self, status: int, code: str, message: str) -> None:
            self._json(status, {"error": code, "message": message})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(min(length, 1 << 20))
            if self.path not in ("/dev/sign-message", "/dev/derive-address"):
                self._error(404, "not_found", "no such route")
                return
            if self.path == "/dev/sign-message":
                server._count_sign()
            if server.disabled:
                self._error(503, "signer_disabled", "the signer is disabled")
                return
            if server.token is not None:
                expected = f"Bearer {server.token}".encode()
                given = (self.headers.get("Authorization") or "").encode()
                if not hmac.compare_digest(given, expected):
                    self._error(401, "unauthorized", "missing or invalid bearer token")
                    return
            if server.force_error is not None:
                status, code = server.force_error
                self._error(status, code, f"forced {code}")
                return
            if server.fail_internal:
                self._error(500, "internal", "internal error")
                return
            try:
                doc = json.loads(raw)
            except ValueError:
                doc = None
            omni = doc.get("omni_account") if isinstance(doc, dict) else None
            if not (isinstance(omni, str) and len(omni) == 64 and _is_hex(omni)):
                self._error(400, "invalid_omni_account", "omni_account must be 64 hex chars")
                return
            key = server.private_key(omni)
            if self.path == "/dev/derive-address":
                self._json(200, {"address": address_of(key), "key_version": server.key_version})
                return
            msg_hex = doc.get("message_hex") if isinstance(doc, dict) else None
            if not (isinstance(msg_hex, str) and len(msg_hex) % 2 == 0 and _is_hex(msg_hex)):
                self._error(400, "invalid_message_hex", "message_hex must be hex, no 0x")
                return
            message = bytes.fromhex(msg_hex)
            sign = sign_random_nonce if server.unstable else sign_deterministic
            signature = sign(key, message)
            if server.malformed == "not-json":
                self._send(200, b"<html>ok</html>", "text/html")
                return
            sig_hex = "0x" + signature.hex()
            if server.malformed == "no-signature":
                self._json(200, {"address": address_of(key)})
                return
            if server.malformed == "short-signature":
                sig_hex = sig_hex[:-2]
            elif server.malformed == "not-hex":
                sig_hex = "0x" + "zz" * 65
            self._json(
                200,
                {
                    "signature": sig_hex,
                    "address": address_of(key),
                    "key_version": server.key_version,
                },
            )

    return Handler


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m portable_creds.testing.signer_server",
        description="Run a local agentKeys-compatible test signer (loopback only).",
    )
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--token", help="require Authorization: Bearer TOKEN")
    parser.add_argument("--unstable", action="store_true", help="random nonce per signature")
    parser.add_argument(
        "--master-secret-file",
        help="file with 64 hex chars; default: a fresh random secret (keys change on restart)",
    )
    args = parser.parse_args(argv)
    master = None
    if args.master_secret_file:
        with open(args.master_secret_file, encoding="ascii") as fh:
            master = bytes.fromhex(fh.read().strip())
    server = SignerServer(master, port=args.port, token=args.token, unstable=args.unstable)
    print(f"test signer listening on {server.url} (Ctrl-C to stop)", file=sys.stderr)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
