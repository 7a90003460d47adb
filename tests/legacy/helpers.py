"""Builders the tests use to make upstream agentKeys blobs from the documented format alone.

Deliberately independent of portable_creds.upstream and portable_creds.signer: the KEK comes
from a raw POST /dev/sign-message to the signer and the reference's formula, the blob from
AES-256-GCM and the documented layout, so a bug in the code under test cannot cancel out here.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.request

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def omni(wallet: str) -> str:
    return hashlib.sha256(b"agentkeys" + b"evm" + wallet.lower().encode()).hexdigest()


def signer_kek(
    signer_url: str, wallet: str, service: str, omni_account: str | None = None
) -> bytes:
    msg = f"agentkeys.kek.v1:{wallet.lower()}:{service}".encode()
    body = json.dumps(
        {"omni_account": omni_account or omni(wallet), "message_hex": msg.hex()}
    ).encode()
    req = urllib.request.Request(
        signer_url + "/dev/sign-message",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req) as resp:
        sig = bytes.fromhex(json.loads(resp.read())["signature"][2:])
    assert len(sig) == 65
    return hashlib.sha256(b"agentkeys.kek-derive.v1" + sig).digest()


def upstream_v1(kek: bytes, wallet: str, service: str, secret: bytes) -> tuple[str, bytes]:
    nonce = os.urandom(12)
    aad = f"agentkeys.cred.aad.v1|{wallet.lower()}|{service}".encode()
    blob = b"\x01" + nonce + AESGCM(kek).encrypt(nonce, secret, aad)
    return f"bots/{wallet.lower()}/credentials/{service}.enc", blob


def upstream_v2(kek: bytes, wallet: str, service: str, secret: bytes) -> tuple[str, bytes]:
    nonce = os.urandom(12)
    actor = omni(wallet)
    aad = f"agentkeys.cred.aad.v2|{actor}|{service}".encode()
    blob = b"\x02" + nonce + AESGCM(kek).encrypt(nonce, secret, aad)
    return f"bots/{actor}/credentials/{service}.enc", blob


def upstream_worker(kek: bytes, wallet: str, service: str, secret: bytes) -> tuple[str, bytes]:
    """As agentkeys-worker-creds writes: a 0x02 blob under its static KEK, the service
    lowercased in the key but spelled as given in the AAD."""
    nonce = os.urandom(12)
    actor = omni(wallet)
    aad = f"agentkeys.cred.aad.v2|{actor}|{service}".encode()
    blob = b"\x02" + nonce + AESGCM(kek).encrypt(nonce, secret, aad)
    return f"bots/{actor}/credentials/{service.lower()}.enc", blob
