"""Calls to Tencent Cloud API 3.0 (STS, CAM, the provisioner's KMS calls) through the SDK's
``CommonClient``.

Why not the generated clients: ``StsClient`` cannot send the unsigned ``AssumeRoleWithWebIdentity``,
and every client misses an ``Error`` envelope when the response's content type carries a charset.
So every response is checked here, and retries are explicit and bounded.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from portable_creds.errors import PortableCredsError, RemoteUnavailable, TransientError
from portable_creds.retry import RetryPolicy

from . import sdklog
from .errors import api_error
from .settings import CosSettings, StaticKeys

VERSIONS = {"sts": "2018-08-13", "cam": "2019-01-16", "kms": "2019-01-18"}

sdklog.install()

_read_log: set[tuple[str, str, str]] | None = None


class _Tracked(dict[str, Any]):
    """A response object that records which fields its reader looked at (tests only)."""

    def __init__(self, data: dict[str, Any], where: tuple[str, str], path: str) -> None:
        super().__init__(data)
        self._where = where
        self._path = path

    def _record(self, key: str, value: Any) -> Any:
        path = f"{self._path}{key}"
        if _read_log is not None:
            _read_log.add((*self._where, path))
        return _track(value, self._where, path + ".")

    def __getitem__(self, key: str) -> Any:
        return self._record(key, super().__getitem__(key))

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return self._record(key, super().get(key, default))


def _track(value: Any, where: tuple[str, str], path: str) -> Any:
    if isinstance(value, dict):
        return _Tracked(value, where, path)
    if isinstance(value, list):
        return [_track(v, where, path) for v in value]
    return value


@contextlib.contextmanager
def record_reads() -> Iterator[set[tuple[str, str, str]]]:
    """Collect ``(service, action, "Field.Sub")`` for every response field the driver and
    provisioner read meanwhile, so tests can check each against the SDK's models."""
    global _read_log
    _read_log = set()
    try:
        yield _read_log
    finally:
        _read_log = None


class TcApi:
    """One service (``sts`` or ``cam``) at one endpoint, signed with ``keys`` or unsigned.

    The SDK (``tencentcloud.common``) is imported and its client built on the first call: a
    CLI process whose session comes from the cross-process credential cache never calls STS,
    and should not pay for importing it (issue 13).
    """

    def __init__(
        self,
        service: str,
        region: str,
        keys: StaticKeys | None,
        *,
        endpoint: str | None = None,
        scheme: str = "https",
        timeout: int = 10,
        retries: int = 3,
        max_elapsed: float = 8.0,
    ) -> None:
        self.signed = keys is not None
        self.service = service
        self._version = VERSIONS[service]
        self._region = region
        self._keys = keys
        self._endpoint = endpoint
        self._scheme = scheme
        self._timeout = timeout
        self._sdk_client: Any = None
        self._retries = retries
        self._max_elapsed = max_elapsed

    @classmethod
    def for_settings(
        cls, service: str, settings: CosSettings, keys: StaticKeys | None = None
    ) -> TcApi:
        """A client of ``service`` with the URL's API endpoint, scheme, timeout and retry bounds
        (one place, so the provisioner, the vendor and the KMS custody code agree)."""
        return cls(
            service,
            settings.region,
            keys,
            endpoint=settings.api_endpoint,
            scheme=settings.api_scheme,
            timeout=settings.timeout,
            retries=settings.retries,
            max_elapsed=settings.max_elapsed,
        )

    @property
    def _client(self) -> Any:
        """The SDK's ``CommonClient``, built on first use."""
        if self._sdk_client is None:
            from tencentcloud.common import credential
            from tencentcloud.common.common_client import CommonClient
            from tencentcloud.common.profile.client_profile import ClientProfile
            from tencentcloud.common.profile.http_profile import HttpProfile

            profile = ClientProfile(
                httpProfile=HttpProfile(
                    protocol=self._scheme, endpoint=self._endpoint, reqTimeout=self._timeout
                ),
                # The region breaker swallows errors and returns None: keep it off explicitly.
                disable_region_breaker=True,
            )
            keys = self._keys
            cred = None
            if keys is not None:
                cred = credential.Credential(keys.secret_id, keys.secret_key, keys.token)
            self._sdk_client = CommonClient(
                self.service, self._version, cred, self._region, profile
            )
        return self._sdk_client

    def call(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        """The ``Response`` object of ``action``; typed errors after bounded retries."""
        options = None if self.signed else {"SkipSign": True}
        budget = RetryPolicy(self._retries, max_elapsed=self._max_elapsed).start()
        while True:
            try:
                return self._once(action, params, options)
            except TransientError as err:
                delay = budget.next_delay()
                if delay is None:
                    raise RemoteUnavailable(
                        f"Tencent {self.service} {action} kept failing after {budget.attempts} "
                        f"attempts: {err.message}; check the endpoint and retry later",
                        request_id=err.request_id,
                    ) from err
                time.sleep(delay)

    def _once(self, action: str, params: dict[str, Any], options: Any) -> dict[str, Any]:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
            TencentCloudSDKException,
        )

        client = self._client
        try:
            data = client.call_json(action, params, options=options)
        except TencentCloudSDKException as exc:
            raise api_error(
                self.service,
                action,
                exc.get_code() or "",
                exc.get_message() or "",
                exc.get_request_id(),
            ) from None
        except (ValueError, AttributeError) as exc:  # non-JSON body, broken response
            raise TransientError(
                f"Tencent {self.service} {action}: unreadable response ({exc})"
            ) from None
        response = data.get("Response") if isinstance(data, dict) else None
        if not isinstance(response, dict):
            raise TransientError(f"Tencent {self.service} {action}: response has no 'Response'")
        error = response.get("Error")
        if error is not None:
            code = str(error.get("Code") or "") if isinstance(error, dict) else ""
            message = str(error.get("Message") or "") if isinstance(error, dict) else ""
            raise api_error(self.service, action, code, message, response.get("RequestId"))
        if _read_log is not None:
            return _Tracked(response, (self.service, action), "")
        return response


def is_error(exc: BaseException, *codes: str) -> bool:
    return isinstance(exc, PortableCredsError) and getattr(exc, "code", None) in codes
