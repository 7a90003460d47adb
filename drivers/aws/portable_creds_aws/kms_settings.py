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

from portable_creds.datakey_cache import MAX_AGE_LIMIT, CacheLimits
from portable_creds.errors import ConfigurationError
from portable_creds.params import bool_param, int_param

KMS_PARAMS = frozenset(
    {
        "kms_key",
        "kms_endpoint",
        "kms_cache_age",
        "kms_cache_uses",
        "kms_cache_bytes",
        "kms_write_cache",
    }
)
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
    age = int_param(params, "kms_cache_age", 60, 0, int(MAX_AGE_LIMIT), scheme="s3")
    limits = (
        CacheLimits(
            max_age=float(age),
            max_uses=int_param(params, "kms_cache_uses", 1000, 1, 1 << 32, scheme="s3"),
            max_bytes=int_param(params, "kms_cache_bytes", 64 << 20, 1, 1 << 40, scheme="s3"),
        )
        if age
        else None
    )
    write = bool_param(params, "kms_write_cache", False, scheme="s3")
    if write and limits is None:
        raise ConfigurationError("kms_write_cache=1 needs kms_cache_age > 0")
    return KmsSettings(
        key_id=key,
        endpoint=endpoint,
        read_cache=limits,
        write_cache=limits if write else None,
    )
