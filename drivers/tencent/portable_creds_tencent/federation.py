"""Turning a tenant's OIDC token into COS credentials, in the two modes CAM allows.

``role-per-tenant``: the tenant's process itself calls ``AssumeRoleWithWebIdentity`` (unsigned)
into the CAM role made for its wallet. The trust boundary is CAM: the role's trust policy checks
the token's issuer, audience and wallet claim, and the role's policy covers only the tenant prefix.

``token-vendor``: CAM cannot scope a web-identity session by token claims, so a *trusted* vendor
validates the token itself and calls signed ``AssumeRole`` with an inline policy limited to the
tenant prefix. The trust boundary is the vendor process plus CAM's intersection rule (role policy
∩ session policy). Whoever holds the vendor's API key can mint credentials for any tenant: run
the vendor where tenants cannot reach its key, and hand tenants only what ``vend`` returns.
"""

from __future__ import annotations

import abc
import datetime as dt
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from portable_creds.credcache import CredentialCache, cache_key
from portable_creds.driver import CredentialsProvider, TemporaryCredentials, TokenSource
from portable_creds.errors import (
    AccessDenied,
    ConfigurationError,
    InvalidToken,
    TransientError,
)
from portable_creds.names import tenant_prefix, validate_wallet
from portable_creds.urls import check_service_url

from .settings import Clock, StaticKeys

if TYPE_CHECKING:
    # Only the vendor builds policies and only an exchange calls STS: a tenant process whose
    # session comes from the credential cache imports neither (issue 13).
    from .kms_keys import TenantKeyDirectory
    from .policies import BucketRef
    from .tcapi import TcApi

_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


def _credentials_from(response: Mapping[str, Any], what: str) -> TemporaryCredentials:
    creds = response.get("Credentials")
    expired = response.get("ExpiredTime")
    if not isinstance(creds, dict) or not isinstance(expired, int):
        raise TransientError(f"{what}: the STS response carried no credentials; retry")
    try:
        return TemporaryCredentials(
            access_key_id=str(creds["TmpSecretId"]),
            secret_access_key=str(creds["TmpSecretKey"]),
            session_token=str(creds["Token"]),
            expiration=dt.datetime.fromtimestamp(expired, dt.UTC),
        )
    except KeyError:
        raise TransientError(f"{what}: the STS response is missing credential fields") from None


class RefreshingProvider(CredentialsProvider):
    """Caches credentials and fetches new ones ``margin`` seconds before ``ExpiredTime``.

    With ``use_cache`` the session is also shared with other processes through a
    ``CredentialCache`` (a fresh CLI process then makes no STS/vendor call).
    """

    def __init__(self, *, margin: float, clock: Clock = time.time) -> None:
        self._margin = margin
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: TemporaryCredentials | None = None
        self._refresh_at = 0.0
        self.exchanges = 0
        self._shared: CredentialCache | None = None
        self._shared_parts: tuple[object, ...] = ()
        self._shared_key = ""

    def use_cache(self, cache: CredentialCache, *parts: object) -> None:
        """Share sessions across processes under the key ``parts`` (what identifies them)."""
        self._shared = cache
        self._shared_parts = parts
        self._shared_key = cache_key(type(self).__name__, *parts)

    def _obtain(self, now: dt.datetime) -> TemporaryCredentials:
        if self._shared is not None:
            reused = self._shared.load(self._shared_key, min_remaining=self._margin + 5, now=now)
            if reused is not None:
                return reused
        fresh = self._fetch()
        self.exchanges += 1
        if self._shared is not None:
            self._shared.store(self._shared_key, fresh)
        return fresh

    @abc.abstractmethod
    def _fetch(self) -> TemporaryCredentials: ...

    def credentials(self) -> TemporaryCredentials:
        cached = self._cached
        if cached is not None and self._clock() < self._refresh_at:
            return cached  # the per-request fast path: no lock, no datetime arithmetic
        with self._lock:
            now = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
            if self._cached is None or self._cached.expires_within(self._margin, now=now):
                fresh = self._obtain(now)
                expiry = fresh.expiration.timestamp() if fresh.expiration else float("inf")
                self._refresh_at = expiry - self._margin
                self._cached = fresh
            return self._cached

    def invalidate(self) -> None:
        with self._lock:
            if self._shared is not None and self._cached is not None:
                # Refused by the service: no other process may reuse it either.
                self._shared.invalidate(self._shared_key, self._cached.access_key_id)
            self._cached = None
            self._refresh_at = 0.0


class StaticProvider(CredentialsProvider):
    """Administrative view: the account's own (or a CAM user's) API key."""

    def __init__(self, keys: StaticKeys) -> None:
        self._creds = TemporaryCredentials(keys.secret_id, keys.secret_key, keys.token, None)

    def credentials(self) -> TemporaryCredentials:
        return self._creds


