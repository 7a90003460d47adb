"""SignerKeySource: KEKs from the agentKeys signer, bit-compatible with upstream.

Upstream derives a credential KEK from an EIP-191 signature over a fixed message::

    msg = "agentkeys.kek.v1:" + lower(wallet) + ":" + service     (UTF-8, sent as message_hex)
    sig = POST /dev/sign-message {"omni_account", "message_hex"}  (65 bytes r || s || v)
    KEK = SHA256(b"agentkeys.kek-derive.v1" || sig)

That only works while the signer is deterministic (RFC 6979). Some signers are not (hardware
wallets with anti-exfiltration nonces, smart-contract wallets): each call gives a different
valid signature, hence a different KEK, and data sealed with one would never open again. So:

* sealing derives the KEK twice and refuses (``UnstableKeyError``) if the two differ;
* the KEK id carries a key-check value, ``"signer.v1." + hex(HMAC-SHA256(KEK,
  b"portable-creds/v1 signer key check")[0:8])``, so a read with a changed KEK is detected
  up front (and re-derived once to tell an unstable signer from a different key).

Only the stdlib HTTP client is used (through ``httpclient``'s redirect-safe opener), so importing
this module stays light. The signer URL must be https unless it is loopback.
"""

from __future__ import annotations

import hmac
import http.client
import json
import os
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from hashlib import sha256
from typing import Any

from .errors import (
    ConfigurationError,
    CredentialsError,
    IntegrityError,
    KeySourceError,
    RemoteUnavailable,
    UnstableKeyError,
)
from .httpclient import build_opener, check_service_url
from .keys import Kek, KeySource

KEK_MESSAGE_PREFIX = "agentkeys.kek.v1:"
KEK_DERIVE_LABEL = b"agentkeys.kek-derive.v1"
KCV_LABEL = b"portable-creds/v1 signer key check"
KEK_ID_PREFIX = "signer.v1."
SIGN_PATH = "/dev/sign-message"
SIGNATURE_LEN = 65
MAX_RESPONSE_BYTES = 64 * 1024

_OMNI_RE = re.compile(r"[0-9a-fA-F]{64}")
_KEK_ID_RE = re.compile(r"signer\.v1\.([0-9a-f]{16})")


# -- errors ---------------------------------------------------------------------------------


class SignerError(KeySourceError):
    """The signer answered, but not with a usable signature. ``status``/``code`` from the reply."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class SignerRejectedRequest(SignerError):
    """400 ``invalid_omni_account`` / ``invalid_message_hex``: the request itself was refused."""


class SignerInternalError(SignerError):
    """500 ``internal``: the signer failed; nothing on this side can fix it."""


class MalformedSignerResponse(SignerError):
    """The reply was not the documented JSON with a 65-byte hex signature."""


class SignerUnauthorized(CredentialsError):
    """401 ``unauthorized``: the signer wants a (valid, unexpired) bearer token."""

    def __init__(self, message: str, *, status: int | None = 401, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class SignerUnavailable(RemoteUnavailable):
    """503 ``signer_disabled``, or the signer could not be reached at all."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


# -- the upstream derivation, as pure functions ---------------------------------------------


def default_omni_account(wallet: str) -> str:
    """Upstream's actor omni account: hex(SHA256("agentkeys" || "evm" || lower(wallet)))."""
    return sha256(b"agentkeys" + b"evm" + wallet.lower().encode("utf-8")).hexdigest()


def kek_message(wallet: str, service: str) -> bytes:
    """The message upstream signs to derive the KEK for (wallet, service)."""
    return (KEK_MESSAGE_PREFIX + wallet.lower() + ":" + service).encode("utf-8")


def kek_from_signature(signature: bytes) -> bytes:
    """KEK = SHA256(b"agentkeys.kek-derive.v1" || signature), exactly as upstream."""
    if len(signature) != SIGNATURE_LEN:
        raise ValueError("an EIP-191 signature is 65 bytes (r || s || v)")
    return sha256(KEK_DERIVE_LABEL + signature).digest()


def key_check_value(kek: bytes) -> str:
    """16 hex chars committing to the KEK without revealing it."""
    return hmac.new(kek, KCV_LABEL, sha256).digest()[:8].hex()


