"""The legacy agentKeys HTTP backend (``/credential/store|read|list|teardown``).

That backend never encrypted anything: upstream callers send the raw secret bytes in a field
named ``ciphertext`` and the server keeps them as they are. Two ways in, deliberately separate:

- ``LegacyClient`` speaks the documented API with *plaintext* semantics. ``migrate`` reads the
  secrets upstream callers stored with it, and nothing else in portable-creds uses it to write.
- ``LegacyDriver`` (entry point ``http``) makes the backend an ``ObjectStore`` under a
  ``CredentialStore``: what it stores in ``ciphertext`` is our *sealed* envelope, so secrets
  written through portable-creds are encrypted client-side even on this backend. Those values
  are not readable by upstream callers (they would get the sealed blob), and plaintext values
  upstream callers stored there do not open through the ``CredentialStore`` (IntegrityError):
  run ``portable-creds migrate`` instead of mixing the two.

The backend's own weaknesses stay visible: ``ENCRYPTS_AT_REST = False`` is what ``doctor`` and
the docs report, and the API has no per-credential delete, no conditional writes and no ETags.
HTTP is plain ``urllib`` from the standard library (through ``httpclient``'s redirect-safe
opener), so importing this module costs nothing. The URL must be https unless it is loopback.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import email.utils
import hashlib
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import attrs

from . import names
from .driver import Capabilities, Driver, ObjectInfo, ObjectStore, StoredObject, StoreTarget
from .errors import (
    AccessDenied,
    ConfigurationError,
    CredentialsError,
    ExpiredCredentials,
    InvalidName,
    NotFound,
    PortableCredsError,
    PreconditionFailed,
    RemoteUnavailable,
    TransientError,
)
from .httpclient import build_opener, check_service_url
from .retry import RetryPolicy

ENCRYPTS_AT_REST = False
"""The legacy server stores whatever it is given, in cleartext. Shown by ``doctor``."""

NO_ENCRYPTION_NOTICE = (
    "the legacy HTTP backend stores values in cleartext (it has no encryption of its own); "
    "portable-creds seals what it writes there, but secrets stored by upstream agentKeys "
    "callers are plaintext on that server - migrate them with 'portable-creds migrate'"
)

ENV_LEGACY_TOKEN = "PORTABLE_CREDS_LEGACY_TOKEN"
"""Bearer session token for the legacy backend when none is passed explicitly."""

DEFAULT_TIMEOUT = 10.0
MAX_RESPONSE_BYTES = 96 << 20
"""Above the base64 of the largest secret the envelope allows (64 MiB): anything bigger is not
a legacy-API answer."""
DEFAULT_RETRIES = 2

_KEY_RE = re.compile(
    r"(?P<prefix>.+)/(?P<wallet>0x[0-9a-f]{40})/credentials/(?P<service>[^/]+)\.enc"
)
_PREFIX_WALLET_RE = re.compile(r"(?P<prefix>.+?)/(?P<wallet>0x[0-9a-f]{40})(/|$)")


@attrs.frozen
class Probe:
    """What one authenticated request told us about the endpoint (for ``doctor``)."""

    status: int
    """HTTP status of ``GET /credential/list`` (0 if unreachable)."""
    server_time: float | None
    """The server's ``Date`` header as a Unix time, if it sent one."""
    local_time: float
    error: PortableCredsError | None


def _token_value(token: str | Callable[[], str] | None) -> str | None:
    if token is None:
        return None
    value = token() if callable(token) else token
    return value.strip() or None


