"""Reading upstream agentKeys credential objects (formats 0x01 and 0x02), for migration only.

Upstream's blobs are ``version (1) || nonce (12) || AES-256-GCM ciphertext || tag (16)`` with
the signer-derived KEK used directly as the AES key (reference §4-§5):

- v1 at ``bots/<lower(wallet)>/credentials/<service>.enc``,
  AAD ``"agentkeys.cred.aad.v1|" + lower(wallet) + "|" + service``;
- v2 at ``bots/<actor_omni_hex>/credentials/<service>.enc``,
  AAD ``"agentkeys.cred.aad.v2|" + actor_omni_hex + "|" + service``, where
  ``actor_omni_hex = hex(SHA256("agentkeys" || "evm" || lower(wallet)))``.

They have no key commitment and no KEK id, so nothing here ever writes them: they are opened,
and the plaintext is re-sealed in portable-creds' own envelope. Like upstream's reader, a
service present in both layouts is read from v2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import names
from .driver import ObjectStore
from .errors import IntegrityError, NotFound

V1 = 0x01
V2 = 0x02
NONCE_LEN = 12
TAG_LEN = 16
MIN_LEN = 1 + NONCE_LEN + TAG_LEN
"""29: upstream rejects anything shorter (an empty secret is exactly 29 bytes)."""

UPSTREAM_PREFIX = "bots"

#: ``kek(wallet, service) -> 32 bytes``: upstream's signer-derived KEK, e.g.
#: ``SignerKeySource(url).upstream_kek``.
UpstreamKek = Callable[[str, str], bytes]


def actor_omni_hex(wallet: str) -> str:
    """Upstream's actor omni account for an EVM wallet (64 lowercase hex)."""
    return hashlib.sha256(
        b"agentkeys" + b"evm" + names.validate_wallet(wallet).encode()
    ).hexdigest()


def v1_key(wallet: str, service: str) -> str:
    return f"{UPSTREAM_PREFIX}/{names.validate_wallet(wallet)}/credentials/{service}.enc"


def v2_key(wallet: str, service: str) -> str:
    return f"{UPSTREAM_PREFIX}/{actor_omni_hex(wallet)}/credentials/{service}.enc"


def v1_prefix(wallet: str) -> str:
    return f"{UPSTREAM_PREFIX}/{names.validate_wallet(wallet)}/credentials/"


def v2_prefix(wallet: str) -> str:
    return f"{UPSTREAM_PREFIX}/{actor_omni_hex(wallet)}/credentials/"


def aad(version: int, wallet: str, service: str) -> bytes:
    if version == V1:
        return f"agentkeys.cred.aad.v1|{names.validate_wallet(wallet)}|{service}".encode()
    if version == V2:
        return f"agentkeys.cred.aad.v2|{actor_omni_hex(wallet)}|{service}".encode()
    raise ValueError(f"unknown upstream format version {version}")


def blob_version(blob: bytes) -> int | None:
    """0x01 / 0x02 for something shaped like an upstream blob, else ``None``."""
    if len(blob) >= MIN_LEN and blob[0] in (V1, V2):
        return blob[0]
    return None


def open_blob(
    blob: bytes, *, kek: bytes, wallet: str, service: str, expect: int | None = None
) -> bytes:
    """Authenticate and decrypt one upstream blob. Any failure is ``IntegrityError``.

    ``expect`` pins the version the blob's location implies (v1 path -> 0x01, v2 path -> 0x02),
    so a blob copied between layouts fails like any other moved blob.
    """
    version = blob_version(blob)
    if version is None or (expect is not None and version != expect) or len(kek) != 32:
        raise IntegrityError()
    try:
        return AESGCM(kek).decrypt(
            blob[1 : 1 + NONCE_LEN], blob[1 + NONCE_LEN :], aad(version, wallet, service)
        )
    except InvalidTag:
        raise IntegrityError() from None


@attrs.frozen
class UpstreamObject:
    """One upstream credential found in an object store."""

    wallet: str
    service: str
    version: int
    key: str
    etag: str


def _services(objects: ObjectStore, prefix: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for info in objects.list(prefix):
        rest = info.key[len(prefix) :]
        if not rest.endswith(names.SUFFIX) or "/" in rest:
            continue
        found[rest[: -len(names.SUFFIX)]] = info.key
    return found


def discover(objects: ObjectStore, wallet: str) -> Iterator[UpstreamObject]:
    """Every upstream credential of ``wallet`` (v2 wins over v1 for the same service).

    Objects at the v1 path that are not upstream blobs (e.g. already converted to our envelope,
    which starts with ``PCE``) are skipped here; the caller sees them as destination state.
    """
    wallet = names.validate_wallet(wallet)
    v2 = _services(objects, v2_prefix(wallet))
    v1 = _services(objects, v1_prefix(wallet))
    for service in sorted(set(v1) | set(v2)):
        for version, table in ((V2, v2), (V1, v1)):
            key = table.get(service)
            if key is None:
                continue
            try:
                stored = objects.get(key)
            except NotFound:
                continue
            if blob_version(stored.data) == version:
                yield UpstreamObject(wallet, service, version, key, stored.etag)
                break


def read(objects: ObjectStore, obj: UpstreamObject, kek: UpstreamKek) -> bytes:
    """Fetch and open one upstream credential."""
    stored = objects.get(obj.key)
    return open_blob(
        stored.data,
        kek=kek(obj.wallet, obj.service),
        wallet=obj.wallet,
        service=obj.service,
        expect=obj.version,
    )