def signer_kek_id(kek: bytes) -> str:
    return KEK_ID_PREFIX + key_check_value(kek)


# -- the key source -------------------------------------------------------------------------


TokenProvider = Callable[[], str]


class SignerKeySource(KeySource):
    """KEKs derived from signatures made by an agentKeys signer at ``url``.

    ``omni_account``: 64 hex; if omitted, upstream's default for each wallet is used
    (:func:`default_omni_account`). ``token``: bearer token, or a callable returning a fresh
    one per request (session JWTs expire). Verified KEKs are cached per process, so the
    signer is asked twice only for the first seal of each (wallet, service).
    """

    def __init__(
        self,
        url: str,
        *,
        omni_account: str | None = None,
        token: str | TokenProvider | None = None,
        timeout: float = 10.0,
        cache: bool = True,
    ) -> None:
        check_service_url(url, what="signer URL", hint=" (AGENTKEYS_SIGNER_URL)")
        if omni_account is not None and not _OMNI_RE.fullmatch(omni_account):
            raise ConfigurationError(
                "omni account must be 64 hex characters (AGENTKEYS_OMNI_ACCOUNT), or leave it "
                "unset to use the wallet's default omni account"
            )
        self.url = url.rstrip("/")
        self.omni_account = omni_account.lower() if omni_account else None
        self._token = token
        self.timeout = timeout
        self._cache: dict[tuple[str, str, str], Kek] | None = {} if cache else None
        self._lock = threading.Lock()
        # Redirects never carry the bearer token to another origin, nor leave https.
        self._opener = build_opener(self.url)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        token: str | TokenProvider | None = None,
        timeout: float = 10.0,
    ) -> SignerKeySource:
        """From upstream's variables: ``AGENTKEYS_SIGNER_URL`` (required) and
        ``AGENTKEYS_OMNI_ACCOUNT`` (optional; default: derived from each wallet)."""
        env = os.environ if environ is None else environ
        url = env.get("AGENTKEYS_SIGNER_URL")
        if not url:
            raise ConfigurationError(
                "AGENTKEYS_SIGNER_URL is not set; set it to the signer's base URL, "
                "e.g. http://127.0.0.1:8091"
            )
        return cls(
            url,
            omni_account=env.get("AGENTKEYS_OMNI_ACCOUNT") or None,
            token=token,
            timeout=timeout,
        )

    def __repr__(self) -> str:
        token = "<set>" if self._token is not None else None
        return (
            f"SignerKeySource(url={self.url!r}, omni_account={self.omni_account!r}, token={token})"
        )

    # -- the wire protocol ------------------------------------------------------------------

    def omni_for(self, wallet: str) -> str:
        return self.omni_account or default_omni_account(wallet)

    def sign(self, omni_account: str, message: bytes) -> bytes:
        """One ``POST /dev/sign-message``; returns the 65 signature bytes as sent by the signer."""
        body = json.dumps({"omni_account": omni_account, "message_hex": message.hex()}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        token = self._token() if callable(self._token) else self._token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.url + SIGN_PATH, data=body, headers=headers, method="POST"
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                raw = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            with exc:
                raise self._http_error(exc.code, exc.read(MAX_RESPONSE_BYTES)) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise SignerUnavailable(
                f"cannot reach the signer at {self.url} ({reason}); check that it is running "
                "and AGENTKEYS_SIGNER_URL points at it"
            ) from None
        return _parse_signature(raw, self.url)

    def _http_error(self, status: int, raw: bytes) -> Exception:
        code = _error_code(raw)
        where = f"the signer at {self.url}"
        if status == 401:
            return SignerUnauthorized(
                f"{where} refused the request (401 {code or 'unauthorized'}); supply a valid, "
                "unexpired bearer token (session JWT)",
                code=code,
            )
        if status == 503:
            return SignerUnavailable(
                f"{where} is disabled (503 {code or 'signer_disabled'}); enable the signer "
                "or use another key source",
                status=503,
                code=code,
            )
        if status == 400 and code == "invalid_omni_account":
            return SignerRejectedRequest(
                f"{where} rejected the omni account (400 invalid_omni_account); check "
                "AGENTKEYS_OMNI_ACCOUNT (64 hex characters)",
                status=400,
                code=code,
            )
        if status == 400:
            return SignerRejectedRequest(
                f"{where} rejected the request (400 {code or 'bad request'}); the signer "
                "does not speak the documented protocol or this client is out of date",
                status=400,
                code=code,
            )
        if status >= 500:
            return SignerInternalError(
                f"{where} failed internally ({status} {code or 'internal'}); check the "
                "signer's logs and retry",
                status=status,
                code=code,
            )
        return SignerError(
            f"{where} answered {status} {code or ''}".rstrip()
            + "; this is not part of the signer protocol, check the URL",
            status=status,
            code=code,
        )

    # -- KEK derivation ---------------------------------------------------------------------

    def _signature(self, wallet: str, service: str) -> bytes:
        return self.sign(self.omni_for(wallet), kek_message(wallet, service))

    def _stable_signature(self, wallet: str, service: str) -> bytes:
        first = self._signature(wallet, service)
        second = self._signature(wallet, service)
        if not hmac.compare_digest(first, second):
            raise UnstableKeyError(
                f"the signer at {self.url} returned two different signatures for the same "
                "message, so keys derived from it would not be reproducible; nothing was "
                "sealed. Use a deterministic (RFC 6979) signer or a SecretKeySource"
            )
        return first

    def upstream_kek(self, wallet: str, service: str) -> bytes:
        """The raw KEK upstream agentKeys uses for (wallet, service), checked for stability.

        For migrating upstream 0x01/0x02 blobs (``portable_creds.upstream``).
        """
        return kek_from_signature(self._stable_signature(wallet, service))

    def _cache_key(self, wallet: str, service: str) -> tuple[str, str, str]:
        return (self.omni_for(wallet), wallet.lower(), service)

    def current_kek(self, wallet: str, service: str) -> Kek:
        key = self._cache_key(wallet, service)
        if self._cache is not None:
            with self._lock:
                cached = self._cache.get(key)
            if cached is not None:
                return cached
        raw = kek_from_signature(self._stable_signature(wallet, service))
        kek = Kek(signer_kek_id(raw), raw)
        if self._cache is not None:
            with self._lock:
                self._cache[key] = kek
        return kek

    def kek_for_id(self, wallet: str, service: str, kek_id: str) -> Kek:
        if _KEK_ID_RE.fullmatch(kek_id) is None:
            raise IntegrityError()
        key = self._cache_key(wallet, service)
        if self._cache is not None:
            with self._lock:
                cached = self._cache.get(key)
            if cached is not None and cached.kek_id == kek_id:
                return cached
        first = self._signature(wallet, service)
        raw = kek_from_signature(first)
        if hmac.compare_digest(signer_kek_id(raw), kek_id):
            kek = Kek(kek_id, raw)
            if self._cache is not None:
                with self._lock:
                    self._cache[key] = kek
            return kek
        # Wrong key, or an unstable signer? Ask once more: only the latter changes its answer.
        if not hmac.compare_digest(first, self._signature(wallet, service)):
            raise UnstableKeyError(
                f"the signer at {self.url} returns a different signature on every call, so "
                "the key this secret was sealed with cannot be re-derived from it"
            )
        raise IntegrityError()


def _error_code(raw: bytes) -> str | None:
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    code = doc.get("error") if isinstance(doc, dict) else None
    return code if isinstance(code, str) and code.isprintable() and len(code) <= 64 else None


def _parse_signature(raw: bytes, url: str) -> bytes:
    def bad(what: str) -> MalformedSignerResponse:
        return MalformedSignerResponse(
            f"the signer at {url} sent an unusable reply ({what}); check that the URL points "
            "at an agentKeys signer (POST /dev/sign-message)",
            status=200,
        )

    if len(raw) > MAX_RESPONSE_BYTES:
        raise bad("reply too large")
    try:
        doc: Any = json.loads(raw)
    except ValueError:
        raise bad("not JSON") from None
    sig = doc.get("signature") if isinstance(doc, dict) else None
    if not isinstance(sig, str):
        raise bad("no signature field")
    text = sig[2:] if sig[:2] in ("0x", "0X") else sig
    if len(text) != 2 * SIGNATURE_LEN:
        raise bad(f"signature is {len(text)} hex characters, expected {2 * SIGNATURE_LEN}")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise bad("signature is not hex") from None