class LegacyClient:
    """Plaintext client for the documented legacy API. Methods raise ``portable_creds.errors``.

    ``token`` is the bearer session token (a string, or a callable returning a fresh one).
    Idempotent requests (all of them: ``store`` is an upsert, ``teardown`` a delete) are retried
    ``retries`` times on 5xx and connection failures before ``RemoteUnavailable``.
    """

    ENCRYPTS_AT_REST: ClassVar[bool] = ENCRYPTS_AT_REST

    def __init__(
        self,
        base_url: str,
        *,
        token: str | Callable[[], str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = 0.2,
    ) -> None:
        check_service_url(base_url, what="legacy backend URL", hint=" (--backend, legacy_url)")
        parts = urllib.parse.urlsplit(base_url)
        self.base_url = urllib.parse.urlunsplit(
            (parts.scheme, parts.netloc, parts.path.rstrip("/"), "", "")
        )
        self._token = token
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        # Redirects never carry the token to another origin, nor leave https.
        self._opener = build_opener(self.base_url)

    def __repr__(self) -> str:
        return f"LegacyClient({self.base_url!r}, token={'<set>' if self._token else None})"

    @property
    def backend_id(self) -> str:
        return f"http-legacy:{self.base_url}"

    # -- the documented routes -----------------------------------------------------------

    def store(self, wallet: str, service: str, secret: bytes) -> None:
        """Upsert one credential (raw bytes, as upstream callers send them)."""
        body = {
            "agent_id": names.validate_wallet(wallet),
            "service": _check_legacy_service(service),
            "ciphertext": base64.b64encode(secret).decode("ascii"),
        }
        self._request("POST", "/credential/store", body=body)

    def read(self, wallet: str, service: str) -> bytes:
        """The stored bytes; ``NotFound`` if absent."""
        query = {
            "agent_id": names.validate_wallet(wallet),
            "service": _check_legacy_service(service),
        }
        doc = self._request("GET", "/credential/read", query=query)
        value = doc.get("ciphertext")
        if not isinstance(value, str):
            raise self._protocol_error("read", "no 'ciphertext' string in the response")
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise self._protocol_error("read", "'ciphertext' is not standard base64") from None

    def list(self, wallet: str) -> builtins.list[str]:
        """Service names of the wallet, sorted (as the server returns them, which may include
        names portable-creds would reject)."""
        doc = self._request(
            "GET", "/credential/list", query={"agent_id": names.validate_wallet(wallet)}
        )
        services = doc.get("services")
        if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
            raise self._protocol_error("list", "no 'services' list of strings in the response")
        return sorted(services)

    def teardown(self, wallet: str) -> None:
        """Delete every credential of the wallet (the API has no single-credential delete)."""
        self._request(
            "DELETE", "/credential/teardown", body={"agent_id": names.validate_wallet(wallet)}
        )

    def audit_query(
        self, *, owner: str | None = None, agent: str | None = None, service: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        query = {k: v for k, v in (("owner", owner), ("agent", agent), ("service", service)) if v}
        doc = self._request("GET", "/audit/query", query=query)
        events = doc.get("events")
        if not isinstance(events, list):
            raise self._protocol_error("audit", "no 'events' list in the response")
        return [e for e in events if isinstance(e, dict)]

    def probe(self, wallet: str) -> Probe:
        """One authenticated list request; never raises (doctor reports what it found)."""
        now = time.time()
        try:
            _, headers = self._request_raw(
                "GET",
                "/credential/list",
                query={"agent_id": names.validate_wallet(wallet)},
                retries=0,
            )
        except _HTTPFailure as failure:
            return Probe(failure.status, failure.server_time, now, failure.error)
        except PortableCredsError as exc:
            return Probe(0, None, now, exc)
        return Probe(200, _parse_date(headers.get("Date")), now, None)

    # -- transport -----------------------------------------------------------------------

    def _protocol_error(self, op: str, what: str) -> ConfigurationError:
        return ConfigurationError(
            f"{self.base_url} answered {op} but {what}: is this the legacy agentKeys backend URL?"
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, object] | None = None,
    ) -> dict[str, Any]:
        try:
            raw, _ = self._request_raw(method, path, query=query, body=body, retries=self.retries)
        except _HTTPFailure as failure:
            raise failure.error from None
        try:
            doc = json.loads(raw) if raw else {}
        except ValueError:
            raise self._protocol_error(path, "the response is not JSON") from None
        if not isinstance(doc, dict):
            raise self._protocol_error(path, "the response is not a JSON object")
        return doc

    def _request_raw(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, object] | None = None,
        retries: int,
    ) -> tuple[bytes, Mapping[str, str]]:
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        budget = RetryPolicy(retries, base=self.backoff, cap=max(self.backoff, 2.0)).start()
        while True:
            headers = {"Accept": "application/json"}
            if data is not None:
                headers["Content-Type"] = "application/json"
            token = _token_value(self._token)
            if token:
                headers["Authorization"] = f"Bearer {token}"
            req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
            try:
                with self._opener.open(req, timeout=self.timeout) as resp:
                    raw = resp.read(MAX_RESPONSE_BYTES + 1)
                    if len(raw) > MAX_RESPONSE_BYTES:
                        raise self._protocol_error(path, "the response is implausibly large")
                    return raw, dict(resp.headers.items())
            except urllib.error.HTTPError as exc:
                failure = self._failure(exc, method, path)
                retryable = exc.code >= 500 or exc.code == 429
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                reason = getattr(exc, "reason", exc)
                failure = _HTTPFailure(
                    0,
                    None,
                    RemoteUnavailable(
                        f"cannot reach the legacy backend at {self.base_url} ({reason}); check "
                        "the URL and that the server is running"
                    ),
                )
                retryable = True
            delay = budget.next_delay() if retryable else None
            if delay is None:
                raise failure
            time.sleep(delay)

    def _failure(self, exc: urllib.error.HTTPError, method: str, path: str) -> _HTTPFailure:
        try:
            payload = json.loads(exc.read(64 * 1024) or b"{}")
        except ValueError:
            payload = {}
        code = payload.get("error") if isinstance(payload, dict) else None
        request_id = exc.headers.get("X-Request-Id") if exc.headers else None
        server_time = _parse_date(exc.headers.get("Date")) if exc.headers else None
        what = f"{method} {path}"
        status = exc.code
        err: PortableCredsError
        if status == 401:
            err = CredentialsError(
                f"the legacy backend rejected the session token ({code or status}) on {what}; "
                "set a valid token (PORTABLE_CREDS_LEGACY_TOKEN, or legacy_token in the profile)",
                request_id=request_id,
            )
        elif status == 403:
            err = AccessDenied(
                f"the legacy backend denied {what} ({code or status}): this session token is "
                "not allowed to act for that wallet",
                request_id=request_id,
            )
        elif status == 404:
            err = NotFound(f"not found on the legacy backend ({what})", request_id=request_id)
        elif status == 409:
            err = PreconditionFailed(
                f"the legacy backend says the request was already consumed ({code or status}) on "
                f"{what}; obtain a fresh session and retry",
                request_id=request_id,
            )
        elif status == 410:
            err = ExpiredCredentials(
                f"the legacy backend says the session expired ({code or status}) on {what}; "
                "log in again to get a fresh session token",
                request_id=request_id,
            )
        elif status == 400:
            err = InvalidName(
                f"the legacy backend rejected the request as malformed ({code or status}) "
                f"on {what}",
                request_id=request_id,
            )
        elif status == 429:
            err = TransientError(
                f"the legacy backend is throttling ({what}); retry later", request_id=request_id
            )
        else:
            err = RemoteUnavailable(
                f"the legacy backend failed with HTTP {status} ({code or 'no error code'}) on "
                f"{what}; retry later or check the server logs",
                request_id=request_id,
            )
        return _HTTPFailure(status, server_time, err)


