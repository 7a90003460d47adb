"""A throw-away deployment for the live conformance run: real AWS, or Ceph RGW in the tests.

``tools/conformance_live.py`` (``make conformance-live``) runs the conformance suite with
``LiveS3Harness`` and a config file naming the environment. ``setup`` deploys a fresh bucket,
OIDC provider and data role with the provisioner (``apply``), tenants are onboarded with
``onboard`` as the suite opens them, and ``cleanup`` deletes all of it (``teardown``), unless
``keep`` is set. The environment differs only in where the service is, whose keys deploy, and
where the token issuer lives:

* ``aws``: the administrator's credentials come from a named profile (botocore's own config
  files); AWS STS must fetch the issuer's keys over the internet, so the issuer is *hosted in a
  second throw-away bucket* (discovery document and JWKS, public-read by bucket policy).
* ``rgw``: endpoint and admin keys from the config file; the issuer is a local ``OidcIssuer``,
  which RGW reaches on loopback.

Everything else (the deployment, onboarding, the suite, the teardown) is the same code, which
is what ``tests/aws/test_conformance_live.py`` runs against RGW in ``make test``.

Every name the run creates is written to ``state_file`` *before* it is created, so a crashed
run can still be torn down (``tools/conformance_live.py --teardown STATE``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs

from portable_creds.driver import StoreTarget
from portable_creds.errors import ConfigurationError

from .conformance_harness import S3Harness

ISSUER_KEYS = "keys.json"
DISCOVERY = ".well-known/openid-configuration"
PROPAGATION_SECONDS = 60


@attrs.frozen
class LiveEnvironment:
    """Where to deploy, parsed from the run's config (TOML/JSON mapping)."""

    flavor: str
    region: str
    name: str
    """Run name: the bucket and role names derive from it (``pc-live-<random>``)."""
    state_file: Path
    keep: bool = False
    endpoint: str | None = None
    profile: str | None = None
    access_key: str | None = attrs.field(default=None, repr=False)
    secret_key: str | None = attrs.field(default=None, repr=False)
    admin_user: str | None = None

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> LiveEnvironment:
        flavor = str(cfg.get("flavor", ""))
        if flavor not in ("aws", "rgw"):
            raise ConfigurationError("live config: flavor must be aws or rgw")
        if flavor == "rgw" and not (cfg.get("endpoint") and cfg.get("access_key")):
            raise ConfigurationError("live config: rgw needs endpoint, access_key, secret_key")
        if not cfg.get("name") or not cfg.get("state_file"):
            raise ConfigurationError("live config: name and state_file are required")
        return cls(
            flavor=flavor,
            region=str(cfg.get("region") or "us-east-1"),
            name=str(cfg["name"]),
            state_file=Path(str(cfg["state_file"])),
            keep=bool(cfg.get("keep", False)),
            endpoint=cfg.get("endpoint") or None,
            profile=cfg.get("profile") or None,
            access_key=cfg.get("access_key") or None,
            secret_key=cfg.get("secret_key") or None,
            admin_user=cfg.get("admin_user") or None,
        )

    @property
    def bucket(self) -> str:
        return self.name

    @property
    def issuer_bucket(self) -> str | None:
        return f"{self.name}-oidc" if self.flavor == "aws" else None

    @property
    def role_name(self) -> str:
        return f"{self.name}-data-role"

    def admin_keys(self) -> dict[str, str]:
        """The administrator's keys as store options: static (RGW) or the profile's (AWS),
        resolved in this process only (never on a command line or in a child's environment)."""
        if self.access_key and self.secret_key:
            return {"access_key": self.access_key, "secret_key": self.secret_key}
        import boto3

        creds = boto3.Session(profile_name=self.profile).get_credentials()
        if creds is None:
            raise ConfigurationError(
                f"no AWS credentials for profile {self.profile or 'default'!r}"
            )
        frozen = creds.get_frozen_credentials()
        keys = {"access_key": frozen.access_key, "secret_key": frozen.secret_key}
        if frozen.token:
            keys["session_token"] = frozen.token
        return keys

    def admin_url(self, bucket: str | None = None) -> str:
        query = f"region={self.region}" + (f"&endpoint={self.endpoint}" if self.endpoint else "")
        return f"s3://{bucket or self.bucket}?{query}"


# ---------------------------------------------------------------------- clients
def admin_clients(env: LiveEnvironment) -> tuple[Any, Any, Any]:
    """(s3, iam, sts) clients signing with the administrator's credentials."""
    import boto3

    from .clients import iam_client, s3_client, static_credentials
    from .settings import parse_settings

    keys = env.admin_keys()
    settings = parse_settings(StoreTarget(url=env.admin_url(), wallet=None, options=keys))
    creds = static_credentials(settings)
    sts = boto3.client(
        "sts",
        region_name=env.region,
        endpoint_url=env.endpoint,
        aws_access_key_id=keys["access_key"],
        aws_secret_access_key=keys["secret_key"],
        aws_session_token=keys.get("session_token"),
    )
    return s3_client(settings, creds), iam_client(settings, creds), sts


