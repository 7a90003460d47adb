"""The harness: the few lines a driver author writes so the suite can drive their driver.

The suite never constructs a driver itself. It asks the harness for two tenants' stores (built
the way real users get them, through the driver's federation path where it has one), for an
administrative view of the raw bucket (to plant, copy and corrupt blobs the way a compromised
storage layer or an insider could), and for a few optional hooks. Everything else - random
wallets, a fresh prefix per run, cleanup even when tests fail - is the suite's job, so a
harness stays small and a driver author cannot accidentally weaken a test.
"""

from __future__ import annotations

import abc
import importlib.metadata
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import attrs

from portable_creds.driver import Capabilities, ObjectStore
from portable_creds.keys import KeySource
from portable_creds.outbox import Outbox
from portable_creds.secret_key import SecretKeySource
from portable_creds.store import CredentialStore

from .flaky import FlakyStore

#: The bad identity tokens the ``credentials`` group asks a federated harness for.
BadTokenKind = Literal["forged", "expired", "wrong-audience"]
BAD_TOKEN_KINDS: tuple[BadTokenKind, ...] = ("forged", "expired", "wrong-audience")


@attrs.frozen
class HarnessContext:
    """What the suite hands a harness: which target, its configuration, a scratch directory."""

    target: str
    """The target name (``--pc-target``), one of the harness's ``targets``."""
    config: Mapping[str, Any]
    """The parsed ``--pc-config`` TOML file (empty without one)."""
    workdir: Path
    """A private (0700) scratch directory for this run, removed afterwards."""
    run_id: str
    """Random hex, unique per run."""

    @property
    def run_root(self) -> str:
        """Every object the run creates lives below ``<run_root>/``; cleanup removes it all."""
        return f"conformance/{self.run_id}"

    @property
    def prefix(self) -> str:
        """The ``CredentialStore`` prefix of the run's tenants: ``<run_root>/bots``."""
        return f"{self.run_root}/bots"


