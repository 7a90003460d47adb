"""What a cold ``portable-creds get`` imports (issue 13: a fast cold CLI on cloud backends).

A fresh ``get`` whose STS session is already in the cross-process credential cache must not
pay for what only an exchange, an administrator or another command needs: the token verifier
(PyJWT), the admin and KMS modules, the audit log without a sink, other commands' modules.
Checked on the installed CLI as a subprocess (boto3 against a moto server for ``s3://``); the
module list is ``sys.modules`` when the process exits, which, unlike ``-X importtime``, also
sees modules loaded through ``importlib`` (command modules, entry points).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from portable_creds import cli as cli_module
from portable_creds.testing.faultproxy import FaultProxy

from .conftest import Cli

#: Runs the CLI like the console script, then writes ``sorted(sys.modules)`` to argv[1].
DUMP_MODULES = """
import atexit, json, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
from portable_creds.cli import main
sys.exit(main(sys.argv[1:]))
"""

#: Never on the cold path of ``get``, whatever the backend.
NOT_FOR_GET = (
    "jwt",
    "portable_creds.audit",  # no audit sink is configured
    "portable_creds.commands.admin",
    "portable_creds.commands.run",
    "portable_creds.commands.doctor",
    "portable_creds.commands.demo",
    "portable_creds.commands.migrate",
    "portable_creds.commands.completion",
)


def modules_of(cli: Cli, tmp_path: Path, *args: str) -> set[str]:
    out = tmp_path / "modules.json"
    proc = subprocess.run(
        [sys.executable, "-c", DUMP_MODULES, str(out), *args],
        capture_output=True, env=cli.env, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return set(json.loads(out.read_text()))


def imported(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """Those of ``names`` (or their submodules) that were imported."""
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def test_local_get_imports_only_its_command(wallet_cli: Cli, tmp_path: Path) -> None:
    wallet_cli.ok("put", "svc", input=b"sk-local")
    mods = modules_of(wallet_cli, tmp_path, "get", "svc")
    assert "portable_creds.commands.credentials" in mods
    assert imported(mods, NOT_FOR_GET) == []
    assert imported(mods, ("boto3", "botocore", "qcloud_cos", "tencentcloud")) == []
    # A local get makes no HTTP request and runs no thread pool: URL checks live in
    # portable_creds.urls, the pool is built by get_many only.
    assert imported(mods, ("urllib.request", "http.client", "concurrent.futures")) == []
    # The driver is found by reading entry_points.txt (registry.declared_entry_point), not
    # through importlib.metadata (botocore imports it on s3://, so only checked here).
    assert imported(mods, ("importlib.metadata",)) == []


def test_command_words_match_what_modules_register() -> None:
    """``cli.COMMAND_WORDS`` (which module to import for a command) and ``HOOK_MODULES``
    (always imported) agree with what the command modules actually register."""

    class Recorder:
        def __init__(self) -> None:
            self.words: list[str] = []

        def add_parser(self, name: str, **kwargs: Any) -> Any:
            self.words += [name, *kwargs.get("aliases", ())]
            return cli_module._Discarded()

        def __getattr__(self, name: str) -> Any:
            return getattr(cli_module._Discarded(), name)

    for module in cli_module._load_modules():
        short = module.__name__.rsplit(".", 1)[1]
        rec = Recorder()
        module.register(rec)
        assert sorted(cli_module.COMMAND_WORDS[short]) == sorted(rec.words), short
        hooks = hasattr(module, "add_global_options") or hasattr(module, "settings_layer")
        assert hooks == (short in cli_module.HOOK_MODULES), short
    assert set(cli_module.COMMAND_WORDS) == set(cli_module.COMMAND_MODULES)


def test_warm_cache_s3_get_skips_exchange_and_admin_modules(
    wallet_cli: Cli, moto_endpoint: str, moto_bucket: str, tmp_path: Path
) -> None:
    pytest.importorskip("portable_creds_aws")
    host, port = moto_endpoint.removeprefix("http://").split(":")
    token = tmp_path / "oidc.jwt"
    token.write_text("header.payload.signature")
    with FaultProxy((host, int(port))) as sts:
        wallet_cli.env["PORTABLE_CREDS_BACKEND"] = (
            f"s3://{moto_bucket}?endpoint={moto_endpoint}&sts_endpoint={sts.url}"
            f"&region=us-east-1&role_arn=arn:aws:iam::123456789012:role/data&token_file={token}"
        )
        wallet_cli.ok("put", "svc", input=b"sk-s3")  # exchanges once, caches the session
        mods = modules_of(wallet_cli, tmp_path, "get", "svc")
        assert sum(1 for r in sts.records if r.request.method == "POST") == 1
    assert "botocore" in mods  # it did read from S3
    assert imported(mods, NOT_FOR_GET) == []
    assert imported(mods, ("boto3", "portable_creds_aws.admin", "portable_creds_aws.kms")) == []
