"""The provisioner's SDK call wrappers: errors mapped to portable-creds errors, absence as None.

A module of its own so the provisioner and the layouts it delegates to (``sharded``) share them
without importing each other.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from ..errormap import SDK_ERRORS, error_code, http_status, map_botocore_error, map_client_error

T = TypeVar("T")
_ABSENT = frozenset(
    {
        "NoSuchEntity",
        "NoSuchBucketPolicy",
        "NoSuchPublicAccessBlockConfiguration",
        "NoSuchLifecycleConfiguration",
        "OwnershipControlsNotFoundError",
        "NoSuchKey",
        "NotFoundException",  # KMS (GetKeyPolicy on a key that does not exist)
        "404",
    }
)


def _call(what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except ClientError as exc:
        raise map_client_error(exc, what=what) from None
    except SDK_ERRORS as exc:
        raise map_botocore_error(exc, what=what) from None


def _maybe(what: str, fn: Callable[[], T]) -> T | None:
    """``None`` when the thing does not exist (IAM/S3 use several codes for that)."""
    try:
        return fn()
    except ClientError as exc:
        if error_code(exc) in _ABSENT or http_status(exc) == 404:
            return None
        raise map_client_error(exc, what=what) from None
    except SDK_ERRORS as exc:
        raise map_botocore_error(exc, what=what) from None


def _doc(raw: Any) -> Any:
    """IAM returns policy documents URL-encoded (AWS) or as plain JSON text (RGW)."""
    if isinstance(raw, dict):
        return raw
    text = str(raw)
    try:
        return json.loads(text)
    except ValueError:
        return json.loads(urllib.parse.unquote(text))
