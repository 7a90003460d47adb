"""Where a wallet's per-tenant CMK is found: by its alias, through KMS ``ListKeyDetail``.

Tencent KMS takes a ``KeyId`` (never an alias) in GenerateDataKey, and CAM grants a key by its
resource (which names the KeyId and the creator's UIN), so whoever renders a grant - the
provisioner (the tenant role's policy) and the token vendor (each session's inline policy) -
must turn a wallet into its key's metadata. The provisioner names each key
``<role_prefix><wallet>`` at creation; this module finds it again with the caller's own API key
(the account's for the provisioner, the vendor's - which needs ``name/kms:ListKeyDetail`` - for
the token vendor).
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any, Protocol

from portable_creds.errors import ConfigurationError
from portable_creds.names import validate_wallet

from .policies import kms_key_resource
from .tcapi import TcApi

_KMS_ALIAS = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,59}")
"""CreateKey ``Alias`` (kms models.py): 1-60 letters, digits, ``-`` or ``_``, starting with a
letter or digit; the ``kms-`` prefix is reserved for cloud products."""


def kms_alias(role_prefix: str, wallet: str) -> str:
    """The wallet's CMK alias: its tenant role name, if CreateKey's alias rule accepts it."""
    alias = f"{role_prefix}{validate_wallet(wallet)}"
    if not _KMS_ALIAS.fullmatch(alias) or alias.startswith("kms-"):
        raise ConfigurationError(
            f"KMS alias {alias!r} (role_prefix + wallet) is not a valid Tencent KMS alias "
            "(1-60 letters, digits, '-' or '_', not starting with 'kms-'); shorten role_prefix"
        )
    return alias


class KmsLister(Protocol):
    """What ``find_key`` needs: a KMS call answering a dict (``TcApi``, or the KMS client of a
    custody move, ``kms_custody``)."""

    def call(self, action: str, params: dict[str, Any]) -> dict[str, Any]: ...


def find_key(kms: KmsLister, alias: str) -> dict[str, Any] | None:
    """The ``KeyMetadata`` whose alias is exactly ``alias`` (SearchKeyAlias matches parts)."""
    offset = 0
    while True:
        resp = kms.call("ListKeyDetail", {"SearchKeyAlias": alias, "Offset": offset, "Limit": 100})
        items = resp.get("KeyMetadatas") or []
        for meta in items:
            if meta.get("Alias") == alias:
                return dict(meta)
        offset += len(items)
        if not items or offset >= int(resp.get("TotalCount") or 0):
            return None


class TenantKeyDirectory:
    """wallet -> the CAM resource of its CMK, remembered for ``ttl`` seconds (a disabled key
    is refused by KMS itself, so a stale entry never grants more than KMS allows)."""

    def __init__(
        self,
        kms: TcApi,
        *,
        region: str,
        owner_uin: str,
        role_prefix: str,
        ttl: float = 300.0,
        clock: Any = time.monotonic,
    ) -> None:
        self._kms = kms
        self._region = region
        self._owner = owner_uin
        self._role_prefix = role_prefix
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, str]] = {}

    def resource(self, wallet: str) -> str:
        now = self._clock()
        with self._lock:
            hit = self._cache.get(wallet)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        meta = find_key(self._kms, kms_alias(self._role_prefix, wallet))
        if meta is None:
            raise ConfigurationError(
                f"wallet {wallet} has no KMS key; onboard it with "
                "`portable-creds admin cos onboard --kms WALLET`"
            )
        res = kms_key_resource(
            self._region, self._owner, str(meta["CreatorUin"]), str(meta["KeyId"])
        )
        with self._lock:
            self._cache[wallet] = (now, res)
        return res
