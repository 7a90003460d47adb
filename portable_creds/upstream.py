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
from .errors import IntegrityError, NotFound, PayloadTooLarge

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


@attrs.frozen
class Finding:
    """One object under a wallet's upstream prefixes, and why it is (not) migratable.

    ``problem`` is empty for a credential to migrate; otherwise it says precisely what is
    wrong, and ``ignorable`` marks portable-creds' own blobs (already converted in place).
    """

    wallet: str
    service: str
    key: str
    version: int | None
    etag: str = ""
    problem: str = ""
    ignorable: bool = False


#: Largest object read while surveying: an upstream blob holds one API key, never megabytes.
SURVEY_MAX_BYTES = 1 << 20


def _classify(wallet: str, key: str, prefix: str, expect: int, data: bytes) -> Finding:
    rest = key[len(prefix) :]
    service = rest[: -len(names.SUFFIX)] if rest.endswith(names.SUFFIX) else rest
    layout = f"0x{expect:02x}"
    if not rest.endswith(names.SUFFIX) or "/" in rest or not service:
        return Finding(
            wallet,
            rest,
            key,
            None,
            problem="not <service>.enc: not an upstream credential object, not migrated",
        )
    if data.startswith(b"PCE"):
        return Finding(
            wallet,
            service,
            key,
            None,
            problem="a portable-creds blob (converted "
            "earlier, or written by portable-creds): nothing to migrate",
            ignorable=True,
        )
    first = data[0] if data else None
    if first in (V1, V2) and len(data) < MIN_LEN:
        return Finding(
            wallet,
            service,
            key,
            first,
            problem=f"truncated: {len(data)} bytes, "
            f"an upstream blob has at least {MIN_LEN}; not migrated",
        )
    if first in (V1, V2) and first != expect:
        return Finding(
            wallet,
            service,
            key,
            first,
            problem=f"a 0x{first:02x} blob at a "
            f"{layout} path (moved between layouts?): its AAD cannot match; "
            "not migrated",
        )
    if first != expect:
        shown = "empty" if first is None else f"first byte 0x{first:02x}"
        return Finding(
            wallet, service, key, None, problem=f"not an upstream blob ({shown}); not migrated"
        )
    return Finding(wallet, service, key, expect)


def survey(objects: ObjectStore, wallet: str) -> list[Finding]:
    """Every object under the wallet's v2 and v1 credential prefixes, each classified.

    Nothing found there is dropped silently: the caller reports every finding. A service
    present in both layouts is read from v2 (as upstream's readers do); its v1 object is a
    finding of its own (``superseded``) so it is neither lost nor deleted unread.
    """
    wallet = names.validate_wallet(wallet)
    findings: list[Finding] = []
    migratable_v2: set[str] = set()
    for version, prefix in ((V2, v2_prefix(wallet)), (V1, v1_prefix(wallet))):
        for info in objects.list(prefix):
            try:
                stored = objects.get_capped(info.key, max_size=SURVEY_MAX_BYTES)
            except NotFound:
                continue  # deleted since the listing: not there to migrate
            except PayloadTooLarge:
                findings.append(
                    Finding(
                        wallet,
                        info.key[len(prefix) :],
                        info.key,
                        None,
                        problem=f"{info.size} bytes: too large for an "
                        "upstream credential; not migrated",
                    )
                )
                continue
            found = _classify(wallet, info.key, prefix, version, stored.data)
            found = attrs.evolve(found, etag=stored.etag)
            if not found.problem and version == V2:
                migratable_v2.add(found.service)
            elif not found.problem and found.service in migratable_v2:
                found = attrs.evolve(
                    found,
                    problem="superseded by the 0x02 object of the same "
                    "service (upstream reads that one); its value was not "
                    "migrated - compare and delete it at the source",
                )
            findings.append(found)
    return sorted(findings, key=lambda f: (f.service, f.key))


def discover(objects: ObjectStore, wallet: str) -> Iterator[UpstreamObject]:
    """Every migratable upstream credential of ``wallet`` (v2 wins over v1 for a service).

    ``survey`` also returns what is *not* migratable, with the reason.
    """
    for found in survey(objects, wallet):
        if not found.problem and found.version is not None:
            yield UpstreamObject(found.wallet, found.service, found.version, found.key, found.etag)


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