class _HTTPFailure(Exception):
    def __init__(self, status: int, server_time: float | None, error: PortableCredsError) -> None:
        super().__init__(str(error))
        self.status = status
        self.server_time = server_time
        self.error = error


def _parse_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


def _check_legacy_service(service: str) -> str:
    """Upstream's only rule: non-empty, no '/'. Stricter checks happen where names become keys."""
    if not isinstance(service, str) or not service or "/" in service or len(service) > 1024:
        raise InvalidName(
            f"invalid legacy service name {service!r}: must be non-empty, without '/'"
        )
    return service


def _etag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


class LegacyObjectStore(ObjectStore):
    """The legacy API as an ``ObjectStore`` holding *sealed* blobs (see the module docstring).

    Keys must follow the credential layout ``<prefix>/<wallet>/credentials/<service>.enc``; the
    backend's namespace is only (wallet, service), so the prefix is not stored.
    """

    capabilities = Capabilities()
    ENCRYPTS_AT_REST: ClassVar[bool] = ENCRYPTS_AT_REST

    def __init__(self, client: LegacyClient, wallet: str | None) -> None:
        self.client = client
        self.wallet = names.validate_wallet(wallet) if wallet is not None else None

    @property
    def backend_id(self) -> str:
        return self.client.backend_id

    def _split(self, key: str) -> tuple[str, str]:
        match = _KEY_RE.fullmatch(key)
        if match is None:
            raise InvalidName(
                f"key {key!r} is not a credential key "
                "(<prefix>/<wallet>/credentials/<service>.enc); "
                "the legacy backend stores nothing else"
            )
        wallet, service = match["wallet"], names.validate_service(match["service"])
        self._check_scope(wallet)
        return wallet, service

    def _check_scope(self, wallet: str) -> None:
        if self.wallet is not None and wallet != self.wallet:
            raise AccessDenied(
                f"this store is opened for {self.wallet}; it cannot touch {wallet}'s credentials"
            )

    def put(
        self, key: str, data: bytes, *, if_none_match: bool = False, if_match: str | None = None
    ) -> str:
        if if_none_match or if_match is not None:
            raise ConfigurationError(
                "the legacy HTTP backend has no conditional writes (create-only / if-match); "
                "use an s3://, cos:// or local backend for that"
            )
        wallet, service = self._split(key)
        self.client.store(wallet, service, data)
        return _etag(data)

    def get(self, key: str) -> StoredObject:
        wallet, service = self._split(key)
        data = self.client.read(wallet, service)
        return StoredObject(data, _etag(data))

    def head(self, key: str) -> ObjectInfo:
        stored = self.get(key)
        return ObjectInfo(key, len(stored.data), stored.etag)

    def delete(self, key: str) -> None:
        self._split(key)
        raise ConfigurationError(
            "the legacy HTTP backend cannot delete a single credential (its API only has "
            "teardown of a whole wallet); migrate off it with 'portable-creds migrate', whose "
            "--delete-source tears the wallet down after every secret was verified"
        )

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        match = _PREFIX_WALLET_RE.match(prefix)
        if match is None:
            raise ConfigurationError(
                "the legacy HTTP backend can only list one wallet's credentials "
                "(prefix <prefix>/<wallet>/...); it has no way to enumerate wallets"
            )
        wallet = match["wallet"]
        self._check_scope(wallet)
        base = f"{match['prefix']}/{wallet}/credentials/"
        keys = []
        for service in self.client.list(wallet):
            try:
                names.validate_service(service)
            except InvalidName:
                continue
            key = f"{base}{service}{names.SUFFIX}"
            if key.startswith(prefix):
                keys.append(key)
        for key in sorted(keys):
            # Sizes and ETags would need one read per object; listing reports what it knows.
            yield ObjectInfo(key, -1, "")


