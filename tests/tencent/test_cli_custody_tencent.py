"""Custody moves on ``cos://`` from the CLI: ``rewrap``/``copy`` with ``--from-keys``/``--to-keys``.

The CLI runs as a subprocess against the signature-verifying Tencent double (COS, STS, CAM,
KMS), deployed by the driver's own provisioner with one CMK per wallet. One tenant moves its
blobs root secret -> its KMS key -> root secret with its own session (CAM lets it use only its
own key); the administrator moves the fleet into each wallet's own key (``kms:per-wallet``) and
back, and copies a local directory into per-wallet KMS custody. A blob that does not open, or a
wallet without a key, is reported and never rewritten; one tenant's KeyId never seals another
wallet; nothing secret reaches the output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
from portable_creds_tencent.admin import Provisioner
from portable_creds_tencent.kms import TencentKmsKeySource
from portable_creds_tencent.kms_custody import AdminTencentKmsKeySource, PerWalletKmsKeySource
from portable_creds_tencent.settings import StaticKeys
from portable_creds_tencent.testing import TencentDouble, TestIdentityProvider

import portable_creds
from portable_creds import envelope
from portable_creds.errors import EXIT_CODES, ConfigurationError
from portable_creds.secret_key import SecretKeySource
from portable_creds.store import CredentialStore

from . import sdk
from .conftest import AUDIENCE, WALLET_A, WALLET_B, Env, key, make_env

CLI = [sys.executable, "-m", "portable_creds.cli"]
COMMIT, CUSTODIAN = envelope.SUITE_AES256GCM_HKDF_COMMIT, envelope.SUITE_CUSTODIAN_WRAP
NO_KEY = "0x" + "c3" * 20
"""Onboarded without a KMS key (its role exists, no CMK has its alias)."""
STRAY = "0x" + "d4" * 20
"""Has its own CMK, but its blobs are sealed with a root secret nobody here has: never open."""
_SCRUB = ("PORTABLE_CREDS_", "AGENTKEYS_", "XDG_", "AWS_", "TENCENTCLOUD_", "COS_")


@attrs.define
class Cli:
    env: Env
    tmp: Path
    keys: dict[str, str]
    """wallet -> KeyId of its own CMK."""
    root: bytes = attrs.field(factory=lambda: os.urandom(32))
    outputs: list[str] = attrs.field(factory=list)
    tokens: list[str] = attrs.field(factory=list)

    def __attrs_post_init__(self) -> None:
        home = self.home
        home.mkdir(mode=0o700)
        (home / "root.key").write_bytes(self.root)
        (home / "root.key").chmod(0o600)

    @property
    def home(self) -> Path:
        return self.tmp / "data"

    @property
    def double(self) -> TencentDouble:
        return self.env.double

    @property
    def secret(self) -> SecretKeySource:
        return SecretKeySource(self.root)

    @property
    def admin_url(self) -> str:
        return self.env.url

    def tenant_url(self, wallet: str, extra: str = "") -> str:
        token = self.tmp / f"{wallet}.jwt"
        jwt = self.env.idp.mint(wallet, AUDIENCE, lifetime=3600)
        token.write_text(jwt)
        self.tokens.append(jwt)
        return f"{self.env.url}&mode=role-per-tenant&token_file={token}{extra}"

    def run(self, *args: str, admin: bool = False, input: bytes = b"") -> Any:
        run_env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB)}
        run_env.update(HOME=str(self.tmp), PORTABLE_CREDS_HOME=str(self.home))
        if admin:
            root = self.double.root
            run_env.update(TENCENTCLOUD_SECRET_ID=root.secret_id,
                           TENCENTCLOUD_SECRET_KEY=root.secret_key)  # fmt: skip
        proc = subprocess.run(
            [*CLI, *args], input=input, capture_output=True, env=run_env, timeout=120,
            check=False,
        )  # fmt: skip
        out = (proc.stdout + proc.stderr).decode(errors="replace")
        self.outputs.append(out)
        # Nothing secret in what the CLI prints: the root secret, the administrator's key, the
        # tenants' OIDC tokens and the STS sessions the double issued them.
        assert self.root.hex() not in out and self.root.hex().upper() not in out
        assert self.double.root.secret_key not in out
        assert not any(jwt in out or jwt.split(".")[2] in out for jwt in self.tokens)
        for session in self.double.issued_sessions:  # the tenants' STS sessions
            assert session.secret_key not in out and session.token not in out
        return proc

    def ok(self, *args: str, **kw: Any) -> Any:
        proc = self.run(*args, **kw)
        assert proc.returncode == 0, (proc.returncode, proc.stderr.decode(errors="replace"))
        return proc

    def blob(self, wallet: str, service: str, prefix: str = "bots") -> bytes:
        raw = sdk.root_cos(self.double).get_object(
            Bucket=self.env.bucket, Key=key(wallet, service).replace("bots/", f"{prefix}/", 1)
        )
        return bytes(raw["Body"].get_raw_stream().read())

    def suites(self, wallet: str, services: list[str], prefix: str = "bots") -> set[int]:
        return {envelope.parse_header(self.blob(wallet, s, prefix)).suite for s in services}

    def seed(self, wallet: str, keys: SecretKeySource, **values: bytes) -> None:
        store = CredentialStore(self.env.admin(), keys, wallet)
        for service, value in values.items():
            store.put(service, value)

    def read_as_tenant(self, wallet: str, service: str) -> bytes:
        """The tenant's own session and its own key, on a machine with no root secret."""
        with portable_creds.open_store(
            f"{self.env.url}&mode=role-per-tenant&kms_key={self.keys[wallet]}",
            wallet=wallet, token=self.env.token_for(wallet), home=self.tmp / "reader",
            outbox=False,
        ) as store:  # fmt: skip
            return store.get(service).reveal()