class Harness(abc.ABC):
    """Describe a driver to the conformance suite.

    The smallest harness names its driver and returns a URL; the defaults open stores through
    ``portable_creds.open_store`` (so the driver's entry-point registration is exercised too)::

        class SqliteHarness(Harness):
            driver = "sqlite"

            def url(self) -> str:
                return f"sqlite://{self.workdir / 'objects.db'}"

    Override ``open_store`` / ``admin_view`` when tenants need more than a URL (a token from
    an identity provider, an onboarding step), and the optional hooks below to unlock the
    groups that need them. Hooks left at their default make their tests skip with the reason.
    """

    driver: ClassVar[str]
    """The driver's entry-point name (``portable_creds.drivers``)."""
    targets: ClassVar[tuple[str, ...]] = ("default",)
    """Named environments this harness can run against; the first is the default."""
    overrides: ClassVar[Mapping[str, str]] = {}
    """Claims withdrawn on purpose, each with a label that ends up in the report.

    Keys are capability names (``"if_match"``, ``"server_side_isolation"``,
    ``"scoped_credentials"``, ...) or group names (``"isolation-storage"``); values say why,
    e.g. ``{"if_match": "backend X has no if-match"}``. Overrides only ever turn a claim off:
    a harness cannot make the suite believe more than the store declares.
    """

    def __init__(self, context: HarnessContext) -> None:
        self.context = context
        self.keys: KeySource = SecretKeySource(os.urandom(32))
        """One random root secret per run, shared by both tenants (as in a real deployment)."""

    # -- convenience -----------------------------------------------------------------------

    @property
    def target(self) -> str:
        return self.context.target

    @property
    def config(self) -> Mapping[str, Any]:
        return self.context.config

    @property
    def workdir(self) -> Path:
        return self.context.workdir

    @classmethod
    def unavailable_reason(cls, target: str) -> str | None:
        """Why ``target`` cannot run on this machine (a missing server binary...), else None.

        ``run_all`` reports such targets loudly instead of running them.
        """
        return None

    def versions(self) -> dict[str, str]:
        """Versions worth recording in the report: the distributions that register this
        driver and this harness (found through their entry points)."""
        out: dict[str, str] = {}
        me = f"{type(self).__module__}:{type(self).__qualname__}"
        for group, wanted in (("portable_creds.drivers", None),
                              ("portable_creds_conformance.harnesses", me)):
            for ep in importlib.metadata.entry_points(group=group):
                if ep.name != self.driver or (wanted is not None and ep.value != wanted):
                    continue
                if ep.dist is not None:
                    out[ep.dist.name] = ep.dist.version
        return out

    # -- lifecycle ---------------------------------------------------------------------------

    def setup(self) -> None:  # noqa: B027 - optional hook
        """Start what the target needs (a server, an identity provider). Called once."""

    def cleanup(self) -> None:  # noqa: B027 - optional hook
        """Stop what ``setup`` started. Called once, even when tests failed.

        The suite has already deleted every object below ``context.run_root`` through the
        admin view; only remove what the harness itself created (onboarded tenants...).
        """

    # -- the stores --------------------------------------------------------------------------

    def url(self) -> str:
        """The store URL the default ``open_store`` / ``admin_view`` use."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement url() or override open_store/admin_view"
        )

    def open_store(self, wallet: str, *, prefix: str) -> CredentialStore:
        """Tenant ``wallet``'s store, opened as a real user would (federation included)."""
        import portable_creds

        return portable_creds.open_store(
            self.url(), wallet=wallet, keys=self.keys, home=self.workdir / "home", prefix=prefix
        )

    def admin_view(self) -> ObjectStore:
        """An unscoped ``ObjectStore`` over the raw bucket (the driver with ``wallet=None``)."""
        from portable_creds.registry import open_object_store

        return open_object_store(self.url(), wallet=None)

    def capabilities(self, store: CredentialStore) -> Capabilities:
        """What the driver declares for tenant stores (before ``overrides``)."""
        return store.objects.capabilities

    def rebuild(
        self,
        store: CredentialStore,
        *,
        objects: ObjectStore | None = None,
        keys: KeySource | None = None,
        wallet: str | None = None,
        outbox: Outbox | None = None,
        max_payload: int | None = None,
    ) -> CredentialStore:
        """The same tenant's store with parts swapped.

        The suite uses it to inject a failing ``ObjectStore`` (outbox), a fixed key source
        (isolation-crypto: prove the path binding on its own) or a smaller maximum payload.
        Override only if your stores are not plain ``CredentialStore`` objects.
        """
        return CredentialStore(
            objects if objects is not None else store.objects,
            keys if keys is not None else store.keys,
            wallet if wallet is not None else store.wallet,
            prefix=store.prefix,
            max_payload=max_payload if max_payload is not None else store.max_payload,
            outbox=outbox if outbox is not None else store.outbox,
        )

    # -- optional hooks ----------------------------------------------------------------------

    def unguarded_objects(self, store: CredentialStore) -> ObjectStore:
        """The tenant's identity without any client-side tenant check, for isolation-storage.

        If the driver double-checks the tenant prefix in the client (defence in depth),
        return a view without that check, holding the same credentials: the group must see
        the *storage service* refuse. The default assumes no client-side check.
        """
        return store.objects

    def failing_objects(
        self, store: CredentialStore, *, fail_puts: int, after_write: bool
    ) -> ObjectStore:
        """An ``ObjectStore`` whose next ``fail_puts`` puts fail (outbox group).

        ``after_write=True``: the write reaches the backend but the caller sees the error (a
        lost response). The default wraps the tenant's store in ``FlakyStore``; a driver can
        return something more realistic (a dead endpoint, a proxy dropping connections).
        """
        return FlakyStore(store.objects, fail_puts=fail_puts, after_write=after_write)

    def expire_credentials(self, store: CredentialStore) -> None:
        """Make ``store``'s temporary credentials expire now (credentials group)."""
        raise NotImplementedError("the harness cannot expire temporary credentials")

    def store_with_bad_token(
        self, wallet: str, *, prefix: str, kind: BadTokenKind
    ) -> CredentialStore:
        """A store for ``wallet`` whose identity token is forged / expired / for another
        audience: the identity service must refuse it (credentials group)."""
        raise NotImplementedError(f"the harness cannot produce a {kind} token")

    def scoped(
        self, store: CredentialStore, *, services: list[str], read_only: bool
    ) -> CredentialStore:
        """A store limited to ``services`` (scoping group, issue 8)."""
        method = getattr(store, "scoped", None)
        if method is None:
            raise NotImplementedError("CredentialStore.scoped is not available")
        result = method(services=services, read_only=read_only)
        if not isinstance(result, CredentialStore):
            raise TypeError("scoped() did not return a CredentialStore")
        return result
