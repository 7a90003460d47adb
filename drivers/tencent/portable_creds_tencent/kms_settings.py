"""The ``kms_*`` parameters of a ``cos://`` URL: which Tencent KMS key holds custody, and caching.

``kms_key=<KeyId>`` makes ``open_store`` seal with ``TencentKmsKeySource`` (envelope suite
0x0002). Tencent documents ``KeyId`` of ``GenerateDataKey``/``Encrypt`` as the CMK's "globally
unique ID" (``CMK全局唯一标识符``, tencentcloud kms/v20190118 models.py) and never an alias, so
the URL names the KeyId itself: the per-tenant key the provisioner created for this wallet
(``admin cos onboard`` prints it). Read caching is on by default with hard bounds
(``kms_cache_age`` seconds, ``kms_cache_uses``, ``kms_cache_bytes``; ``kms_cache_age=0`` turns
it off); write caching only with ``kms_write_cache=1`` (the same knobs as ``s3://``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs

from portable_creds.datakey_cache import KMS_PARAMS, CacheLimits, cache_limits_from_params
from portable_creds.errors import ConfigurationError

# A KMS KeyId is a UUID (e.g. 23e80852-1e38-11e9-b129-5cb9019b4b01); allow a little more than
# the UUID shape, never an alias path or ARN (not documented as accepted).
_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_ENDPOINT_RE = re.compile(r"[A-Za-z0-9.-]+(:\d{1,5})?|\[[0-9A-Fa-f:]+\](:\d{1,5})?")


@attrs.frozen
class TencentKmsSettings:
    key_id: str
    endpoint: str | None
    """``host[:port]`` of the KMS API (default: the URL's sts_endpoint/ip:port, else
    ``kms.tencentcloudapi.com``)."""
    read_cache: CacheLimits | None
    write_cache: CacheLimits | None


def parse_kms_settings(params: Mapping[str, str]) -> TencentKmsSettings | None:
    key = params.get("kms_key") or None
    others = sorted(k for k in KMS_PARAMS - {"kms_key"} if params.get(k))
    if key is None:
        if others:
            raise ConfigurationError(f"cos:// parameter(s) {', '.join(others)} need kms_key=...")
        return None
    if not _KEY_RE.fullmatch(key):
        raise ConfigurationError(
            f"kms_key={key!r} is not a Tencent KMS KeyId (the CMK's unique id, e.g. "
            "23e80852-1e38-11e9-b129-5cb9019b4b01; aliases are not accepted)"
        )
    endpoint = params.get("kms_endpoint") or None
    if endpoint is not None and not _ENDPOINT_RE.fullmatch(endpoint):
        raise ConfigurationError("cos:// kms_endpoint must be host[:port]")
    read_cache, write_cache = cache_limits_from_params(params, "cos")
    return TencentKmsSettings(
        key_id=key,
        endpoint=endpoint,
        read_cache=read_cache,
        write_cache=write_cache,
    )