@pytest.fixture
def cli(double: TencentDouble, idp: TestIdentityProvider, tmp_path: Path) -> Cli:
    env = make_env(double, idp)
    prov = Provisioner(
        attrs.evolve(env.deployment, kms=True),
        StaticKeys(double.root.secret_id, double.root.secret_key),
    )
    prov.apply()
    keys = {}
    for wallet in (WALLET_A, WALLET_B, STRAY):
        prov.onboard(wallet)
        meta = prov.tenant_key(wallet)
        assert meta is not None
        keys[wallet] = str(meta["KeyId"])
    env.provisioner.onboard(NO_KEY)  # a role, no CMK
    assert keys[WALLET_A] != keys[WALLET_B]
    return Cli(env, tmp_path, keys)


# --------------------------------------------------------------------------- one tenant
def test_one_wallet_root_secret_to_its_kms_key_and_back(cli: Cli) -> None:
    plain = cli.tenant_url(WALLET_A)
    with_kms = cli.tenant_url(WALLET_A, f"&kms_key={cli.keys[WALLET_A]}")
    common = ["--wallet", WALLET_A]
    cli.ok("--backend", plain, *common, "put", "a", input=b"alpha")
    cli.ok("--backend", plain, *common, "put", "b", input=b"beta")
    assert cli.suites(WALLET_A, ["a", "b"]) == {COMMIT}

    # Into KMS: the URL's kms_key seals (the tenant's session signs), the root secret opens.
    out = cli.ok("--backend", with_kms, *common, "rewrap", "--from-keys", "root-secret", "--json")
    assert json.loads(out.stdout) == {"rewrapped": 2, "wallet": WALLET_A}
    assert cli.suites(WALLET_A, ["a", "b"]) == {CUSTODIAN}
    assert cli.double.kms.calls[-1] == ("GenerateDataKey", cli.keys[WALLET_A])
    assert cli.ok("--backend", with_kms, *common, "get", "a").stdout == b"alpha"
    refused = cli.run("--backend", plain, *common, "get", "a")  # the root secret alone: no
    assert refused.returncode == EXIT_CODES["integrity"]

    # Back: the plain URL's root secret seals, kms:<KeyId> opens.
    spec = f"kms:{cli.keys[WALLET_A]}"
    out = cli.ok("--backend", plain, *common, "rewrap", "--from-keys", spec, "--json")
    assert json.loads(out.stdout)["rewrapped"] == 2
    assert cli.suites(WALLET_A, ["a", "b"]) == {COMMIT}
    assert cli.ok("--backend", plain, *common, "get", "b").stdout == b"beta"

    # --to-keys alone, both directions (the store's own sources open).
    cli.ok("--backend", plain, *common, "rewrap", "--to-keys", spec)
    assert cli.suites(WALLET_A, ["a", "b"]) == {CUSTODIAN}
    assert cli.read_as_tenant(WALLET_A, "b") == b"beta"
    cli.ok("--backend", with_kms, *common, "rewrap", "--to-keys", "root-secret")
    assert cli.suites(WALLET_A, ["a", "b"]) == {COMMIT}
    again = cli.ok("--backend", with_kms, *common, "rewrap", "--to-keys", "root-secret", "--json")
    assert json.loads(again.stdout)["rewrapped"] == 0
    assert not any("alpha" in o or "beta" in o for o in cli.outputs if "rewrap" in o)


