"""The ``cos`` conformance harness on a deployment this run creates and removes.

``tools/conformance_live.py`` (``make conformance-live``) runs the suite with ``LiveCosHarness``
(target ``live``, mode ``role-per-tenant``) and a config naming the environment:

* ``tencent``: real COS/CAM/STS with the API key of a profile in ``~/.tencentcloud/credentials``
  (the SDK's own file); the bucket is created with COS ``PUT Bucket``.
* ``double``: the signature-verifying Tencent double, started in this process; its COS has no
  ``PUT Bucket``, so the bucket is the one thing created through the double's own helper.

Everything else is the driver's public admin API, the same for both: ``Provisioner.apply``
(OIDC provider, bucket policy, lifecycle), ``onboard`` per tenant (a CAM role and policy each),
and the teardown: ``offboard(delete_data=True)`` per tenant, ``DeleteOIDCConfig``, then (live)
the bucket. Names are written to ``state_file`` before they are created, so a crashed run can
be torn down afterwards (``tools/conformance_live.py --teardown STATE``).
"""

from __future__ import annotations

import configparser
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

try:
    from portable_creds_conformance.harness import BadTokenKind
except ImportError as exc:  # an optional dependency: say which extra brings it
    raise ImportError(
        "portable_creds_tencent.live_harness needs the conformance suite: "
        "pip install 'portable-creds-tencent[conformance]'"
    ) from exc

from portable_creds.driver import StoreTarget
from portable_creds.errors import ConfigurationError, NotFound, PortableCredsError

from .admin import Deployment, Provisioner
from .conformance_harness import AUDIENCE, DURATION, ISSUER, CosHarness
from .settings import StaticKeys, parse_settings
from .testing import TencentDouble, TestIdentityProvider


def profile_keys(profile: str) -> StaticKeys:
    """``secret_id``/``secret_key`` of ``[profile]`` in ``~/.tencentcloud/credentials``."""
    path = Path("~/.tencentcloud/credentials").expanduser()
    parser = configparser.ConfigParser()
    parser.read(path)
    if not parser.has_section(profile):
        raise ConfigurationError(f"no [{profile}] section in {path}")
    section = parser[profile]
    sid, skey = section.get("secret_id", "").strip(), section.get("secret_key", "").strip()
    if not sid or not skey:
        raise ConfigurationError(f"[{profile}] in {path} needs secret_id and secret_key")
    return StaticKeys(sid, skey)


def _deployment(base_url: str, jwks: dict[str, Any], *, live: bool) -> Deployment:
    return Deployment(
        settings=parse_settings(StoreTarget(url=base_url, wallet="0x" + "0" * 40, options={})),
        issuer=ISSUER,
        audiences=(AUDIENCE,),
        jwks=jwks,
        require_tls=live,
        allowed_cidrs=() if live else ("127.0.0.0/8",),
    )


def write_state(path: Path, state: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(dict(state), indent=2, sort_keys=True))
    path.chmod(0o600)


def teardown(state: Mapping[str, Any], provisioner: Provisioner) -> list[str]:
    """Remove every tenant role/policy, the OIDC provider and (live) the bucket; idempotent."""
    done: list[str] = []
    for wallet in state.get("wallets", []):
        done += provisioner.offboard(wallet, delete_data=True)
    try:
        provisioner.cam.call("DeleteOIDCConfig", {"Name": provisioner.d.settings.provider})
        done.append(f"deleted OIDC provider {provisioner.d.settings.provider}")
    except (NotFound, ConfigurationError):
        pass  # already gone
    if state.get("delete_bucket"):
        bucket = provisioner.d.settings.bucket
        cos = provisioner.cos
        while True:
            page = cos.list_objects(Bucket=bucket, MaxKeys=1000)
            keys = [c["Key"] for c in page.get("Contents") or []]
            if not keys:
                break
            cos.delete_objects(
                Bucket=bucket, Delete={"Quiet": "true", "Object": [{"Key": k} for k in keys]}
            )
        cos.delete_bucket(Bucket=bucket)
        done.append(f"deleted bucket {bucket}")
    return done