class WebIdentityProvider(RefreshingProvider):
    """``role-per-tenant``: ``AssumeRoleWithWebIdentity`` into the wallet's own role."""

    def __init__(
        self,
        sts: TcApi,
        *,
        provider_id: str,
        role_arn: str,
        token: TokenSource,
        session_name: str,
        duration: int,
        margin: float,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(margin=margin, clock=clock)
        if sts.signed:
            raise ConfigurationError("AssumeRoleWithWebIdentity must be sent unsigned")
        self._sts = sts
        self._params = {
            "ProviderId": provider_id,
            "RoleArn": role_arn,
            "RoleSessionName": session_name,
            "DurationSeconds": duration,
        }
        self._token = token

    def _fetch(self) -> TemporaryCredentials:
        params = dict(self._params, WebIdentityToken=self._token())
        return _credentials_from(
            self._sts.call("AssumeRoleWithWebIdentity", params), "AssumeRoleWithWebIdentity"
        )


class JwksSource:
    """The issuer's signing keys: a fixed JWKS, or fetched from a URL by ``jwt.PyJWKClient``.

    The client caches the set for ``lifespan`` seconds and refetches on an unknown ``kid`` (a
    rotated key) at most once per ``cooldown`` seconds, so tokens with made-up kids cannot make
    the vendor hammer the issuer.
    """

    def __init__(
        self,
        jwks: Mapping[str, Any] | None = None,
        url: str | None = None,
        timeout: float = 5.0,
        *,
        lifespan: float = 300.0,
        cooldown: float = 30.0,
    ) -> None:
        if jwks is None and url is None:
            raise ConfigurationError("the token vendor needs the issuer's JWKS or jwks_url")
        if url is not None:
            check_service_url(url, what="jwks_url")  # https off loopback, no user:password@
        import jwt  # here, not at module level: a tenant's CLI process never verifies tokens

        self._jwks = dict(jwks) if jwks is not None else None
        self._url = url
        self._client = (
            jwt.PyJWKClient(url, timeout=timeout, lifespan=lifespan, cooldown_duration=cooldown)
            if jwks is None and url is not None
            else None
        )

    def _fetched_keys(self, kid: str | None) -> list[Any]:
        import jwt

        assert self._client is not None
        try:
            jwk_set = self._client.get_jwk_set()
            found = [k for k in jwk_set.keys if kid is None or k.key_id == kid]
            if not found and kid is not None:
                try:  # a rotated key: one refetch (rate-limited by the cooldown)
                    found = [self._client.get_signing_key(kid)]
                except jwt.PyJWKClientConnectionError:
                    raise
                except jwt.PyJWKClientError:
                    found = []
        except (jwt.PyJWKClientError, jwt.PyJWKSetError) as exc:
            raise TransientError(
                f"could not fetch a usable JWKS from {self._url}: {exc}"
            ) from None
        return [k.key for k in found]

    def key_for(self, kid: str | None, alg: str) -> list[Any]:
        if self._client is not None:
            return self._fetched_keys(kid)
        import jwt

        assert self._jwks is not None
        keys = [k for k in self._jwks.get("keys", []) if kid is None or k.get("kid") == kid]
        out = []
        for jwk in keys:
            try:
                out.append(jwt.PyJWK.from_dict(jwk, algorithm=alg).key)
            except jwt.PyJWTError:
                continue
        return out


@attrs.frozen
class Scope:
    """Narrower than the tenant prefix: exactly ``keys``, reads only if ``read_only``."""

    keys: tuple[str, ...]
    read_only: bool


_SCOPED_KEY = re.compile(r"[A-Za-z0-9._/-]+")
MAX_SCOPED_KEYS = 50


class Vendor(abc.ABC):
    """Something that exchanges a tenant's OIDC token for credentials scoped to that tenant
    (or, with ``scope``, to some of that tenant's objects)."""

    @abc.abstractmethod
    def vend(self, token: str, wallet: str, scope: Scope | None = None) -> TemporaryCredentials: ...


class TokenVendor(Vendor):
    """TRUSTED: validates OIDC tokens itself, then calls signed ``AssumeRole`` with an inline
    policy limited to the tenant's prefix and a session tag naming the wallet.

    Holds the vendor's API key. Anyone who can call its ``_sts`` client directly can obtain
    credentials for every tenant; isolation holds only while tenants interact with the vendor
    through ``vend`` (e.g. over a network boundary), never with its key.
    """

    def __init__(
        self,
        sts: TcApi,
        *,
        role_arn: str,
        bucket: BucketRef,
        prefix: str,
        issuer: str,
        audience: str,
        jwks: JwksSource,
        wallet_claim: str = "sub",
        duration: int = 3600,
        clock: Clock = time.time,
        session_tags: bool = False,
        kms_keys: TenantKeyDirectory | None = None,
    ) -> None:
        if not sts.signed:
            raise ConfigurationError("the token vendor needs its own API key to call AssumeRole")
        self._sts = sts
        self.role_arn = role_arn
        self.bucket = bucket
        self.prefix = prefix
        self.issuer = issuer
        self.audience = audience
        self._jwks = jwks
        self.wallet_claim = wallet_claim
        self.duration = duration
        self._clock = clock
        self.session_tags = session_tags
        self.kms_keys = kms_keys
        """Per-tenant KMS keys: each session also names exactly its wallet's CMK."""

    def validate(self, token: str) -> dict[str, Any]:
        """Signature (issuer's JWKS), iss, aud, exp and nbf. Raises ``InvalidToken``."""
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("the OIDC token is not a JWT; obtain a fresh token") from None
        alg = header.get("alg")
        if alg not in _ALGORITHMS:
            raise InvalidToken(f"OIDC token algorithm {alg!r} is not accepted (use RS256/ES256)")
        claims: dict[str, Any] | None = None
        for key in self._jwks.key_for(header.get("kid"), alg):
            try:
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=[alg],
                    audience=self.audience,
                    issuer=self.issuer,
                    options={
                        "verify_exp": False,
                        "verify_nbf": False,
                        "verify_iat": False,
                        "require": ["exp", "iss", "aud"],
                    },
                )
                break
            except (
                jwt.InvalidAudienceError,
                jwt.InvalidIssuerError,
                jwt.MissingRequiredClaimError,
            ):
                raise InvalidToken(
                    "the OIDC token's issuer or audience is wrong, or a required claim is "
                    "missing; obtain a token for this deployment"
                ) from None
            except jwt.PyJWTError:
                continue
        if claims is None:
            raise InvalidToken(
                "the OIDC token's signature does not verify against the issuer's JWKS"
            )
        now = self._clock()
        if not isinstance(claims.get("exp"), int | float) or now >= claims["exp"]:
            raise InvalidToken("the OIDC token expired; obtain a fresh token")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and now < nbf:
            raise InvalidToken("the OIDC token is not valid yet (nbf); check clocks")
        return claims

    def session_policy(self, wallet: str, scope: Scope | None = None) -> dict[str, Any]:
        """The inline policy: the tenant prefix, or exactly the scope's keys inside it (and,
        with per-tenant KMS keys, the wallet's own CMK)."""
        from .policies import scoped_policy, tenant_policy

        kms_key = self.kms_keys.resource(wallet) if self.kms_keys is not None else None
        if scope is None:
            return tenant_policy(self.bucket, self.prefix, wallet, kms_key)
        base = tenant_prefix(wallet, self.prefix)
        if not scope.keys or len(scope.keys) > MAX_SCOPED_KEYS:
            raise ConfigurationError(f"a scoped session names 1-{MAX_SCOPED_KEYS} objects")
        for key in scope.keys:
            # Keys become policy resources: no wildcards, no escaping the tenant's prefix.
            if not key.startswith(base) or not _SCOPED_KEY.fullmatch(key) or ".." in key:
                raise AccessDenied(f"{key!r} is not an object of wallet {wallet}")
        return scoped_policy(
            self.bucket, list(scope.keys), read_only=scope.read_only, kms_key=kms_key
        )

    def vend(self, token: str, wallet: str, scope: Scope | None = None) -> TemporaryCredentials:
        from .policies import WALLET_TAG, checked_session_policy

        wallet = validate_wallet(wallet)
        claims = self.validate(token)
        claimed = claims.get(self.wallet_claim)
        if not isinstance(claimed, str) or claimed.lower() != wallet:
            raise AccessDenied(
                f"the OIDC token's {self.wallet_claim!r} claim does not name wallet {wallet}; "
                "a tenant can only obtain credentials for its own wallet"
            )
        params: dict[str, Any] = {
            "RoleArn": self.role_arn,
            "RoleSessionName": f"pc-{wallet}",
            "DurationSeconds": self.duration,
            # Measured and refused here, before STS, if over the safe bound.
            "Policy": checked_session_policy(
                self.session_policy(wallet, scope), f"credentials for wallet {wallet}"
            ),
        }
        if self.session_tags:
            # Off by default: nothing evaluates the tag, and tagging a session may need a
            # permission (name/sts:TagSession) the vendor role's trust policy lacks.
            params["Tags"] = [{"Key": WALLET_TAG, "Value": wallet}]
        response = self._sts.call("AssumeRole", params)
        return _credentials_from(response, "AssumeRole")


class VendedProvider(RefreshingProvider):
    """``token-vendor`` on the tenant side: re-asks the vendor ahead of expiry."""

    def __init__(
        self,
        vendor: Vendor,
        *,
        wallet: str,
        token: TokenSource,
        margin: float,
        clock: Clock = time.time,
        scope: Scope | None = None,
    ) -> None:
        super().__init__(margin=margin, clock=clock)
        self._vendor = vendor
        self._wallet = wallet
        self._token = token
        self.scope = scope

    def narrowed(self, scope: Scope) -> VendedProvider:
        """A provider for the same tenant whose sessions allow only ``scope``."""
        narrowed = VendedProvider(
            self._vendor,
            wallet=self._wallet,
            token=self._token,
            margin=self._margin,
            clock=self._clock,
            scope=scope,
        )
        if self._shared is not None:
            narrowed.use_cache(self._shared, *self._shared_parts, scope.keys, scope.read_only)
        return narrowed

    def _fetch(self) -> TemporaryCredentials:
        return self._vendor.vend(self._token(), self._wallet, self.scope)


VendorFactory = Callable[[], Vendor]