def test_a_tenant_cannot_seal_with_another_tenants_key_nor_look_keys_up(cli: Cli) -> None:
    plain = cli.tenant_url(WALLET_A)
    common = ["--backend", plain, "--wallet", WALLET_A]
    cli.ok(*common, "put", "a", input=b"alpha")
    before = cli.blob(WALLET_A, "a")
    # B's key: CAM refuses A's session GenerateDataKey on it (evaluated by the double).
    denied = cli.run(*common, "rewrap", "--to-keys", f"kms:{cli.keys[WALLET_B]}")
    assert denied.returncode == EXIT_CODES["access-denied"], denied.stderr
    assert cli.blob(WALLET_A, "a") == before
    # kms:per-wallet needs the administrator's ListKeyDetail: refused by name for a tenant.
    per_wallet = cli.run(*common, "rewrap", "--to-keys", "kms:per-wallet")
    assert per_wallet.returncode == EXIT_CODES["configuration"]
    assert "kms:<KeyId>" in per_wallet.stderr.decode()
    bad = cli.run(*common, "rewrap", "--to-keys", "kms:arn:aws:kms:us-east-1:1:key/x")
    assert bad.returncode == EXIT_CODES["configuration"]
    assert "not a Tencent KMS KeyId" in bad.stderr.decode()
    assert cli.blob(WALLET_A, "a") == before


# --------------------------------------------------------------------------- the fleet
def test_fleet_rewrap_into_each_wallets_own_key_and_back(cli: Cli) -> None:
    cli.seed(WALLET_A, cli.secret, a=b"alpha-a", b=b"beta-a")
    cli.seed(WALLET_B, cli.secret, a=b"alpha-b")
    cli.seed(NO_KEY, cli.secret, a=b"alpha-nokey")
    cli.seed(STRAY, SecretKeySource(os.urandom(32)), x=b"stranger")
    stray_before, nokey_before = cli.blob(STRAY, "x"), cli.blob(NO_KEY, "a")

    out = cli.run("--backend", cli.admin_url, "rewrap", "--all-wallets", "--to-keys",
                  "kms:per-wallet", "--json", admin=True)  # fmt: skip
    assert out.returncode == 1, out.stderr  # the stray and the key-less wallet failed
    doc = json.loads(out.stdout)
    assert doc["wallets"] == {WALLET_A: 2, WALLET_B: 1} and doc["rewrapped"] == 3
    assert sorted(doc["failed"]) == sorted([NO_KEY, STRAY])
    assert "integrity check failed" in doc["failed"][STRAY]
    assert "has no KMS key" in doc["failed"][NO_KEY]
    assert cli.blob(STRAY, "x") == stray_before and cli.blob(NO_KEY, "a") == nokey_before
    assert cli.suites(WALLET_A, ["a", "b"]) == cli.suites(WALLET_B, ["a"]) == {CUSTODIAN}
    generated = {k for action, k in cli.double.kms.calls if action == "GenerateDataKey"}
    # Each wallet sealed with its own key; the stray's key was never used (nothing opened).
    assert generated == {cli.keys[WALLET_A], cli.keys[WALLET_B]}
    # Each tenant opens its own blobs with its own session and key (CAM allows nothing else).
    assert cli.read_as_tenant(WALLET_A, "b") == b"beta-a"
    assert cli.read_as_tenant(WALLET_B, "a") == b"alpha-b"

    back = cli.run("--backend", cli.admin_url, "rewrap", "--all-wallets", "--from-keys",
                   "kms:per-wallet", "--json", admin=True)  # fmt: skip
    doc = json.loads(back.stdout)
    assert doc["wallets"] == {WALLET_A: 2, WALLET_B: 1, NO_KEY: 0} and list(doc["failed"]) == [
        STRAY
    ]
    assert cli.suites(WALLET_A, ["a", "b"]) == cli.suites(WALLET_B, ["a"]) == {COMMIT}
    assert CredentialStore(cli.env.admin(), cli.secret, WALLET_B).get("a").reveal() == b"alpha-b"
    assert cli.blob(STRAY, "x") == stray_before
    assert not any("alpha" in o or "beta" in o or "stranger" in o for o in cli.outputs)