class LiveCosHarness(CosHarness):
    """Role-per-tenant on a throw-away deployment (target ``live``)."""

    targets: ClassVar[tuple[str, ...]] = ("live",)

    @property
    def mode(self) -> str:
        return "role-per-tenant"

    def setup(self) -> None:
        cfg = self.config
        self._env = env = str(cfg.get("environment", ""))
        if env not in ("double", "tencent"):
            raise ConfigurationError("live config: environment must be double or tencent")
        self._state_file = Path(str(cfg["state_file"]))
        self._keep = bool(cfg.get("keep", False))
        name = str(cfg["name"])
        self.idp = TestIdentityProvider(ISSUER)
        self._vendor_server = None
        self._onboarded: set[str] = set()
        if env == "double":
            d = TencentDouble().start()
            self._double = d
            self.bucket = d.create_bucket(name)
            self.base_url = (
                f"cos://{self.bucket}?region={d.region}&owner_uin={d.owner_uin}"
                f"&scheme=http&ip=127.0.0.1&port={d.port}"
            )
            self.root = StaticKeys(d.root.secret_id, d.root.secret_key)
        else:
            self.bucket = f"{name}-{cfg['appid']}"
            self.base_url = f"cos://{self.bucket}?region={cfg['region']}&owner_uin={cfg['owner_uin']}"
            self.root = profile_keys(str(cfg.get("profile") or "default"))
        self.base_url += f"&prefix={self.context.prefix}&duration={DURATION}&if_match=true"
        self.provisioner = Provisioner(
            _deployment(self.base_url, self.idp.jwks(), live=env == "tencent"), self.root
        )
        self._state: dict[str, Any] = {
            "environment": env,
            "base_url": self.base_url,
            "profile": cfg.get("profile"),
            "wallets": [],
            "delete_bucket": env == "tencent",
        }
        write_state(self._state_file, self._state)
        if env == "tencent":
            self.provisioner.cos.create_bucket(Bucket=self.bucket)
        self.provisioner.apply()

    def _open(self, wallet: str, prefix: str, token: Callable[[], str]) -> Any:
        if wallet not in self._onboarded:
            self._state["wallets"] = sorted({*self._state["wallets"], wallet})
            write_state(self._state_file, self._state)
        return super()._open(wallet, prefix, token)

    def _now(self) -> float:
        return self._double.now() if self._double is not None else time.time()

    def _token(self, wallet: str, kind: BadTokenKind | None = None) -> Callable[[], str]:
        if self._double is not None:
            return super()._token(wallet, kind)
        if kind == "forged":
            forger = TestIdentityProvider(ISSUER, kid=self.idp.kid)
            return lambda: forger.mint(wallet, AUDIENCE, now=time.time())
        if kind == "expired":
            return lambda: self.idp.mint(wallet, AUDIENCE, now=time.time() - 3600, lifetime=600)
        if kind == "wrong-audience":
            return lambda: self.idp.mint(wallet, "someone-else", now=time.time())
        return lambda: self.idp.mint(wallet, AUDIENCE, now=time.time(), lifetime=3600)

    def expire_credentials(self, store: Any) -> None:
        if self._double is None:
            raise NotImplementedError("real STS credentials cannot be expired on demand")
        super().expire_credentials(store)

    def cleanup(self) -> None:
        try:
            if not getattr(self, "_keep", True) and hasattr(self, "_state"):
                # Recorded for the runner (pytest captures this process's output).
                self._state["torn_down"] = teardown(self._state, self.provisioner)
                write_state(self._state_file, self._state)
        finally:
            super().cleanup()


def provisioner_for_state(state: Mapping[str, Any], keys: StaticKeys) -> Provisioner:
    """A provisioner able to tear down what ``state`` names (documents are not needed)."""
    return Provisioner(_deployment(str(state["base_url"]), {"keys": []}, live=True), keys)


__all__ = ["LiveCosHarness", "PortableCredsError", "profile_keys", "teardown"]
