"""Keep the SDKs' debug logging from leaking credentials.

At DEBUG, cos-python-sdk-v5 logs every request's headers (``Authorization``,
``x-cos-security-token``) and its signing key; tencentcloud-sdk-python-common logs request
bodies (the OIDC token) and response bodies (``TmpSecretKey``). An application that turns on
DEBUG globally would write all of that to its logs. This filter drops those loggers' DEBUG
records at the source; their INFO and above (no secrets) pass unchanged.
"""

from __future__ import annotations

import logging

SDK_LOGGERS = ("qcloud_cos.cos_client", "qcloud_cos.cos_auth", "tencentcloud_sdk_common")


class _DropDebug(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


_FILTER = _DropDebug()


def install() -> None:
    """Idempotent: attach the filter to each SDK logger once."""
    for name in SDK_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