def test_fleet_rewrap_on_a_kms_key_url_never_seals_another_wallet_with_that_key(
    cli: Cli,
) -> None:
    """``rewrap --all-wallets`` on ``cos://...&kms_key=<A's KeyId>``: A moves into its key; B
    is refused by name (one tenant's CMK must not hold another's data keys) and untouched."""
    cli.seed(WALLET_A, cli.secret, a=b"alpha-a")
    cli.seed(WALLET_B, cli.secret, a=b"alpha-b")
    b_before = cli.blob(WALLET_B, "a")
    url = f"{cli.admin_url}&kms_key={cli.keys[WALLET_A]}"
    out = cli.run("--backend", url, "rewrap", "--all-wallets", "--json", admin=True)
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    assert doc["wallets"] == {WALLET_A: 1} and list(doc["failed"]) == [WALLET_B]
    assert "kms:per-wallet" in doc["failed"][WALLET_B]
    assert f"wallet {WALLET_A}'s own key" in doc["failed"][WALLET_B]
    assert cli.blob(WALLET_B, "a") == b_before
    assert cli.suites(WALLET_A, ["a"]) == {CUSTODIAN}
    assert cli.read_as_tenant(WALLET_A, "a") == b"alpha-a"
    # The same KeyId named by --to-keys is guarded the same way.
    spec = cli.run("--backend", cli.admin_url, "rewrap", "--all-wallets", "--to-keys",
                   f"kms:{cli.keys[WALLET_A]}", "--json", admin=True)  # fmt: skip
    assert WALLET_B in json.loads(spec.stdout)["failed"]
    assert cli.blob(WALLET_B, "a") == b_before


# --------------------------------------------------------------------------- copy
def test_copy_local_root_secret_into_cos_per_wallet_kms(cli: Cli) -> None:
    src = cli.tmp / "src"
    local = f"local://{src}"
    for wallet, value in ((WALLET_A, b"one"), (WALLET_B, b"two")):
        with portable_creds.open_store(local, wallet=wallet, keys=cli.secret, home=cli.home) as st:
            st.put("svc", value)
    out = cli.run("copy", "--from", local, "--to", cli.admin_url, "--all-wallets", "--to-keys",
                  "kms:per-wallet", "--json", "--quiet", admin=True)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["mode"] == "re-seal" and report["ok"], report
    for wallet, value in ((WALLET_A, b"one"), (WALLET_B, b"two")):
        assert cli.suites(wallet, ["svc"]) == {CUSTODIAN}
        assert cli.read_as_tenant(wallet, "svc") == value

    # And out again: each wallet's own key opens (--from-keys), the root secret seals.
    back = cli.tmp / "back"
    out = cli.run("copy", "--from", cli.admin_url, "--to", f"local://{back}", "--all-wallets",
                  "--from-keys", "kms:per-wallet", "--to-keys", "root-secret", "--json",
                  "--quiet", admin=True)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    for wallet, value in ((WALLET_A, b"one"), (WALLET_B, b"two")):
        with portable_creds.open_store(
            f"local://{back}", wallet=wallet, keys=cli.secret, home=cli.home
        ) as st:
            assert st.get("svc").reveal() == value

    # --to with one tenant's kms_key=: that tenant is copied, the other refused, never written.
    out = cli.run("copy", "--from", local, "--to",
                  f"{cli.admin_url}&kms_key={cli.keys[WALLET_A]}&prefix=moved", "--all-wallets",
                  "--json", "--quiet", admin=True)  # fmt: skip
    assert out.returncode == 1
    assert cli.suites(WALLET_A, ["svc"], prefix="moved") == {CUSTODIAN}
    admin = cli.env.admin()  # the tenant's role covers only bots/; the administrator reads
    a_key = admin.key_source_for(f"kms:{cli.keys[WALLET_A]}")
    assert a_key is not None
    assert CredentialStore(admin, a_key, WALLET_A, prefix="moved").get("svc").reveal() == b"one"
    cos = sdk.root_cos(cli.double)
    listed = cos.list_objects(Bucket=cli.env.bucket, Prefix=f"moved/{WALLET_B}/")
    assert not listed.get("Contents")
    assert not any('"one"' in o or '"two"' in o for o in cli.outputs)


# --------------------------------------------------------------------------- the hook
def test_key_source_for_resolves_kms_specs_only(cli: Cli) -> None:
    admin = cli.env.admin()
    assert admin.key_source_for("vault:x") is None
    assert isinstance(admin.key_source_for("kms:per-wallet"), PerWalletKmsKeySource)
    one = admin.key_source_for(f"kms:{cli.keys[WALLET_A]}")
    assert isinstance(one, AdminTencentKmsKeySource)
    with pytest.raises(ConfigurationError):
        admin.key_source_for("kms:")
    tenant = cli.env.open(WALLET_A)
    own = tenant.key_source_for(f"kms:{cli.keys[WALLET_A]}")
    assert type(own) is TencentKmsKeySource and own.key_id == cli.keys[WALLET_A]
    # The KEK id depends only on the KeyId: a blob the fleet sealed opens for the tenant.
    assert one.kek_id == own.kek_id
