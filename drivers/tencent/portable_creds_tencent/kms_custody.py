"""Tencent KMS key sources named by a spec, for custody moves (``rewrap``/``copy --to-keys``).

Tencent isolation is one CMK per wallet (CAM documents no condition key on the encryption
context, docs/tencent.md "KMS key custody"), so a fleet operation cannot seal every wallet with
one ``KeyId`` the way an ``s3://`` fleet shares one AWS key. Two specs, resolved by
``CosObjectStore.key_source_for``:

* ``kms:<KeyId>`` - that CMK, signing as the store's identity (the tenant's session for one
  wallet, the administrator's keys in the administrative view).
* ``kms:per-wallet`` - administrative view only: each wallet's own CMK, found by the
  provisioner's alias ``<role_prefix><wallet>`` (``kms_keys``, through ``ListKeyDetail``), so
  ``rewrap --all-wallets --to-keys kms:per-wallet`` moves every tenant into its own key. A
  tenant's session is not granted ``ListKeyDetail``; it names its key (``kms:<KeyId>``).

In the administrative view a single KeyId is guarded (``AdminTencentKmsKeySource``): it refuses
to seal a wallet when the key is another wallet's per-tenant CMK (its alias is
``<role_prefix><other wallet>``), so ``rewrap --all-wallets`` on a ``kms_key=`` URL cannot put
every tenant under one tenant's key. A key outside the alias convention (an operator's shared
key) is not refused: isolation then rests on COS access alone (documented).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from portable_creds.custodian import DEFAULT_READ_CACHE
from portable_creds.datakey_cache import CacheLimits
from portable_creds.driver import CredentialsProvider
from portable_creds.errors import ConfigurationError, IntegrityError, InvalidName
from portable_creds.keys import CustodianKey, KeySource, WrappingKey
from portable_creds.names import validate_wallet

from .kms import KmsApi, TencentKmsKeySource
from .kms_keys import find_key, kms_alias
from .kms_settings import parse_kms_settings
from .settings import CosSettings

PER_WALLET = "per-wallet"
"""The reserved value of ``kms:per-wallet`` (a KeyId is a UUID, so it cannot clash)."""


class _JsonKms:
    """``KmsApi`` answering plain dicts, the shape ``kms_keys.find_key`` reads."""

    def __init__(self, api: KmsApi) -> None:
        self._api = api

    def call(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        reply = self._api.call(action, params)
        return dict(json.loads(reply.to_json_string()))


def spec_key_source(
    settings: CosSettings, provider: CredentialsProvider, value: str, *, admin: bool
) -> KeySource:
    """The key source ``kms:<value>`` names on a ``cos://`` store (``admin``: static keys).

    Endpoint and cache bounds follow the URL's ``kms_*`` parameters when it has ``kms_key=``,
    else the defaults (the API endpoint; read caching on, write caching off)."""
    configured = settings.kms
    read = configured.read_cache if configured is not None else DEFAULT_READ_CACHE
    write = configured.write_cache if configured is not None else None
    if value == PER_WALLET:
        if not admin:
            raise ConfigurationError(
                "kms:per-wallet finds each wallet's key with the administrator's keys (the "
                "administrative view, e.g. rewrap --all-wallets); a tenant names its own key: "
                "kms:<KeyId> (`portable-creds admin cos onboard --kms` prints it)"
            )
        return PerWalletKmsKeySource(
            KmsApi(settings, provider), settings.role_prefix, read_cache=read, write_cache=write
        )
    parsed = parse_kms_settings({"kms_key": value})
    if parsed is None:
        raise ConfigurationError("kms: needs a Tencent KMS KeyId or per-wallet after the colon")
    api = KmsApi(settings, provider)
    if admin:
        return AdminTencentKmsKeySource(
            parsed.key_id, api, settings.role_prefix, read_cache=read, write_cache=write
        )
    return TencentKmsKeySource(parsed.key_id, api, read_cache=read, write_cache=write)


class AdminTencentKmsKeySource(TencentKmsKeySource):
    """One CMK used with administrative keys: it seals only the wallet that owns it (by the
    provisioner's alias), or any wallet when the key is outside the alias convention."""

    def __init__(
        self,
        key_id: str,
        api: KmsApi,
        role_prefix: str,
        *,
        read_cache: CacheLimits | None = DEFAULT_READ_CACHE,
        write_cache: CacheLimits | None = None,
    ) -> None:
        super().__init__(key_id, api, read_cache=read_cache, write_cache=write_cache)
        self._role_prefix = role_prefix
        self._lock = threading.Lock()
        self._owner: tuple[str | None, str] | None = None

    def _owner_of_key(self) -> tuple[str | None, str]:
        """(the wallet whose per-tenant key this is, or None; the key's alias), by
        ``DescribeKey`` once."""
        with self._lock:
            if self._owner is not None:
                return self._owner
        meta = _JsonKms(self.api).call("DescribeKey", {"KeyId": self.key_id})
        alias = str((meta.get("KeyMetadata") or {}).get("Alias") or "")
        owner: str | None = None
        if alias.startswith(self._role_prefix):
            try:
                owner = validate_wallet(alias[len(self._role_prefix) :])
            except InvalidName:
                owner = None
        with self._lock:
            self._owner = (owner, alias)
        return owner, alias

    def current_kek(self, wallet: str, service: str) -> CustodianKey:
        owner, alias = self._owner_of_key()
        if owner is not None and owner != wallet.lower():
            raise ConfigurationError(
                f"KMS key {self.key_id} ({alias}) is wallet {owner}'s own key, not {wallet}'s: "
                "on Tencent each wallet has its own CMK, so a fleet operation seals with "
                "--to-keys kms:per-wallet (each wallet's key by its alias), not one kms_key"
            )
        return super().current_kek(wallet, service)


class PerWalletKmsKeySource(KeySource):
    """Each wallet's own CMK (alias ``<role_prefix><wallet>``), one ``TencentKmsKeySource`` per
    wallet sharing one KMS client (the administrator's keys)."""

    def __init__(
        self,
        api: KmsApi,
        role_prefix: str,
        *,
        read_cache: CacheLimits | None = DEFAULT_READ_CACHE,
        write_cache: CacheLimits | None = None,
    ) -> None:
        self.api = api
        self.role_prefix = role_prefix
        self._read_cache = read_cache
        self._write_cache = write_cache
        self._lock = threading.Lock()
        self._sources: dict[str, TencentKmsKeySource] = {}

    def __repr__(self) -> str:
        return f"PerWalletKmsKeySource(alias={self.role_prefix!r} + wallet)"

    def source_for(self, wallet: str) -> TencentKmsKeySource | None:
        """The wallet's key source, or ``None`` if no CMK has its alias (misses are not
        remembered: a wallet onboarded meanwhile is found on the next call)."""
        with self._lock:
            hit = self._sources.get(wallet)
        if hit is not None:
            return hit
        meta = find_key(_JsonKms(self.api), kms_alias(self.role_prefix, wallet))
        if meta is None:
            return None
        source = TencentKmsKeySource(
            str(meta["KeyId"]),
            self.api,
            read_cache=self._read_cache,
            write_cache=self._write_cache,
        )
        with self._lock:
            return self._sources.setdefault(wallet, source)

    def current_kek(self, wallet: str, service: str) -> WrappingKey:
        source = self.source_for(wallet)
        if source is None:
            raise ConfigurationError(
                f"wallet {wallet} has no KMS key (alias {kms_alias(self.role_prefix, wallet)}); "
                "onboard it with `portable-creds admin cos onboard --kms WALLET`"
            )
        return source.current_kek(wallet, service)

    def kek_for_id(self, wallet: str, service: str, kek_id: str) -> WrappingKey:
        if not kek_id.startswith(TencentKmsKeySource.scheme + "."):
            raise IntegrityError()  # not a Tencent KMS blob: no lookup
        source = self.source_for(wallet)
        if source is None:
            raise IntegrityError()
        return source.kek_for_id(wallet, service, kek_id)