# ---------------------------------------------------------------------- teardown
def _quiet(fn: Callable[[], Any], done: list[str], line: str) -> None:
    """Run one teardown step; a missing resource is fine (teardown is idempotent)."""
    from botocore.exceptions import ClientError

    try:
        fn()
        done.append(line)
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = exc.response.get("Error", {}).get("Code", "")
        if status == 404 or code in ("NoSuchBucket", "NoSuchEntity", "NoSuchKey"):
            return
        raise


def _empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every object version and delete marker (plain objects on unversioned buckets)."""
    count = 0
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket):
        items = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        ]
        for i in range(0, len(items), 1000):
            resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": items[i : i + 1000]})
            errors = resp.get("Errors", [])
            if errors:  # a partial failure is reported, not hidden until DeleteBucket refuses
                first = errors[0]
                raise RuntimeError(
                    f"could not delete {len(errors)} object(s) in {bucket}, e.g. "
                    f"{first.get('Key')!r}: {first.get('Code')} {first.get('Message', '')}"
                )
            count += len(items[i : i + 1000])
    return count


def teardown(state: Mapping[str, Any], s3: Any, iam: Any) -> list[str]:
    """Delete everything ``state`` names; safe to run again (and after a crash)."""
    done: list[str] = []
    role = state.get("role_name")
    if role:
        names: list[str] = []
        with contextlib.suppress(Exception):
            names = iam.list_role_policies(RoleName=role).get("PolicyNames", [])
        for name in names:
            _quiet(functools.partial(iam.delete_role_policy, RoleName=role, PolicyName=name),
                   done, f"deleted role policy {name}")  # fmt: skip
        _quiet(lambda: iam.delete_role(RoleName=role), done, f"deleted role {role}")
    provider = state.get("provider_arn")
    if provider:
        _quiet(
            lambda: iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=provider),
            done,
            f"deleted OIDC provider {provider}",
        )
    for bucket in state.get("buckets", []):
        def empty(b: str = bucket) -> None:
            n = _empty_bucket(s3, b)
            if n:
                done.append(f"deleted {n} object version(s) in {b}")

        _quiet(empty, done, f"emptied {bucket}")
        _quiet(functools.partial(s3.delete_bucket, Bucket=bucket), done,
               f"deleted bucket {bucket}")  # fmt: skip
    return [line for line in done if not line.startswith("emptied")]


def write_state(path: Path, state: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(dict(state), indent=2, sort_keys=True))
    path.chmod(0o600)


# ---------------------------------------------------------------------- the issuer
class HostedIssuer:
    """An OIDC issuer whose discovery document and JWKS live in a public-read S3 bucket.

    AWS STS fetches ``<iss>/.well-known/openid-configuration`` and the JWKS it names over
    HTTPS; a bucket's own URL (``https://BUCKET.s3.REGION.amazonaws.com``) serves both. The
    signing key never leaves this process; tokens are minted by the wrapped ``OidcIssuer``
    with ``iss`` set to the bucket URL.
    """

    def __init__(self, local: Any, iss: str) -> None:
        self._local = local
        self.iss = iss
        self.thumbprint = local.thumbprint

    def token(self, wallet: str, **kwargs: Any) -> str:
        kwargs.setdefault("issuer", self.iss)
        return str(self._local.token(wallet, **kwargs))

    def documents(self) -> dict[str, dict[str, Any]]:
        return {
            DISCOVERY: {
                "issuer": self.iss,
                "jwks_uri": f"{self.iss}/{ISSUER_KEYS}",
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256"],
            },
            ISSUER_KEYS: {"keys": [self._local.key.jwk()]},
        }

    def publish(self, s3: Any, bucket: str, region: str) -> None:
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(**kwargs)
        # Public read of exactly the two documents: the only public thing the run creates.
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": False,
                "RestrictPublicBuckets": False,
            },
        )
        s3.put_bucket_policy(
            Bucket=bucket,
            Policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "PublicIssuerDocuments",
                            "Effect": "Allow",
                            "Principal": "*",
                            "Action": "s3:GetObject",
                            "Resource": [
                                f"arn:aws:s3:::{bucket}/{DISCOVERY}",
                                f"arn:aws:s3:::{bucket}/{ISSUER_KEYS}",
                            ],
                        }
                    ],
                }
            ),
        )
        for key, doc in self.documents().items():
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=json.dumps(doc).encode(),
                ContentType="application/json",
            )


# ---------------------------------------------------------------------- the harness
class LiveS3Harness(S3Harness):
    """The ``s3`` harness on a deployment this run creates and removes (target ``live``)."""

    targets: ClassVar[tuple[str, ...]] = ("live",)

    @classmethod
    def unavailable_reason(cls, target: str) -> str | None:
        return None

    def setup(self) -> None:
        from .admin.policies import Deployment
        from .testing.oidc import OidcIssuer

        self._stop: list[Any] = []
        self._onboarded: set[tuple[str, str]] = set()
        self._env = env = LiveEnvironment.from_config(self.config)
        self._admin_keys = env.admin_keys()
        self._endpoint = env.endpoint or ""
        self._bucket = env.bucket
        s3, iam, sts = admin_clients(env)
        self._s3, self._iam = s3, iam
        local = OidcIssuer()
        account_id = ""
        admin: str | None = None
        if env.flavor == "aws":
            account_id = str(sts.get_caller_identity()["Account"])
            # admin stays None: the rendered default, the account root (any principal of the
            # account whose own policies allow it; the profile's identity is one).
            assert env.issuer_bucket is not None
            iss = f"https://{env.issuer_bucket}.s3.{env.region}.amazonaws.com"
            issuer: Any = HostedIssuer(local, iss)
        else:
            issuer = local.start()
            self._stop.append(local.stop)
            admin = f"arn:aws:iam:::user/{env.admin_user}" if env.admin_user else None
        self._issuer = issuer
        self._deployment = Deployment(
            bucket=env.bucket,
            issuer=issuer.iss,
            flavor=env.flavor,  # type: ignore[arg-type]
            strategy="per-tenant",
            account_id=account_id,
            role_name=env.role_name,
            admin_principal=admin,
            thumbprints=(issuer.thumbprint,),
            prefix=self.context.prefix,
            max_session_duration=3600,
        )
        # Names first, resources second: a crash from here on can still be torn down.
        write_state(
            env.state_file,
            {
                "flavor": env.flavor,
                "region": env.region,
                "endpoint": env.endpoint,
                "profile": env.profile,
                "role_name": env.role_name,
                "provider_arn": self._deployment.provider_arn,
                "buckets": [b for b in (env.bucket, env.issuer_bucket) if b],
            },
        )
        if isinstance(issuer, HostedIssuer):
            assert env.issuer_bucket is not None
            issuer.publish(s3, env.issuer_bucket, env.region)
        self._provisioner(self.context.prefix).apply()

    def verify_deployment(self) -> list[str]:
        """``verify``'s drift lines for the run's deployment (empty: as rendered)."""
        return list(self._provisioner(self.context.prefix).verify())

    def cleanup(self) -> None:
        """Tear the deployment down (unless ``keep``), then stop the local issuer."""
        try:
            env = getattr(self, "_env", None)
            if env is not None and not env.keep and env.state_file.exists():
                state = json.loads(env.state_file.read_text())
                # Recorded for the runner (pytest captures this process's output).
                state["torn_down"] = teardown(state, self._s3, self._iam)
                write_state(env.state_file, state)
        finally:
            super().cleanup()

    def open_store(self, wallet: str, *, prefix: str) -> Any:
        """The tenant's store, once the service lets it in.

        IAM is eventually consistent: a role or role policy created a moment ago may not
        admit its first requests yet (AWS documents seconds of propagation). So the store is
        handed out only after one listing of the tenant's own prefix succeeded, within
        ``PROPAGATION_SECONDS``; on RGW the first attempt does.
        """
        from portable_creds.errors import AccessDenied, InvalidToken

        store = super().open_store(wallet, prefix=prefix)
        deadline = time.monotonic() + PROPAGATION_SECONDS
        while True:
            try:
                list(store.list())
                return store
            except (AccessDenied, InvalidToken):
                if time.monotonic() > deadline:
                    store.close()
                    raise
                time.sleep(2)

    def _deployment_for(self, prefix: str) -> Any:
        """The run's one shared role (``per-tenant``) for every prefix: unlike the offline
        ``rgw`` target, a live run creates exactly the role its state file names."""
        return attrs.evolve(self._deployment, prefix=prefix)

    def _provisioner(self, prefix: str) -> Any:
        from .admin.provisioner import Provisioner

        return Provisioner(
            self._deployment_for(prefix),
            iam=self._iam,
            s3=self._s3,
            region=self._env.region,
        )

    def _admin_url(self) -> str:
        return self._env.admin_url()


def run_name() -> str:
    """A fresh, valid bucket/role name for one run."""
    return f"pc-live-{secrets.token_hex(5)}"
