"""Conformance harness for the ``cos`` driver against the Tencent double.

Targets ``double-role-per-tenant``, ``double-token-vendor`` and ``double-kms``: one double per
run, provisioned
with the driver's own provisioner for the run's prefix; tenants are onboarded on first use
(role-per-tenant needs a CAM role per wallet). In token-vendor mode the vendor runs as an HTTP
service (``VendorServer``) holding the vendor key; tenant stores only know its URL. Tenant
isolation is enforced by the double's CAM evaluation, which is what isolation-storage must see.

``double-kms`` is role-per-tenant with custody in the double's KMS: the provisioner runs with
per-tenant keys (``Deployment(kms=True)``), every tenant store is opened with
``kms_key=<its wallet's KeyId>`` and no other key source, so it seals with
``TencentKmsKeySource`` (envelope suite 0x0002) signing as the tenant's session; vectors,
roundtrip, isolation-crypto and integrity run on KMS-wrapped data keys, and every unwrap is
CAM-evaluated on the tenant's key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar

try:
    from portable_creds_conformance.harness import BadTokenKind, Harness
except ImportError as exc:  # an optional dependency: say which extra brings it
    raise ImportError(
        "portable_creds_tencent.conformance_harness needs the conformance suite: "
        "pip install 'portable-creds-tencent[conformance]'"
    ) from exc

from portable_creds.driver import ObjectStore, StoreTarget
from portable_creds.keys import KeySource
from portable_creds.scoped import ClientScopedStore
from portable_creds.store import CredentialStore

from .admin import Deployment, Provisioner
from .cos_store import CosObjectStore
from .driver import build_vendor
from .settings import StaticKeys, parse_settings
from .testing import AccessKey, TencentDouble, TestIdentityProvider
from .vendor_service import VendorServer

ISSUER = "https://oidc.conformance.portable-creds.test"
AUDIENCE = "portable-creds-conformance"
DURATION = 900


class CosHarness(Harness):
    driver = "cos"
    targets: ClassVar[tuple[str, ...]] = (
        "double-role-per-tenant",
        "double-token-vendor",
        "double-kms",
    )

    _double: TencentDouble | None = None

    @property
    def mode(self) -> str:
        return "role-per-tenant" if self.kms else self.target.removeprefix("double-")

    @property
    def kms(self) -> bool:
        return self.target == "double-kms"

    def setup(self) -> None:
        d = TencentDouble().start()
        self._double = d
        self.idp = TestIdentityProvider(ISSUER)
        self.bucket = d.create_bucket("conformance")
        self.vendor: AccessKey = d.add_user("token-vendor")
        d.attach_user_policy(
            self.vendor.uin,
            "vendor-may-assume",
            {
                "version": "2.0",
                "statement": [
                    {
                        "effect": "allow",
                        "action": ["name/sts:AssumeRole"],
                        "resource": [f"qcs::cam::uin/{d.owner_uin}:roleName/portable-creds-vendor"],
                    }
                ],
            },
        )
        self.base_url = (
            f"cos://{self.bucket}?region={d.region}&owner_uin={d.owner_uin}"
            f"&scheme=http&ip=127.0.0.1&port={d.port}&prefix={self.context.prefix}"
            f"&duration={DURATION}&if_match=true"
        )
        self.root = StaticKeys(d.root.secret_id, d.root.secret_key)
        deployment = Deployment(
            settings=parse_settings(
                StoreTarget(url=self.base_url, wallet="0x" + "0" * 40, options={})
            ),
            issuer=ISSUER,
            audiences=(AUDIENCE,),
            jwks=self.idp.jwks(),
            vendor_principals=(f"qcs::cam::uin/{d.owner_uin}:uin/{self.vendor.uin}",),
            require_tls=False,
            allowed_cidrs=("127.0.0.0/8",),
            kms=self.kms,
        )
        self.provisioner = Provisioner(deployment, self.root)
        self.provisioner.apply()
        self._onboarded: set[str] = set()
        self._vendor_server: VendorServer | None = None
        if self.mode == "token-vendor":
            # The vendor key lives only in this server; tenants reach it over HTTP.
            vendor_url = (
                f"{self.base_url}&mode=token-vendor&issuer={ISSUER}&audience={AUDIENCE}"
                f"&jwks_url={d.jwks_url('portable-creds')}"
            )
            vendor = build_vendor(
                parse_settings(StoreTarget(url=vendor_url, wallet="0x" + "0" * 40)),
                {"secret_id": self.vendor.secret_id, "secret_key": self.vendor.secret_key},
            )
            self._vendor_server = VendorServer(vendor).start()

    def cleanup(self) -> None:
        server = getattr(self, "_vendor_server", None)
        if server is not None:
            server.stop()
            self._vendor_server = None
        if self._double is not None:
            self._double.stop()
            self._double = None

    @property
    def double(self) -> TencentDouble:
        if self._double is None:
            raise RuntimeError("the harness was not set up")
        return self._double

    def versions(self) -> dict[str, str]:
        out = super().versions()
        out["tencent-double"] = "in-process (portable_creds_tencent.testing)"
        return out

    # -- stores ---------------------------------------------------------------------------------
    def url(self) -> str:
        if self._vendor_server is not None:
            return f"{self.base_url}&mode=token-vendor&vendor_url={self._vendor_server.url}"
        return f"{self.base_url}&mode=role-per-tenant"

    def _token(self, wallet: str, kind: BadTokenKind | None = None) -> Callable[[], str]:
        d = self.double
        if kind == "forged":
            forger = TestIdentityProvider(ISSUER, kid=self.idp.kid)
            return lambda: forger.mint(wallet, AUDIENCE, now=d.now())
        if kind == "expired":
            # Expired by both clocks: the double's (STS) and the wall clock (a token vendor).
            return lambda: self.idp.mint(
                wallet, AUDIENCE, now=min(time.time(), d.now()) - 3600, lifetime=600
            )
        if kind == "wrong-audience":
            return lambda: self.idp.mint(wallet, "someone-else", now=d.now())
        # Minted on the double's clock, so ``expire_credentials`` (which moves that clock)
        # expires the STS credentials without expiring the tenant's fresh tokens.
        return lambda: self.idp.mint(wallet, AUDIENCE, now=d.now(), lifetime=3600)

    def _open(self, wallet: str, prefix: str, token: Callable[[], str]) -> CredentialStore:
        import portable_creds

        if prefix != self.context.prefix:
            raise ValueError("the cos harness provisions CAM for the run's prefix only")
        if wallet not in self._onboarded:
            self.provisioner.onboard(wallet)
            self._onboarded.add(wallet)
        url = self.url()
        keys_arg: KeySource | None = self.keys
        if self.kms:
            key = self.provisioner.tenant_key(wallet)
            assert key is not None
            url, keys_arg = f"{url}&kms_key={key['KeyId']}", None
        return portable_creds.open_store(
            url,
            wallet=wallet,
            token=token,
            keys=keys_arg,
            home=self.workdir / "home",
            prefix=prefix,
        )

    def open_store(self, wallet: str, *, prefix: str) -> CredentialStore:
        return self._open(wallet, prefix, self._token(wallet))

    def admin_view(self) -> ObjectStore:
        from portable_creds.registry import open_object_store

        return open_object_store(
            self.base_url,
            wallet=None,
            secret_id=self.root.secret_id,
            secret_key=self.root.secret_key,
        )

    # -- hooks ----------------------------------------------------------------------------------
    def expire_credentials(self, store: CredentialStore) -> None:
        self.double.advance(DURATION + 60)

    def store_with_bad_token(
        self, wallet: str, *, prefix: str, kind: BadTokenKind
    ) -> CredentialStore:
        return self._open(wallet, prefix, self._token(wallet, kind))

    def scoped(
        self, store: CredentialStore, *, services: list[str], read_only: bool
    ) -> CredentialStore:
        """The tenant's store narrowed by the vendor's inline session policy (cloud only).

        Never the client-side fallback: the scoping group must see CAM refuse.
        """
        objects = store.objects
        if (
            not isinstance(objects, CosObjectStore)
            or objects.capabilities.scoped_credentials != "cloud"
        ):
            raise NotImplementedError(
                "role-per-tenant sessions come from AssumeRoleWithWebIdentity, which takes no "
                "Policy, so CAM cannot narrow them; scoping runs on double-token-vendor"
            )
        return store.scoped(services, read_only=read_only, enforcement="cloud")

    def unguarded_objects(self, store: CredentialStore) -> ObjectStore:
        """The same credentials with no client-side check.

        ``CosObjectStore`` has none (tenant prefixes and scopes live in CAM policies), so its
        view is itself; a client-side scope is stripped to the credentials underneath, which
        is exactly what a holder of them could do.
        """
        objects = store.objects
        if isinstance(objects, ClientScopedStore):
            return objects.inner
        return objects
