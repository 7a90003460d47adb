"""``creds export`` and ``--scope`` through the real CLI against Ceph RGW (real OIDC -> STS).

The headline test: the CLI exports read-only credentials for one service, a child process with
bare boto3 and nothing but those environment variables reads that service and is refused
everything else by RGW (another service, write, delete, list, copy).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest

from portable_creds.names import object_key

from ..scoping._cli import ERROR_PREFIX, probe_with_exports, run_cli, stderr_of
from .conftest import RgwDeployment

pytestmark = pytest.mark.rgw

EXPECTED_VARS = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
}


class Tenant:
    """One onboarded wallet, its token file and root secret, and CLI arguments for it."""

    def __init__(self, deployment: RgwDeployment, wallet: str, home: Path) -> None:
        self.deployment = deployment
        self.wallet = wallet
        self.home = home
        token = home / "token.jwt"
        token.write_text(deployment.issuer.token(wallet))
        token.chmod(0o600)
        self.secret_file = home / "root.key"
        self.secret_file.write_bytes(secrets.token_bytes(32))
        self.secret_file.chmod(0o600)
        self.backend = deployment.url(token_file=str(token))

    def cli(self, *args: str, input: bytes = b"") -> tuple[int, bytes, str]:
        proc = run_cli(
            self.home,
            "--backend",
            self.backend,
            "--wallet",
            self.wallet,
            "--secret-file",
            str(self.secret_file),
            "--home",
            str(self.home / "data"),
            *args,
            input=input,
        )
        return proc.returncode, proc.stdout, stderr_of(proc)

    def key(self, service: str) -> str:
        return object_key(self.wallet, service)

    def stored_sha(self, service: str) -> str:
        blob = self.deployment.admin_store().get(self.key(service)).data
        return "ok:" + hashlib.sha256(blob).hexdigest()


@pytest.fixture
def alice(rgw_deployment: RgwDeployment, tenant: Callable[[], str], tmp_path: Path) -> Tenant:
    t = Tenant(rgw_deployment, tenant(), tmp_path)
    for service, value in (("allowed", b"in-scope secret"), ("denied", b"other secret")):
        code, _, err = t.cli("put", service, input=value)
        assert code == 0, err
    return t


def _export(t: Tenant, *args: str) -> str:
    code, out, err = t.cli("creds", "export", *args)
    assert code == 0, err
    text = out.decode()
    # Nothing secret on stderr: not the secret key, not the session token.
    values = dict(line.split(" ", 1)[1].split("=", 1) for line in text.splitlines())
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        assert shlex.split(values[name])[0] not in err
    return text


def test_read_only_export_is_refused_outside_its_scope_by_rgw(alice: Tenant) -> None:
    exports = _export(alice, "--scope", "allowed", "--read-only")
    lines = exports.splitlines()
    assert all(line.startswith("export ") for line in lines)
    assert {line.split(" ", 1)[1].split("=", 1)[0] for line in lines} == EXPECTED_VARS

    allowed, denied = alice.key("allowed"), alice.key("denied")
    outcome = probe_with_exports(
        alice.home,
        exports,
        {
            "bucket": alice.deployment.bucket,
            "ops": [
                ["get in scope", "get", allowed],
                ["head in scope", "head", allowed],
                ["get other service", "get", denied],
                ["head other service", "head", denied],
                ["put in scope", "put", allowed],
                ["put other service", "put", denied],
                ["delete in scope", "delete", allowed],
                ["delete other service", "delete", denied],
                ["list tenant", "list", f"bots/{alice.wallet}/"],
                ["list exact key", "list", allowed],
                ["copy other into scope", "copy", [denied, allowed]],
            ],
        },
    )
    assert outcome.pop("get in scope") == alice.stored_sha("allowed")
    assert outcome.pop("head in scope") == "ok"
    # A HEAD response has no body, so its refusal is the bare status code.
    refused = {name: code for name, code in outcome.items() if code not in ("AccessDenied", "403")}
    assert outcome["head other service"] == "403"
    assert refused == {}, f"RGW allowed (or answered otherwise): {refused}"
    # The refused writes changed nothing.
    for service, value in (("allowed", b"in-scope secret"), ("denied", b"other secret")):
        code, out, err = alice.cli("get", service)
        assert (code, out) == (0, value), err


def test_read_write_export_writes_only_its_services(alice: Tenant) -> None:
    exports = _export(alice, "--scope", "allowed,fresh")
    outcome = probe_with_exports(
        alice.home,
        exports,
        {
            "bucket": alice.deployment.bucket,
            "ops": [
                ["put fresh", "put", alice.key("fresh")],
                ["delete fresh", "delete", alice.key("fresh")],
                ["put other service", "put", alice.key("denied")],
                ["delete other service", "delete", alice.key("denied")],
                ["list tenant", "list", f"bots/{alice.wallet}/"],
            ],
        },
    )
    assert outcome == {
        "put fresh": "ok",
        "delete fresh": "ok",
        "put other service": "AccessDenied",
        "delete other service": "AccessDenied",
        "list tenant": "AccessDenied",
    }


def test_json_export_holds_the_same_variables(alice: Tenant) -> None:
    code, out, err = alice.cli("creds", "export", "--scope", "allowed", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) == EXPECTED_VARS
    assert doc["AWS_ENDPOINT_URL_S3"] == alice.deployment.endpoint.url
    assert doc["AWS_CREDENTIAL_EXPIRATION"].endswith("Z")
    outcome = probe_with_exports(
        alice.home,
        "".join(f"export {k}={shlex.quote(v)}\n" for k, v in doc.items()),
        {"bucket": alice.deployment.bucket, "ops": [["get", "get", alice.key("allowed")]]},
    )
    assert outcome == {"get": alice.stored_sha("allowed")}


def test_scope_option_narrows_every_command(alice: Tenant) -> None:
    code, out, err = alice.cli("--scope", "allowed", "--read-only", "get", "allowed")
    assert (code, out) == (0, b"in-scope secret"), err
    code, out, err = alice.cli("--scope", "allowed", "--read-only", "get", "denied")
    assert code == 4 and out == b"", err  # access-denied, from RGW
    assert err.startswith(ERROR_PREFIX) and "scoped credentials" in err
    code, out, err = alice.cli("--scope", "allowed", "--read-only", "put", "allowed", input=b"x")
    assert code == 4, err
    code, out, err = alice.cli("--scope", "allowed,denied,absent", "list")
    assert (code, out) == (0, b"allowed\ndenied\n"), err
    code, out, err = alice.cli("--scope", "allowed", "put", "allowed", input=b"rotated")
    assert code == 0, err
    code, out, err = alice.cli("get", "allowed")
    assert out == b"rotated"
    # Nothing was parked in the outbox by the refused read-only write (pending entries are
    # *.json; the outbox also keeps its sequence counter and each key's last state).
    outbox = alice.home / "data" / "outbox"
    assert not outbox.exists() or not any(outbox.glob("*.json"))


def test_export_never_needs_the_root_secret(alice: Tenant) -> None:
    os.unlink(alice.secret_file)
    exports = _export(alice, "--scope", "allowed", "--read-only")
    assert "AWS_SESSION_TOKEN=" in exports


def test_export_is_audited_without_the_credentials(alice: Tenant) -> None:
    log = alice.home / "audit.jsonl"
    code, out, err = alice.cli(
        "creds",
        "export",
        "--scope",
        "allowed,denied",
        "--read-only",
        "--format",
        "json",
        "--audit",
        f"file:{log}",
    )
    assert code == 0, err
    exported = json.loads(out)
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["operation"], e["outcome"], e["service"], e["wallet"]) for e in events] == [
        ("creds-export", "ok", "allowed,denied", alice.wallet)
    ]
    text = log.read_text()
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID"):
        assert exported[name] not in text