class LegacyDriver(Driver):
    """``http://host:port`` (or ``https://``): the legacy backend, holding sealed blobs.

    Options: ``token`` (bearer session token, string or callable; else the target's token
    source, else ``$PORTABLE_CREDS_LEGACY_TOKEN``), ``timeout`` seconds, ``retries``. The
    URL's query string is ignored (tokens never belong in URLs).
    """

    name = "http"
    ENCRYPTS_AT_REST: ClassVar[bool] = ENCRYPTS_AT_REST
    NOTICE: ClassVar[str] = NO_ENCRYPTION_NOTICE

    def open_object_store(self, target: StoreTarget) -> ObjectStore:
        return LegacyObjectStore(client_for_target(target), target.wallet)


def client_for_target(target: StoreTarget) -> LegacyClient:
    """The client a driver target describes (query string dropped, token from the options)."""
    parts = urllib.parse.urlsplit(target.url)
    url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    opt_token = target.options.get("token")
    token: str | Callable[[], str] | None
    if isinstance(opt_token, str) or callable(opt_token):
        token = opt_token
    elif target.token is not None:
        token = target.token
    else:
        token = os.environ.get(ENV_LEGACY_TOKEN) or None
    timeout = float(target.options.get("timeout", DEFAULT_TIMEOUT))
    retries = int(target.options.get("retries", DEFAULT_RETRIES))
    return LegacyClient(url, token=token, timeout=timeout, retries=retries)
