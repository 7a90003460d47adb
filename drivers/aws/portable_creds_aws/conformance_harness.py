"""Conformance harness for the ``s3`` driver: targets ``moto`` and ``rgw``.

* ``moto``: storage semantics only. moto evaluates no IAM and accepts any token, so tenant
  stores use static keys and declare neither federation nor server-side isolation; the
  isolation-storage and credentials groups skip there, by design.
* ``moto-kms``: the same as ``moto`` with custody in (moto's) AWS KMS: every tenant store
  seals with ``AwsKmsKeySource`` (envelope suite 0x0002), so vectors, roundtrip,
  isolation-crypto and integrity run with KMS-wrapped data keys and moto's encryption-context
  binding. moto evaluates no key policy.
* ``rgw``: everything. A local Ceph RGW and OIDC issuer are started, the provisioner applies the
  default RGW deployment (``role-per-tenant``) for the run's prefix and onboards each tenant
  (one role per wallet and prefix), and tenant stores are
  opened through ``portable_creds.open_store`` with a token, so every request goes through the
  real OIDC -> STS -> S3 path and isolation is enforced by RGW itself.

Registered under the entry-point group ``portable_creds_conformance.harnesses`` as ``s3``.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any, ClassVar

import attrs

try:
    from portable_creds_conformance.harness import BadTokenKind, Harness
except ImportError as exc:  # an optional dependency: say which extra brings it
    raise ImportError(
        "portable_creds_aws.conformance_harness needs the conformance suite: "
        "pip install 'portable-creds-aws[conformance]'"
    ) from exc

from portable_creds.driver import ObjectStore, StoreTarget
from portable_creds.store import CredentialStore

from .driver import S3Driver
from .objectstore import S3ObjectStore

REGION = "us-east-1"


class S3Harness(Harness):
    driver = "s3"
    targets: ClassVar[tuple[str, ...]] = ("moto", "moto-kms", "rgw")

    @property
    def _moto(self) -> bool:
        return self.target in ("moto", "moto-kms")

    @classmethod
    def unavailable_reason(cls, target: str) -> str | None:
        if target == "rgw":
            from .testing.rgw import INSTALL_HINT, missing_binaries

            missing = missing_binaries()
            if missing:
                return f"Ceph binaries missing ({', '.join(missing)}): {INSTALL_HINT}"
        if target in ("moto", "moto-kms"):
            try:
                import moto.server  # noqa: F401
            except ImportError:
                return (
                    "moto[server] is not installed: "
                    "pip install 'portable-creds-aws[conformance]'"
                )
        return None

    # ------------------------------------------------------------------ lifecycle
    def setup(self) -> None:
        self._stop: list[Any] = []
        self._onboarded: set[tuple[str, str]] = set()
        if self._moto:
            self._setup_moto()
        else:
            self._setup_rgw()

    def cleanup(self) -> None:
        """Stop what setup started; the RGW cluster (tenants, policies, data) goes with it."""
        for stop in reversed(getattr(self, "_stop", [])):
            stop()

    def _setup_moto(self) -> None:
        import boto3
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        self._stop.append(server.stop)
        host, port = server.get_host_and_port()
        self._endpoint = f"http://{host}:{port}"
        self._bucket = f"pc-conf-{secrets.token_hex(4)}"
        self._admin_keys = {"access_key": "testing", "secret_key": "testing"}
        boto3.client(
            "s3",
            endpoint_url=self._endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket=self._bucket)
        if self.target == "moto-kms":
            self._setup_kms()

    def _setup_kms(self) -> None:
        from .clients import static_credentials
        from .kms import AwsKmsKeySource, kms_client
        from .settings import parse_settings

        settings = parse_settings(
            StoreTarget(url=self._admin_url(), wallet=None, options=self._admin_keys)
        )
        client = kms_client(settings, static_credentials(settings))
        arn = client.create_key(Description="portable-creds conformance")["KeyMetadata"]["Arn"]
        self.keys = AwsKmsKeySource(str(arn), client)

    def _setup_rgw(self) -> None:
        from .admin.policies import Deployment
        from .testing.oidc import OidcIssuer
        from .testing.rgw import RgwCluster

        cluster = RgwCluster()
        rgw = cluster.start()
        self._stop.append(cluster.stop)
        self._issuer = OidcIssuer().start()
        self._stop.append(self._issuer.stop)
        self._endpoint = rgw.url
        self._bucket = "pc-conformance"
        self._admin_keys = {"access_key": rgw.admin_access_key, "secret_key": rgw.admin_secret_key}
        self._deployment = Deployment(
            bucket=self._bucket,
            issuer=self._issuer.iss,
            flavor="rgw",
            strategy="role-per-tenant",
            admin_principal=f"arn:aws:iam:::user/{rgw.admin_user}",
            thumbprints=(self._issuer.thumbprint,),
            prefix=self.context.prefix,
        )
        self._provisioner(self.context.prefix).apply()

    def _provisioner(self, prefix: str) -> Any:
        from .admin.provisioner import Provisioner
        from .clients import iam_client, s3_client, static_credentials
        from .settings import parse_settings

        settings = parse_settings(
            StoreTarget(url=self._admin_url(), wallet=None, options=self._admin_keys)
        )
        creds = static_credentials(settings)
        return Provisioner(
            self._deployment_for(prefix),
            iam=iam_client(settings, creds),
            s3=s3_client(settings, creds),
            region=REGION,
        )

    def _deployment_for(self, prefix: str) -> Any:
        """One role namespace per prefix: a wallet's role grants exactly one prefix, so a
        wallet used under two prefixes needs two roles (``<role_name>-<wallet>``)."""
        import hashlib

        tag = hashlib.sha256(prefix.encode()).hexdigest()[:12]
        return attrs.evolve(self._deployment, prefix=prefix, role_name=f"pc-{tag}")

    # ------------------------------------------------------------------ stores
    def _admin_url(self) -> str:
        return f"s3://{self._bucket}?region={REGION}&endpoint={self._endpoint}"

    def url(self, prefix: str | None = None) -> str:
        if self._moto:
            return self._admin_url()
        d = self._deployment_for(prefix or self.context.prefix)
        return f"{self._admin_url()}&role_arn={d.role_arn}"

    def _open(
        self, wallet: str, prefix: str, token: Any, *, outbox: bool | None = None
    ) -> CredentialStore:
        import portable_creds

        options: dict[str, Any] = {}
        if self._moto:
            options = {**self._admin_keys, "allow_static_tenant": True}
        return portable_creds.open_store(
            self.url(prefix),
            wallet=wallet,
            token=token,
            keys=self.keys,
            home=self.workdir / "home",
            prefix=prefix,
            outbox=outbox,
            **options,
        )

    def open_store(self, wallet: str, *, prefix: str) -> CredentialStore:
        if self._moto:
            return self._open(wallet, prefix, None)
        w = wallet.lower()
        if (w, prefix) not in self._onboarded:
            self._provisioner(prefix).onboard(w)
            self._onboarded.add((w, prefix))
        issuer = self._issuer
        return self._open(wallet, prefix, lambda: issuer.token(w))

    def admin_view(self) -> ObjectStore:
        return S3Driver().open_object_store(
            StoreTarget(url=self._admin_url(), wallet=None, options=self._admin_keys)
        )

    # ------------------------------------------------------------------ hooks
    def expire_credentials(self, store: CredentialStore) -> None:
        """Drop the cached session so the next call must exchange the token again.

        Real server-side expiry (5-second RGW sessions, and a lagging client clock that makes
        the driver take RGW's 403 for expiry) is proven in tests/aws/test_rgw_federation.py.
        """
        objects = store.objects
        if not isinstance(objects, S3ObjectStore) or objects.provider is None:
            raise NotImplementedError("this store has no temporary credentials (static keys)")
        objects.provider.invalidate()

    def scoped(
        self, store: CredentialStore, *, services: list[str], read_only: bool
    ) -> CredentialStore:
        """The tenant's store narrowed by a session policy (cloud enforcement, never client)."""
        objects = store.objects
        if not isinstance(objects, S3ObjectStore) or objects.provider is None:
            raise NotImplementedError(
                "static-key stores cannot be narrowed by the service; scoping runs on rgw"
            )
        return store.scoped(services, read_only=read_only, enforcement="cloud")

    def unguarded_objects(self, store: CredentialStore) -> ObjectStore:
        """The same identity without the static-key client guard (federated stores have none,
        scoped ones included: their limits live in the session policy)."""
        objects = store.objects
        if not isinstance(objects, S3ObjectStore):
            return objects
        if objects.provider is not None:
            return objects
        return S3ObjectStore(objects.settings, objects.client, wallet=None)

    def store_with_bad_token(
        self, wallet: str, *, prefix: str, kind: BadTokenKind
    ) -> CredentialStore:
        if self.target != "rgw":
            raise NotImplementedError("moto accepts every token; bad tokens are tested on rgw")
        from .testing.oidc import SigningKey

        w = wallet.lower()
        issuer = self._issuer
        make = {
            "forged": lambda: issuer.token(w, key=SigningKey()),
            "expired": lambda: issuer.token(w, ttl=-120),
            "wrong-audience": lambda: issuer.token(w, audience="not-sts"),
        }[kind]
        # No outbox: a refused token must surface as the typed refusal, not as a sealed write
        # parked locally for a later flush (which the same bad token could never deliver).
        return self._open(wallet, prefix, make, outbox=False)
