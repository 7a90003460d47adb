"""Custody moves from the CLI: ``rewrap``/``copy`` with ``--from-keys`` / ``--to-keys``.

The CLI runs as a subprocess against the moto server (S3, STS web identity, KMS): root secret
-> KMS -> root secret for one tenant (its own web-identity session signs the KMS calls) and for
the fleet (``rewrap --all-wallets``, the administrator's keys), ``copy`` from a local directory
under a root secret into an s3 bucket under KMS, and the signer. A blob that does not open with
the old key source is reported and never rewritten; no secret reaches argv or the output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

import portable_creds
from portable_creds import envelope, names
from portable_creds.errors import EXIT_CODES
from portable_creds.secret_key import SecretKeySource

from ..cloud_fixtures import MOTO_KEYS, REGION, moto_url, random_wallet

CLI = [sys.executable, "-m", "portable_creds.cli"]
ROLE = "arn:aws:iam::123456789012:role/agentkeys-data-role"
COMMIT, CUSTODIAN = envelope.SUITE_AES256GCM_HKDF_COMMIT, envelope.SUITE_CUSTODIAN_WRAP


class Env:
    """A scrubbed environment with a data home holding a root secret."""

    def __init__(self, tmp: Path, endpoint: str) -> None:
        self.tmp = tmp
        self.endpoint = endpoint
        self.home = tmp / "data"
        self.home.mkdir(mode=0o700)
        self.root = os.urandom(32)
        key = self.home / "root.key"
        key.write_bytes(self.root)
        key.chmod(0o600)
        token = tmp / "oidc.jwt"
        token.write_text("header.payload.signature")
        self.token = token
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PORTABLE_CREDS_", "AGENTKEYS_", "XDG_", "AWS_"))
        }
        self.env.update(HOME=str(tmp), PORTABLE_CREDS_HOME=str(self.home))
        self.outputs: list[str] = []

    @property
    def secret(self) -> SecretKeySource:
        return SecretKeySource(self.root)

    def tenant_url(self, bucket: str, **params: str) -> str:
        return moto_url(self.endpoint, bucket, role_arn=ROLE, token_file=str(self.token), **params)

    def run(
        self,
        *args: str,
        admin: bool = False,
        input: bytes = b"",
        extra: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        env = dict(self.env)
        if admin:
            env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
        env.update(extra or {})
        proc = subprocess.run(
            [*CLI, *args], input=input, capture_output=True, env=env, timeout=120, check=False
        )
        out = (proc.stdout + proc.stderr).decode(errors="replace")
        self.outputs.append(out)
        # Nothing secret in what the CLI prints (the root secret, in either encoding).
        assert self.root.hex() not in out and self.root.hex().upper() not in out
        return proc

    def ok(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[bytes]:
        proc = self.run(*args, **kw)
        assert proc.returncode == 0, (proc.returncode, proc.stderr.decode(errors="replace"))
        return proc


@pytest.fixture
def env(tmp_path: Path, moto_endpoint: str) -> Env:
    return Env(tmp_path, moto_endpoint)


@pytest.fixture
def s3(moto_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip


@pytest.fixture
def kms_arn(moto_endpoint: str) -> str:
    kms = boto3.client("kms", endpoint_url=moto_endpoint, region_name=REGION,
                       aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    return str(kms.create_key()["KeyMetadata"]["Arn"])


def _blob(s3: Any, bucket: str, wallet: str, service: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=names.object_key(wallet, service))["Body"].read())


def _suites(s3: Any, bucket: str, wallet: str, services: list[str]) -> set[int]:
    return {envelope.parse_header(_blob(s3, bucket, wallet, s)).suite for s in services}


def _seed(url: str, wallet: str, keys: SecretKeySource, home: Path, **values: bytes) -> None:
    store = portable_creds.open_store(
        url, wallet=wallet, keys=keys, home=home, outbox=False, allow_static_tenant=True,
        **MOTO_KEYS,
    )  # fmt: skip
    with store:
        for service, value in values.items():
            store.put(service, value)


def _read(url: str, wallet: str, home: Path, service: str, keys: Any = None) -> bytes:
    with portable_creds.open_store(
        url, wallet=wallet, keys=keys, home=home, outbox=False, allow_static_tenant=True,
        **MOTO_KEYS,
    ) as store:  # fmt: skip
        return store.get(service).reveal()


# --------------------------------------------------------------------------- one tenant
def test_one_wallet_root_secret_to_kms_and_back(
    env: Env, s3: Any, moto_bucket: str, kms_arn: str
) -> None:
    wallet = random_wallet()
    plain = env.tenant_url(moto_bucket)
    with_kms = env.tenant_url(moto_bucket, kms_key=kms_arn)
    common = ["--wallet", wallet]
    env.ok("--backend", plain, *common, "put", "a", input=b"alpha")
    env.ok("--backend", plain, *common, "put", "b", input=b"beta")
    assert _suites(s3, moto_bucket, wallet, ["a", "b"]) == {COMMIT}

    # Into KMS: the URL's kms_key seals, --from-keys names what opens the old blobs.
    out = env.ok("--backend", with_kms, *common, "rewrap", "--from-keys", "root-secret", "--json")
    assert json.loads(out.stdout) == {"rewrapped": 2, "wallet": wallet}
    assert _suites(s3, moto_bucket, wallet, ["a", "b"]) == {CUSTODIAN}
    assert env.ok("--backend", with_kms, *common, "get", "a").stdout == b"alpha"
    refused = env.run("--backend", plain, *common, "get", "a")  # the root secret alone: no
    assert refused.returncode == EXIT_CODES["integrity"]

    # Back to the root secret: the plain URL's root secret seals, KMS opens.
    out = env.ok("--backend", plain, *common, "rewrap", "--from-keys", f"kms:{kms_arn}", "--json")
    assert json.loads(out.stdout)["rewrapped"] == 2
    assert _suites(s3, moto_bucket, wallet, ["a", "b"]) == {COMMIT}
    assert env.ok("--backend", plain, *common, "get", "b").stdout == b"beta"

    # The same two moves named by --to-keys alone (the store's own sources open).
    env.ok("--backend", plain, *common, "rewrap", "--to-keys", f"kms:{kms_arn}")
    assert _suites(s3, moto_bucket, wallet, ["a", "b"]) == {CUSTODIAN}
    assert env.ok("--backend", with_kms, *common, "get", "b").stdout == b"beta"
    env.ok("--backend", with_kms, *common, "rewrap", "--to-keys", "root-secret")
    assert _suites(s3, moto_bucket, wallet, ["a", "b"]) == {COMMIT}
    again = env.ok("--backend", with_kms, *common, "rewrap", "--to-keys", "root-secret", "--json")
    assert json.loads(again.stdout)["rewrapped"] == 0  # idempotent
    rewraps = [o for o in env.outputs if '"rewrapped"' in o or "re-wrapped" in o]
    assert len(rewraps) == 5 and not any("alpha" in o or "beta" in o for o in rewraps)


# --------------------------------------------------------------------------- the fleet
def test_fleet_rewrap_moves_every_wallet_and_never_rewrites_what_does_not_open(
    env: Env, s3: Any, moto_bucket: str, kms_arn: str
) -> None:
    admin = moto_url(env.endpoint, moto_bucket)
    w1, w2, stray = sorted(random_wallet() for _ in range(3))
    _seed(admin, w1, env.secret, env.home, a=b"alpha-1", b=b"beta-1")
    _seed(admin, w2, env.secret, env.home, a=b"alpha-2")
    _seed(admin, stray, SecretKeySource(os.urandom(32)), env.home, x=b"stranger")
    stray_before = _blob(s3, moto_bucket, stray, "x")

    out = env.run("--backend", admin, "rewrap", "--all-wallets", "--to-keys", f"kms:{kms_arn}",
                  "--json", admin=True)  # fmt: skip
    assert out.returncode == 1, out.stderr  # the stray wallet failed, the others moved
    doc = json.loads(out.stdout)
    assert doc["wallets"] == {w1: 2, w2: 1} and doc["rewrapped"] == 3
    assert list(doc["failed"]) == [stray] and "integrity check failed" in doc["failed"][stray]
    assert _blob(s3, moto_bucket, stray, "x") == stray_before  # never rewritten
    assert _suites(s3, moto_bucket, w1, ["a", "b"]) == _suites(s3, moto_bucket, w2, ["a"]) == {
        CUSTODIAN
    }
    kms_url = moto_url(env.endpoint, moto_bucket, kms_key=kms_arn)
    assert _read(kms_url, w1, env.tmp / "elsewhere", "b") == b"beta-1"  # no root secret there

    back = env.run("--backend", admin, "rewrap", "--all-wallets", "--from-keys",
                   f"kms:{kms_arn}", "--json", admin=True)  # fmt: skip
    assert json.loads(back.stdout)["wallets"] == {w1: 2, w2: 1}
    assert _suites(s3, moto_bucket, w1, ["a", "b"]) == {COMMIT}
    assert _read(admin, w2, env.home, "a", env.secret) == b"alpha-2"
    assert _blob(s3, moto_bucket, stray, "x") == stray_before
    assert not any("alpha" in o or "stranger" in o for o in env.outputs)


def test_fleet_rewrap_follows_the_urls_kms_key(
    env: Env, s3: Any, moto_bucket: str, kms_arn: str
) -> None:
    """Without a spec, ``rewrap --all-wallets`` on a ``kms_key=`` URL seals with KMS and opens
    older blobs with the root secret, like ``open_store`` does for one tenant."""
    admin = moto_url(env.endpoint, moto_bucket)
    wallet = random_wallet()
    _seed(admin, wallet, env.secret, env.home, a=b"alpha")
    kms_admin = moto_url(env.endpoint, moto_bucket, kms_key=kms_arn)
    out = env.ok("--backend", kms_admin, "rewrap", "--all-wallets", "--json", admin=True)
    assert json.loads(out.stdout)["wallets"] == {wallet: 1}
    assert _suites(s3, moto_bucket, wallet, ["a"]) == {CUSTODIAN}


# --------------------------------------------------------------------------- copy
def test_copy_local_root_secret_into_s3_kms(
    env: Env, s3: Any, moto_bucket: str, kms_arn: str
) -> None:
    src = env.tmp / "src"
    local = f"local://{src}"
    w1, w2 = sorted(random_wallet() for _ in range(2))
    for wallet, value in ((w1, b"one"), (w2, b"two")):
        with portable_creds.open_store(local, wallet=wallet, keys=env.secret, home=env.home) as st:
            st.put("svc", value)
    admin = moto_url(env.endpoint, moto_bucket)
    out = env.run("copy", "--from", local, "--to", admin, "--all-wallets", "--to-keys",
                  f"kms:{kms_arn}", "--json", "--quiet", admin=True)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["mode"] == "re-seal" and report["ok"], report
    for wallet, value in ((w1, b"one"), (w2, b"two")):
        assert _suites(s3, moto_bucket, wallet, ["svc"]) == {CUSTODIAN}
        kms_url = moto_url(env.endpoint, moto_bucket, kms_key=kms_arn)
        assert _read(kms_url, wallet, env.tmp / "reader", "svc") == value

    # kms_key= on --to is enough; a blob that does not open is reported, not copied.
    other = "pc-copy-" + os.urandom(4).hex()
    s3.create_bucket(Bucket=other)
    stray = random_wallet()
    with portable_creds.open_store(
        local, wallet=stray, keys=SecretKeySource(os.urandom(32)), home=env.home
    ) as st:
        st.put("svc", b"stranger")
    to = moto_url(env.endpoint, other, kms_key=kms_arn)
    out = env.run("copy", "--from", local, "--to", to, "--all-wallets", "--json", "--quiet",
                  admin=True)  # fmt: skip
    assert out.returncode == 1
    assert _suites(s3, other, w1, ["svc"]) == {CUSTODIAN}
    listed = s3.list_objects_v2(Bucket=other, Prefix=f"bots/{stray}/").get("Contents", [])
    assert listed == []  # never written
    assert not any("stranger" in o or '"one"' in o or '"two"' in o for o in env.outputs)


def test_copy_out_of_kms_into_a_root_secret_file_with_no_root_secret_here(
    env: Env, s3: Any, moto_bucket: str, kms_arn: str, tmp_path: Path
) -> None:
    """KMS -> root secret by ``copy``: the ``--from`` URL's kms_key opens (this machine has no
    root secret at all), ``--to-keys root-secret:FILE`` seals."""
    (env.home / "root.key").unlink()
    wallet = random_wallet()
    kms_url = moto_url(env.endpoint, moto_bucket, kms_key=kms_arn)
    with portable_creds.open_store(
        kms_url, wallet=wallet, home=env.home, outbox=False, allow_static_tenant=True,
        **MOTO_KEYS,
    ) as store:  # fmt: skip
        store.put("svc", b"from-kms")
    assert _suites(s3, moto_bucket, wallet, ["svc"]) == {CUSTODIAN}
    target = "pc-out-" + os.urandom(4).hex()
    s3.create_bucket(Bucket=target)
    new_root = os.urandom(32)
    secret_file = tmp_path / "new-root.key"
    secret_file.write_bytes(new_root)
    secret_file.chmod(0o600)
    out = env.run("copy", "--from", kms_url, "--to", moto_url(env.endpoint, target),
                  "--all-wallets", "--to-keys", f"root-secret:{secret_file}", "--json",
                  "--quiet", admin=True)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["mode"] == "re-seal"
    assert _suites(s3, target, wallet, ["svc"]) == {COMMIT}
    assert new_root.hex() not in out.stdout.decode() + out.stderr.decode()
    got = _read(moto_url(env.endpoint, target), wallet, env.home, "svc", SecretKeySource(new_root))
    assert got == b"from-kms"


# --------------------------------------------------------------------------- signer
def test_one_wallet_root_secret_to_signer_and_back(env: Env) -> None:
    from portable_creds.testing.signer_server import SignerServer

    wallet = random_wallet()
    url = f"local://{env.tmp / 'store'}"
    common = ["--backend", url, "--wallet", wallet]
    env.ok(*common, "put", "a", input=b"alpha")
    with SignerServer() as signer:
        extra = {"AGENTKEYS_SIGNER_URL": signer.url}
        out = env.ok(*common, "rewrap", "--to-keys", "signer", "--json", extra=extra)
        assert json.loads(out.stdout)["rewrapped"] == 1
        blob = (env.tmp / "store").rglob("a.enc")
        assert envelope.parse_header(next(blob).read_bytes()).kek_id.startswith("signer.v1.")
        assert env.run(*common, "get", "a").returncode == EXIT_CODES["integrity"]
        env.ok(*common, "rewrap", "--from-keys", "signer", extra=extra)
    assert env.ok(*common, "get", "a").stdout == b"alpha"


# --------------------------------------------------------------------------- refusals
def test_specs_are_checked_and_refused_by_name(env: Env, kms_arn: str) -> None:
    wallet = random_wallet()
    common = ["--backend", f"local://{env.tmp / 'store'}", "--wallet", wallet]
    env.ok(*common, "put", "a", input=b"alpha")
    local_kms = env.run(*common, "rewrap", "--from-keys", f"kms:{kms_arn}")
    assert local_kms.returncode == EXIT_CODES["configuration"]
    assert "does not know the key source 'kms:" in local_kms.stderr.decode()
    bogus = env.run(*common, "rewrap", "--from-keys", "bogus")
    assert bogus.returncode == EXIT_CODES["configuration"]
    assert "not a key-source spec" in bogus.stderr.decode()
    no_signer = env.run(*common, "rewrap", "--to-keys", "signer")
    assert no_signer.returncode == EXIT_CODES["configuration"]
    assert "AGENTKEYS_SIGNER_URL" in no_signer.stderr.decode()
    both = env.run("copy", "--from", "local:///a", "--to", "local:///b", "--all-wallets",
                   "--from-keys", "root-secret", "--from-secret-file", "x")  # fmt: skip
    assert both.returncode == EXIT_CODES["usage"]
    same = env.run(*common, "rewrap", "--from-keys", "root-secret", "--to-keys", "root-secret")
    assert same.returncode == 0  # already sealed there: nothing to do
