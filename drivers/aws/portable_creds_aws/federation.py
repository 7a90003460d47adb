"""OIDC web identity -> STS temporary credentials, cached and refreshed by botocore itself.

botocore's ``DeferredRefreshableCredentials`` already does the hard part: a lock so exactly one
thread refreshes while the others keep using still-valid credentials (advisory window) or wait
for the new ones (mandatory window). We only supply the refresh function (one
``AssumeRoleWithWebIdentity`` with an unsigned client) and scale the windows to the session
length, because botocore's defaults (15/10 minutes) would refresh a 15-minute session on every
call and a 5-second one always.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.credentials import DeferredRefreshableCredentials
from botocore.exceptions import ClientError

from portable_creds.credcache import CredentialCache, cache_key
from portable_creds.driver import CredentialsProvider, TemporaryCredentials, TokenSource
from portable_creds.errors import InvalidToken

from .errormap import SDK_ERRORS, map_botocore_error, map_sts_error

_SESSION_CHARS = re.compile(r"[^A-Za-z0-9_-]")
MAX_SESSION_NAME = 64


def session_name(wallet: str | None, now: float | None = None) -> str:
    """``agentkeys-<wallet>-<secs>-<micros>`` as upstream, shortened to 64 characters.

    The wallet part is filtered to ``[A-Za-z0-9_-]`` and trimmed (from the end) so the whole
    name fits STS's 64-character limit; the timestamp keeps names unique per exchange, which
    makes each session traceable in the service's logs.
    """
    t = time.time() if now is None else now
    secs, micros = int(t), int((t - int(t)) * 1_000_000)
    suffix = f"-{secs}-{micros}"
    ident = _SESSION_CHARS.sub("", (wallet or "admin").lower())[:40]
    room = MAX_SESSION_NAME - len("agentkeys-") - len(suffix)
    return f"agentkeys-{ident[:room]}{suffix}"


def refresh_windows(duration: int) -> tuple[float, float]:
    """(advisory, mandatory) seconds before expiry, scaled to the session length.

    Capped at botocore's defaults for long sessions; 40 % / 20 % of short ones, so a 5-second
    RGW session is used for 3 seconds and a 900-second AWS session for 9 minutes.
    """
    return min(15 * 60, duration * 0.4), min(10 * 60, duration * 0.2)


def _utc_now() -> dt.datetime:
    """botocore's default clock (``_local_now``) builds a ``dateutil`` ``tzlocal()`` at every
    call, and it is asked twice per request (is a refresh due?): ~0.1 ms of CPU per S3 request
    (issue 13, bench_s3). Expiry times are timezone-aware, so UTC compares the same."""
    return dt.datetime.now(dt.UTC)


class _WebIdentityCredentials(DeferredRefreshableCredentials):  # type: ignore[misc]
    """botocore's deferred refreshable credentials plus a 'refresh now' switch.

    ``force_refresh`` only flags; the refresh itself still runs under botocore's lock, so many
    threads that all hit an expired-credentials error cause one STS call, not many.
    """

    def __init__(
        self,
        refresh_using: Callable[[], dict[str, Any]],
        *,
        advisory: float,
        mandatory: float,
        time_fetcher: Callable[[], dt.datetime] | None,
    ) -> None:
        super().__init__(
            refresh_using, "assume-role-with-web-identity", time_fetcher=time_fetcher or _utc_now
        )
        self._advisory_refresh_timeout = advisory
        self._mandatory_refresh_timeout = mandatory
        self._forced = False

    def refresh_needed(self, refresh_in: float | None = None) -> bool:
        if self._forced:
            return True
        return bool(super().refresh_needed(refresh_in))

    def force_refresh(self) -> None:
        self._forced = True

    def _set_from_data(self, data: dict[str, Any]) -> None:
        self._forced = False
        super()._set_from_data(data)


class WebIdentityCredentialsProvider(CredentialsProvider):
    """Exchanges the tenant's OIDC token for temporary credentials of the data role."""

    def __init__(
        self,
        *,
        sts_client: Any = None,
        sts_factory: Callable[[], Any] | None = None,
        role_arn: str,
        wallet: str | None,
        token_source: TokenSource,
        duration: int,
        windows: tuple[float, float] | None = None,
        time_fetcher: Callable[[], dt.datetime] | None = None,
        session_name_override: str | None = None,
        policy: str | None = None,
        cache: CredentialCache | None = None,
        cache_scope: tuple[str, ...] = (),
    ) -> None:
        if sts_client is None and sts_factory is None:
            raise ValueError("pass sts_client or sts_factory")
        self._sts = sts_client
        self._sts_factory = sts_factory
        self._cache = cache
        self._cache_scope = cache_scope
        self._cache_key = cache_key("s3-web-identity", role_arn, wallet, policy or "", *cache_scope)
        self._role_arn = role_arn
        self._wallet = wallet
        self._token_source = token_source
        self._duration = duration
        self._session_name_override = session_name_override
        self.policy = policy
        """Session policy (compact JSON) narrowing the role's permissions, or ``None``."""
        self._time_fetcher = time_fetcher
        self._lock = threading.Lock()
        self._expiry: dict[str, dt.datetime] = {}
        self.sts_calls = 0
        """How many ``AssumeRoleWithWebIdentity`` calls this provider made (for tests/metrics)."""
        advisory, mandatory = windows or refresh_windows(duration)
        self._windows = (advisory, mandatory)
        self.botocore_credentials = _WebIdentityCredentials(
            self._fetch, advisory=advisory, mandatory=mandatory, time_fetcher=time_fetcher
        )

    def _sts_client(self) -> Any:
        if self._sts is None:
            assert self._sts_factory is not None
            self._sts = self._sts_factory()
        return self._sts

    def _remember(self, access_key: str, expiration: dt.datetime) -> None:
        with self._lock:
            previous = dict(list(self._expiry.items())[:1])
            self._expiry = {access_key: expiration, **previous}

    def _from_cache(self) -> dict[str, Any] | None:
        if self._cache is None:
            return None
        # Only a session botocore will not want to refresh at once (outside the advisory window).
        cached = self._cache.load(self._cache_key, min_remaining=self._windows[0] + 5)
        if cached is None or cached.expiration is None or cached.session_token is None:
            return None
        self._remember(cached.access_key_id, cached.expiration)
        return {
            "access_key": cached.access_key_id,
            "secret_key": cached.secret_access_key,
            "token": cached.session_token,
            "expiry_time": cached.expiration.isoformat(),
        }

    def _fetch(self) -> dict[str, Any]:
        reused = self._from_cache()
        if reused is not None:
            return reused
        token = self._token_source()
        if not isinstance(token, str) or not token:
            raise InvalidToken("the token source returned no token; check its configuration")
        with self._lock:
            self.sts_calls += 1
        request: dict[str, Any] = {
            "RoleArn": self._role_arn,
            "RoleSessionName": self._session_name_override or session_name(self._wallet),
            "WebIdentityToken": token,
            "DurationSeconds": self._duration,
        }
        if self.policy is not None:
            request["Policy"] = self.policy
        try:
            resp = self._sts_client().assume_role_with_web_identity(**request)
        except ClientError as exc:
            raise map_sts_error(exc) from None
        except SDK_ERRORS as exc:
            raise map_botocore_error(exc, what="AssumeRoleWithWebIdentity") from None
        creds = resp["Credentials"]
        expiration = creds["Expiration"]
        if isinstance(expiration, str):
            expiration = dt.datetime.fromisoformat(expiration.replace("Z", "+00:00"))
        if expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=dt.UTC)
        self._remember(creds["AccessKeyId"], expiration)
        if self._cache is not None:
            self._cache.store(
                self._cache_key,
                TemporaryCredentials(
                    creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"],
                    expiration,
                ),
            )
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": expiration.isoformat(),
        }

    def narrowed(self, policy: str) -> WebIdentityCredentialsProvider:
        """A provider for the same role and token whose sessions carry ``policy``.

        STS grants the intersection of the role's policies and the session policy, and the
        policy travels inside the (encrypted) session token, so whoever holds the resulting
        credentials cannot widen them. Same STS client, same token source, own cache.
        """
        return WebIdentityCredentialsProvider(
            sts_client=self._sts,
            sts_factory=self._sts_factory,
            role_arn=self._role_arn,
            wallet=self._wallet,
            token_source=self._token_source,
            duration=self._duration,
            windows=self._windows,
            time_fetcher=self._time_fetcher,
            session_name_override=self._session_name_override,
            policy=policy,
            cache=self._cache,
            cache_scope=self._cache_scope,
        )

    # ------------------------------------------------------------ CredentialsProvider
    def credentials(self) -> TemporaryCredentials:
        frozen = self.botocore_credentials.get_frozen_credentials()
        return TemporaryCredentials(
            access_key_id=frozen.access_key,
            secret_access_key=frozen.secret_key,
            session_token=frozen.token,
            expiration=self._expiry.get(frozen.access_key),
        )

    def invalidate(self) -> None:
        frozen = self.botocore_credentials._frozen_credentials
        self._drop_cached(frozen.access_key if frozen is not None else None)
        self.botocore_credentials.force_refresh()

    def _drop_cached(self, access_key: str | None) -> None:
        """The service refused this session: other processes must not reuse it either."""
        if self._cache is not None and access_key is not None:
            self._cache.invalidate(self._cache_key, access_key)

    # ------------------------------------------------------------ used by the store
    def current_access_key(self) -> str:
        """Access key the next request will sign with (refreshing first if due)."""
        return str(self.botocore_credentials.get_frozen_credentials().access_key)

    def invalidate_if_current(self, used_access_key: str | None) -> None:
        """Force a refresh unless another thread already replaced ``used_access_key``."""
        frozen = self.botocore_credentials._frozen_credentials
        self._drop_cached(used_access_key)
        if used_access_key is None or frozen is None or frozen.access_key == used_access_key:
            self.invalidate()

    def looks_expired(self, used_access_key: str | None, slack: float = 1.0) -> bool:
        """Whether ``used_access_key``'s credentials are (about) past expiry by our clock.

        Ceph RGW answers expired session credentials with a plain 403 AccessDenied; this tells
        such a 403 apart from a real denial without reading the message.
        """
        if used_access_key is None:
            return False
        expiry = self._expiry.get(used_access_key)
        if expiry is None:
            return False
        return (expiry - dt.datetime.now(dt.UTC)).total_seconds() <= slack
