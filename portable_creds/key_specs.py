"""Key-source specs: naming a key source in one short string, for custody moves.

A custody move (root secret -> KMS, KMS -> signer, ...) needs two key sources at once: the one
that seals from now on and the one(s) that opened the blobs so far (``ChainedKeySource``). The
CLI names them with ``--from-keys SPEC`` / ``--to-keys SPEC``; this module parses a spec and
builds the source, so the rule is one place and the library never depends on the CLI parser.

Specs:

* ``root-secret`` - the configured root secret (``--secret-file``, ``$PORTABLE_CREDS_SECRET_FILE``
  or ``<home>/root.key``, at ``--kek-version``); ``root-secret:FILE`` - the root secret in FILE.
* ``signer`` - the agentKeys signer (``AGENTKEYS_SIGNER_URL``, its token and omni account from
  the configuration, never from the command line).
* anything else of the form ``NAME:VALUE`` (``kms:<key ARN>`` on s3://, ``kms:<KeyId>`` or
  ``kms:per-wallet`` on cos://) - resolved by the backend's
  driver through ``ObjectStore.key_source_for``, so the cloud's client signs with that store's
  identity (the tenant's session, or the administrator's for a fleet operation). A driver that
  does not know the spec answers ``None`` and the spec is refused by name.

No spec carries secret material: root secrets are named by path, tokens come from the
configuration, so nothing secret reaches argv.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

from .driver import ObjectStore
from .errors import ConfigurationError
from .keys import KeySource

ROOT_SECRET = "root-secret"
SIGNER = "signer"
MAX_SPEC = 2100
"""Room for ``kms:`` and the longest KMS KeyId (2,048 characters)."""


@attrs.frozen
class KeySpec:
    """A parsed spec: ``kind`` is ``root-secret``, ``signer`` or ``driver``."""

    text: str
    kind: str
    path: str | None = None
    """``root-secret:FILE``: the file (``None``: the configured root secret)."""

    def __str__(self) -> str:
        return self.text


def parse(text: str) -> KeySpec:
    """``root-secret[:FILE]``, ``signer`` or a driver's ``NAME:VALUE``; anything else refused."""
    spec = text.strip()
    if not spec or len(spec) > MAX_SPEC or any(ord(c) < 0x21 for c in spec):
        raise ConfigurationError(
            f"key source {text[:40]!r} is not a key-source spec; use root-secret, "
            "root-secret:FILE, signer or a backend's own spec such as kms:<key>"
        )
    if spec == ROOT_SECRET:
        return KeySpec(spec, ROOT_SECRET)
    if spec.startswith(ROOT_SECRET + ":"):
        path = spec[len(ROOT_SECRET) + 1 :]
        if not path:
            raise ConfigurationError("root-secret:FILE needs the file's path after the colon")
        return KeySpec(spec, ROOT_SECRET, path)
    if spec == SIGNER:
        return KeySpec(spec, SIGNER)
    name, sep, value = spec.partition(":")
    if not sep or not name or not value:
        raise ConfigurationError(
            f"key source {spec!r} is not a key-source spec; use root-secret, root-secret:FILE, "
            "signer or a backend's own spec such as kms:<key>"
        )
    return KeySpec(spec, "driver")


RootSecret = Callable[[str | None], KeySource]
"""Builds the root-secret source: ``None`` = the configured one, else the file's."""
Signer = Callable[[], KeySource]


def resolve(
    spec: KeySpec, objects: ObjectStore, *, root_secret: RootSecret, signer: Signer
) -> KeySource:
    """The key source ``spec`` names; driver specs are resolved by ``objects``' driver."""
    if spec.kind == ROOT_SECRET:
        return root_secret(spec.path)
    if spec.kind == SIGNER:
        return signer()
    source = objects.key_source_for(spec.text)
    if source is None:
        raise ConfigurationError(
            f"backend {objects.backend_id} does not know the key source {spec.text!r} (its "
            "driver resolves no such spec); use root-secret, signer, or a backend whose driver "
            "has it (s3:// resolves kms:<key ARN>; cos:// kms:<KeyId> and kms:per-wallet)"
        )
    return source


def chain(current: KeySource, previous: Sequence[KeySource]) -> KeySource:
    """Seal with ``current``; open with it or any of ``previous`` (``ChainedKeySource``)."""
    others = [p for p in previous if p is not current]
    if not others:
        return current
    from .key_chain import ChainedKeySource

    return ChainedKeySource(current, *others)
