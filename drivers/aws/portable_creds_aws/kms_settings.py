"""The ``kms_*`` parameters of an ``s3://`` URL: which KMS key holds custody, and caching.

``kms_key=<key ARN>`` makes ``open_store`` seal with ``AwsKmsKeySource`` (envelope suite
0x0002) instead of a root secret. Read caching is on by default with hard bounds
(``kms_cache_age`` seconds, ``kms_cache_uses``, ``kms_cache_bytes``; ``kms_cache_age=0``
turns it off); write caching (one data key for several puts to the same path) only with
``kms_write_cache=1``. See docs/aws.md ("KMS key custody") for the trade-off.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs

from portable_creds.datakey_cache import KMS_PARAMS, CacheLimits, cache_limits_from_params
from portable_creds.errors import ConfigurationError

# Key ARN, key id (UUID / mrk-), or alias name/ARN: KMS's KeyIdType is 1..2048 characters.
_KEY_RE = re.compile(r"[A-Za-z0-9:/_+=,.@-]{1,2048}")


@attrs.frozen
class KmsSettings:
    key_id: str
    endpoint: str | None
    read_cache: CacheLimits | None
    write_cache: CacheLimits | None


def parse_kms_settings(params: Mapping[str, str], endpoint: str | None) -> KmsSettings | None:
    key = params.get("kms_key") or None
    others = sorted(k for k in KMS_PARAMS - {"kms_key"} if params.get(k))
    if key is None:
        if others:
            raise ConfigurationError(f"s3:// parameter(s) {', '.join(others)} need kms_key=...")
        return None
    if not _KEY_RE.fullmatch(key):
        raise ConfigurationError(f"kms_key={key!r} is not a KMS key ARN, key id or alias")
    read_cache, write_cache = cache_limits_from_params(params, "s3")
    return KmsSettings(
        key_id=key,
        endpoint=endpoint,
        read_cache=read_cache,
        write_cache=write_cache,
    )
