"""The one error hierarchy every layer and every driver maps into.

Callers branch on the type, never on the message. Each class carries the CLI exit code it maps
to, so the CLI and scripts around it agree on what went wrong. Messages say what to do next and
never contain secret material.
"""

from __future__ import annotations


class PortableCredsError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with for this failure."""

    exit_code: int = 1

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id

    def __str__(self) -> str:
        if self.request_id:
            return f"{self.message} (request id {self.request_id})"
        return self.message


class NotFound(PortableCredsError):
    """The object or credential does not exist."""

    exit_code = 3


class AccessDenied(PortableCredsError):
    """The storage or identity service refused the operation for these credentials."""

    exit_code = 4


class IntegrityError(PortableCredsError):
    """A sealed blob failed to open.

    Deliberately one type with one message for every cause (tampered, truncated, moved to
    another path/tenant/service, sealed under another key): distinguishing them would give an
    attacker an oracle.
    """

    exit_code = 5

    DEFAULT_MESSAGE = (
        "integrity check failed: the stored blob was tampered with, truncated, moved from "
        "another path, or sealed under a different key; restore it from a backup or the outbox"
    )

    def __init__(self, message: str | None = None, *, request_id: str | None = None) -> None:
        super().__init__(message or self.DEFAULT_MESSAGE, request_id=request_id)


class ConfigurationError(PortableCredsError):
    """Missing or inconsistent configuration (backend URL, key file, driver not installed...)."""

    exit_code = 6


class TransientError(PortableCredsError):
    """A retryable failure: network error, timeout, throttling, 5xx."""

    exit_code = 7


class RemoteUnavailable(TransientError):
    """The remote endpoint could not be reached or kept failing after bounded retries."""

    exit_code = 7


class InvalidName(PortableCredsError, ValueError):
    """A wallet, service name or storage key failed validation at the edge."""

    exit_code = 8


class InvalidSecret(PortableCredsError, ValueError):
    """The secret itself is unacceptable: empty (unless explicitly allowed) or too large."""

    exit_code = 8


class PayloadTooLarge(InvalidSecret):
    """The secret exceeds the configured maximum payload size."""

    exit_code = 8


class CredentialsError(PortableCredsError):
    """Temporary credentials or identity tokens are expired, invalid or refused."""

    exit_code = 9


class ExpiredCredentials(CredentialsError):
    """Temporary credentials expired; a refresh (new token / STS exchange) is needed."""


class InvalidToken(CredentialsError):
    """The identity service refused the OIDC token (forged, expired, wrong audience...)."""


class PreconditionFailed(PortableCredsError):
    """A create-only or if-match write lost: the object exists or changed meanwhile."""

    exit_code = 10


class KeySourceError(PortableCredsError):
    """The key source (root secret, signer service) could not produce a key-encryption key."""

    exit_code = 11


class UnstableKeyError(KeySourceError):
    """The signer returned different signatures for the same message: KEKs would not be stable."""


class SecretNotDelivered(PortableCredsError):
    """A put failed remotely; the sealed secret is safe in the local outbox.

    ``cause`` is the underlying typed error; ``outbox_path`` where the sealed blob waits for
    ``portable-creds outbox flush``.
    """

    exit_code = 7

    def __init__(self, message: str, *, cause: PortableCredsError, outbox_path: str) -> None:
        super().__init__(message, request_id=cause.request_id)
        self.exit_code = cause.exit_code
        self.cause = cause
        self.outbox_path = outbox_path


EXIT_CODES: dict[str, int] = {
    "ok": 0,
    "error": 1,
    "usage": 2,
    "not-found": NotFound.exit_code,
    "access-denied": AccessDenied.exit_code,
    "integrity": IntegrityError.exit_code,
    "configuration": ConfigurationError.exit_code,
    "remote-unavailable": RemoteUnavailable.exit_code,
    "invalid-input": InvalidName.exit_code,
    "credentials": CredentialsError.exit_code,
    "precondition-failed": PreconditionFailed.exit_code,
    "key-source": KeySourceError.exit_code,
}
