"""``creds export`` on ``cos://`` through the real CLI, handed to a bare ``CosS3Client``.

The Tencent double and the token vendor (``VendorServer``, holding the vendor key) run in this
test process on loopback ports; the CLI is a subprocess whose ``cos://`` URL names the vendor
(``vendor_url=``) and a token file (``token_file=``), so it holds only the tenant's OIDC token.
The child probe gets nothing but the exported variables; every refusal it sees is the double's
CAM evaluation of the vendor's inline session policy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from portable_creds_tencent.driver import build_vendor
from portable_creds_tencent.settings import parse_settings
from portable_creds_tencent.vendor_service import VendorServer
from tencentcloud.cam.v20190116 import models as cam_models
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.sts.v20180813 import models as sts_models

from portable_creds.driver import StoreTarget
from portable_creds.errors import EXIT_CODES, ConfigurationError
from portable_creds.names import object_key

from . import sdk
from .conftest import AUDIENCE, WALLET_A, WALLET_B, Env

BIN = Path(sys.executable).parent / "portable-creds"
PROBE = Path(__file__).resolve().parent.parent / "scoping" / "bare_cos_probe.py"
EXPECTED_VARS = {
    "TENCENTCLOUD_SECRET_ID",
    "TENCENTCLOUD_SECRET_KEY",
    "TENCENTCLOUD_SESSION_TOKEN",
    "TENCENTCLOUD_EXPIRATION",
    "COS_REGION",
    "COS_BUCKET",
    "COS_ENDPOINT_URL",
}
_SCRUB = ("PORTABLE_CREDS_", "AGENTKEYS_", "XDG_", "AWS_", "TENCENTCLOUD_", "COS_")


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB)}
    env["HOME"] = str(home)
    env.pop("PYTHONPATH", None)
    return env


@pytest.fixture
def vendor_server(env: Env) -> Iterator[VendorServer]:
    settings = parse_settings(StoreTarget(url=env.vendor_url(), wallet=WALLET_A))
    vendor = build_vendor(
        settings, {"secret_id": env.vendor.secret_id, "secret_key": env.vendor.secret_key}
    )
    with VendorServer(vendor) as server:
        yield server


class Tenant:
    """One wallet with a token file and root secret, and CLI arguments for it."""

    def __init__(self, env: Env, server: VendorServer, home: Path) -> None:
        self.env = env
        self.wallet = WALLET_A
        self.home = home
        self.token_file = home / "token.jwt"
        self.token_file.write_text(env.idp.mint(WALLET_A, AUDIENCE, lifetime=3600))
        self.token_file.chmod(0o600)
        self.secret_file = home / "root.key"
        self.secret_file.write_bytes(os.urandom(32))
        self.secret_file.chmod(0o600)
        self.backend = (
            f"{env.url}&mode=token-vendor&vendor_url={server.url}&token_file={self.token_file}"
        )

    def cli(
        self, *args: str, input: bytes = b"", backend: str | None = None
    ) -> tuple[int, bytes, str]:
        proc = subprocess.run(
            [
                str(BIN),
                "--backend",
                backend or self.backend,
                "--wallet",
                self.wallet,
                "--secret-file",
                str(self.secret_file),
                "--home",
                str(self.home / "data"),
                *args,
            ],
            input=input,
            capture_output=True,
            env=_env(self.home),
            timeout=120,
            check=False,
        )
        return proc.returncode, proc.stdout, proc.stderr.decode(errors="replace")

    def key(self, service: str) -> str:
        return object_key(self.wallet, service)

    def stored_sha(self, service: str) -> str:
        blob = self.env.admin().get(self.key(service)).data
        return "ok:" + hashlib.sha256(blob).hexdigest()


@pytest.fixture
def alice(env: Env, vendor_server: VendorServer, tmp_path: Path) -> Tenant:
    t = Tenant(env, vendor_server, tmp_path)
    for service, value in (("allowed", b"in-scope secret"), ("denied", b"other secret")):
        code, _, err = t.cli("put", service, input=value)
        assert code == 0, err
    return t


def _export(t: Tenant, *args: str) -> str:
    code, out, err = t.cli("creds", "export", *args)
    assert code == 0, err
    text = out.decode()
    values = dict(line.split(" ", 1)[1].split("=", 1) for line in text.splitlines())
    for name in ("TENCENTCLOUD_SECRET_KEY", "TENCENTCLOUD_SESSION_TOKEN"):
        assert shlex.split(values[name])[0] not in err
    return text


def probe(home: Path, exports: str, ops: list[list[Any]]) -> dict[str, str]:
    """Run the bare-CosS3Client probe in a POSIX shell that ``eval``s ``exports`` first; the
    child's environment holds nothing but PATH, HOME and what the export lines set."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "EXPORTS": exports,
        "PROBE_PYTHON": sys.executable,
        "PROBE_SCRIPT": str(PROBE),
    }
    proc = subprocess.run(
        ["/bin/sh", "-c", 'eval "$EXPORTS" && exec "$PROBE_PYTHON" "$PROBE_SCRIPT"'],
        input=json.dumps({"ops": ops}).encode(),
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    result = json.loads(proc.stdout)
    assert isinstance(result, Mapping)
    return {str(k): str(v) for k, v in result.items()}


def test_read_only_export_is_refused_outside_its_scope_by_cam(alice: Tenant) -> None:
    exports = _export(alice, "--scope", "allowed", "--read-only")
    lines = exports.splitlines()
    assert all(line.startswith("export ") for line in lines)
    assert {line.split(" ", 1)[1].split("=", 1)[0] for line in lines} == EXPECTED_VARS
    # The exported identity is a vended AssumeRole session whose inline policy names one object.
    session = alice.env.double.issued_sessions[-1]
    assert session.via == "AssumeRole"
    assert f"export TENCENTCLOUD_SECRET_ID={session.secret_id}" in lines

    allowed, denied = alice.key("allowed"), alice.key("denied")
    outcome = probe(
        alice.home,
        exports,
        [
            ["get in scope", "get", allowed],
            ["head in scope", "head", allowed],
            ["get other service", "get", denied],
            ["head other service", "head", denied],
            ["put in scope", "put", allowed],
            ["put other service", "put", denied],
            ["delete in scope", "delete", allowed],
            ["delete other service", "delete", denied],
            ["batch delete in scope", "delete_objects", allowed],
            ["list tenant", "list", f"bots/{alice.wallet}/"],
            ["list exact key", "list", allowed],
            ["list bucket", "list", ""],
        ],
    )
    assert outcome.pop("get in scope") == alice.stored_sha("allowed")
    assert outcome.pop("head in scope") == "ok"
    # A HEAD refusal has no body: the SDK reports only the status.
    assert outcome.pop("head other service").startswith("403 ")
    assert outcome.pop("batch delete in scope") == "200 AccessDenied"
    refused = {name: result for name, result in outcome.items() if result != "403 AccessDenied"}
    assert refused == {}, f"the double allowed (or answered otherwise): {refused}"
    # The refused writes changed nothing.
    for service, value in (("allowed", b"in-scope secret"), ("denied", b"other secret")):
        code, out, err = alice.cli("get", service)
        assert (code, out) == (0, value), err


def test_read_write_export_writes_only_its_services(alice: Tenant) -> None:
    exports = _export(alice, "--scope", "allowed,fresh")
    outcome = probe(
        alice.home,
        exports,
        [
            ["put fresh", "put", alice.key("fresh")],
            ["delete fresh", "delete", alice.key("fresh")],
            ["put other service", "put", alice.key("denied")],
            ["delete other service", "delete", alice.key("denied")],
            ["batch delete other service", "delete_objects", alice.key("denied")],
            ["get other service", "get", alice.key("denied")],
            ["list tenant", "list", f"bots/{alice.wallet}/"],
        ],
    )
    assert outcome == {
        "put fresh": "ok",
        "delete fresh": "ok",
        "put other service": "403 AccessDenied",
        "delete other service": "403 AccessDenied",
        "batch delete other service": "200 AccessDenied",
        "get other service": "403 AccessDenied",
        "list tenant": "403 AccessDenied",
    }
    code, out, err = alice.cli("get", "denied")
    assert (code, out) == (0, b"other secret"), err


def test_json_export_and_the_scope_option(alice: Tenant) -> None:
    code, out, err = alice.cli("creds", "export", "--scope", "allowed", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) == EXPECTED_VARS
    assert doc["COS_BUCKET"] == alice.env.bucket
    assert doc["COS_ENDPOINT_URL"] == f"http://127.0.0.1:{alice.env.double.port}"
    assert doc["TENCENTCLOUD_EXPIRATION"].endswith("Z")
    # --scope on an ordinary command: the CLI's own requests are refused by CAM too.
    code, out, err = alice.cli("--scope", "allowed", "--read-only", "get", "allowed")
    assert (code, out) == (0, b"in-scope secret"), err
    code, out, err = alice.cli("--scope", "allowed", "--read-only", "get", "denied")
    assert (code, out) == (EXIT_CODES["access-denied"], b""), err


def test_export_never_needs_the_root_secret(alice: Tenant) -> None:
    alice.secret_file.unlink()
    assert "TENCENTCLOUD_SESSION_TOKEN=" in _export(alice, "--scope", "allowed", "--read-only")


def test_export_without_a_token_source_says_how_to_provide_one(
    alice: Tenant, vendor_server: VendorServer
) -> None:
    backend = f"{alice.env.url}&mode=token-vendor&vendor_url={vendor_server.url}"
    code, out, err = alice.cli("creds", "export", "--scope", "allowed", backend=backend)
    assert (code, out) == (EXIT_CODES["configuration"], b""), err
    assert "token_file=" in err


def test_role_per_tenant_exports_nothing(alice: Tenant) -> None:
    backend = f"{alice.env.url}&mode=role-per-tenant&token_file={alice.token_file}"
    code, out, err = alice.cli("get", "allowed", backend=backend)  # the token file works here
    assert (code, out) == (0, b"in-scope secret"), err
    code, out, err = alice.cli("creds", "export", "--scope", "allowed", backend=backend)
    assert (code, out) == (EXIT_CODES["configuration"], b""), err
    assert "scoped_credentials='none'" in err


def _exported(t: Tenant, *args: str) -> dict[str, str]:
    code, out, err = t.cli("creds", "export", *args, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert isinstance(doc, dict)
    return {str(k): str(v) for k, v in doc.items()}


def test_exported_session_cannot_mint_other_credentials(alice: Tenant) -> None:
    doc = _exported(alice, "--scope", "allowed", "--read-only")
    sts = sdk.sts(
        alice.env.double,
        doc["TENCENTCLOUD_SECRET_ID"],
        doc["TENCENTCLOUD_SECRET_KEY"],
        doc["TENCENTCLOUD_SESSION_TOKEN"],
    )
    request = sts_models.AssumeRoleRequest()
    request.RoleArn = f"qcs::cam::uin/{alice.env.double.owner_uin}:roleName/portable-creds-vendor"
    request.RoleSessionName = "escape"
    with pytest.raises(TencentCloudSDKException) as info:
        sts.AssumeRole(request)
    assert info.value.get_code() == "AuthFailure.UnauthorizedOperation"


def test_explicit_deny_on_the_vendor_role_ends_a_live_exported_session(alice: Tenant) -> None:
    """Revocation in token-vendor mode (the double re-reads role policies per request)."""
    exports = _export(alice, "--scope", "allowed", "--read-only")
    ops = [["get in scope", "get", alice.key("allowed")]]
    assert probe(alice.home, exports, ops) == {"get in scope": alice.stored_sha("allowed")}
    d = alice.env.double
    prefix = f"bots/{alice.wallet}/"  # one tenant: the vendor role serves every tenant
    cam = sdk.cam(d)
    create = cam_models.CreatePolicyRequest()
    create.PolicyName = "revoke-vended-sessions"
    create.PolicyDocument = json.dumps(
        {
            "version": "2.0",
            "statement": [
                {
                    "effect": "deny",
                    "action": ["name/cos:*"],
                    "resource": [f"qcs::cos:{d.region}:uid/{d.appid}:{alice.env.bucket}/{prefix}*"],
                }
            ],
        }
    )
    attach = cam_models.AttachRolePolicyRequest()
    attach.PolicyId, attach.AttachRoleName = (
        cam.CreatePolicy(create).PolicyId,
        "portable-creds-vendor",
    )
    cam.AttachRolePolicy(attach)
    assert probe(alice.home, exports, ops) == {"get in scope": "403 AccessDenied"}
    other = alice.env.open(WALLET_B, "token-vendor")  # the other tenants keep working
    other.put(object_key(WALLET_B, "github"), b"b")
    assert other.get(object_key(WALLET_B, "github")).data == b"b"


def test_static_keys_are_never_exported(env: Env) -> None:
    with pytest.raises(ConfigurationError, match="never exported"):
        env.admin().exported_credentials()
