"""``run`` withholds portable-creds' own settings and tokens from the child, and refuses two
credentials competing for one variable (issue 12 #6)."""

from __future__ import annotations

import json
import sys

from portable_creds.childenv import scrubbed_name
from portable_creds.errors import EXIT_CODES

from .conftest import Cli

PRINT_ALL = "import json, os; print(json.dumps(dict(os.environ)))"

PARENT_SECRETS = {
    "PORTABLE_CREDS_LEGACY_TOKEN": "legacy-bearer",
    "PORTABLE_CREDS_DEBUG": "",
    "AGENTKEYS_SIGNER_TOKEN": "signer-bearer",
    "AGENTKEYS_WORKER_KEK_HEX": "ab" * 32,
    "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/oidc/token",
    "MY_TOKEN_FILE": "/tmp/t",
}
PARENT_KEPT = {"AGENTKEYS_BUCKET": "b", "AWS_REGION": "us-east-1", "UNRELATED": "x"}


def test_child_does_not_inherit_portable_creds_tokens(wallet_cli: Cli) -> None:
    wallet_cli.ok("put", "openai", input=b"sk-1")
    proc = wallet_cli.ok(
        "run", "--", sys.executable, "-c", PRINT_ALL, env={**PARENT_SECRETS, **PARENT_KEPT}
    )
    child = json.loads(proc.stdout)
    assert child["OPENAI_API_KEY"] == "sk-1"
    leaked = sorted(k for k in child if k in PARENT_SECRETS or k.startswith("PORTABLE_CREDS_"))
    assert leaked == []
    assert {k: child.get(k) for k in PARENT_KEPT} == PARENT_KEPT


def test_keep_env_passes_everything_on(wallet_cli: Cli) -> None:
    wallet_cli.ok("put", "openai", input=b"sk-1")
    proc = wallet_cli.ok(
        "run", "--keep-env", "--", sys.executable, "-c", PRINT_ALL, env=PARENT_SECRETS
    )
    child = json.loads(proc.stdout)
    assert child["PORTABLE_CREDS_LEGACY_TOKEN"] == "legacy-bearer"
    assert child["AGENTKEYS_SIGNER_TOKEN"] == "signer-bearer"
    assert child["PORTABLE_CREDS_WALLET"]


def test_debug_names_what_was_withheld_without_values(wallet_cli: Cli) -> None:
    proc = wallet_cli.ok("--debug", "run", "--", "true", env=PARENT_SECRETS)
    err = proc.stderr.decode()
    assert "AGENTKEYS_SIGNER_TOKEN" in err and "PORTABLE_CREDS_LEGACY_TOKEN" in err
    assert "signer-bearer" not in err and "legacy-bearer" not in err


def test_two_services_for_one_variable_are_refused(wallet_cli: Cli) -> None:
    wallet_cli.ok("put", "openai", input=b"lower")
    wallet_cli.ok("put", "OpenAI", input=b"upper")
    wallet_cli.ok("put", "github", input=b"gh")
    for argv in (
        ("--env", "X=openai", "--env", "X=github"),
        ("--service", "openai", "--service", "OpenAI"),
        ("--env", "OPENAI_API_KEY=github", "--service", "openai"),
    ):
        proc = wallet_cli.run("run", *argv, "--", sys.executable, "-c", "print('ran')")
        assert proc.returncode == EXIT_CODES["usage"], argv
        assert b"ran" not in proc.stdout and b"would both be injected" in proc.stderr
    # Every credential of the wallet (no selection): OpenAI and openai collide too.
    proc = wallet_cli.run("run", "--", sys.executable, "-c", "print('ran')")
    assert proc.returncode == EXIT_CODES["invalid-input"]
    assert b"ran" not in proc.stdout and b"OPENAI_API_KEY" in proc.stderr
    # The same service twice is not a conflict.
    wallet_cli.ok("run", "--service", "github", "--env", "GITHUB_API_KEY=github", "--", "true")


def test_scrub_rules() -> None:
    for name in ("PORTABLE_CREDS_HOME", "AGENTKEYS_BROKER_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        assert scrubbed_name(name), name
    for name in ("AGENTKEYS_BUCKET", "AGENTKEYS_CREDENTIAL_BACKEND", "AWS_ACCESS_KEY_ID", "PATH"):
        assert not scrubbed_name(name), name
