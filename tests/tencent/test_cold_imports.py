"""What a cold ``portable-creds get`` on ``cos://`` imports with a warm credential cache
(issue 13). The session comes from the cache, so nothing that only an STS exchange, the token
vendor or an administrator needs may be imported: not ``tencentcloud`` (the STS/CAM SDK), not
PyJWT, not the policy builder or the provisioner. The GET itself is signed by ``signed_get``,
so the COS SDK (and requests under it) is not imported either. The CLI runs as a subprocess
against the signature-verifying double; ``sys.modules`` is read when the process exits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import AUDIENCE, WALLET_A, Env

DUMP_MODULES = """
import atexit, json, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
from portable_creds.cli import main
sys.exit(main(sys.argv[1:]))
"""
_SCRUB = ("PORTABLE_CREDS_", "AGENTKEYS_", "XDG_", "AWS_", "TENCENTCLOUD_", "COS_")

NOT_ON_A_WARM_GET = (
    "qcloud_cos",
    "requests",
    "urllib3",
    "tencentcloud",
    "jwt",
    "importlib.metadata",
    "portable_creds.audit",
    "portable_creds.upstream",
    "portable_creds.commands.admin",
    "portable_creds_tencent.admin",
    "portable_creds_tencent.policies",
    "portable_creds_tencent.vendor_service",
)


def test_warm_cache_cos_get_imports_no_sts_sdk(env: Env, tmp_path: Path) -> None:
    token = tmp_path / "token.jwt"
    token.write_text(env.idp.mint(WALLET_A, AUDIENCE, lifetime=3600))
    secret = tmp_path / "root.key"
    secret.write_bytes(os.urandom(32))
    secret.chmod(0o600)
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB)}
    run_env.pop("PYTHONPATH", None)
    run_env["HOME"] = str(tmp_path)
    out = tmp_path / "modules.json"
    base = ["--backend", f"{env.url}&mode=role-per-tenant&token_file={token}", "--wallet",
            WALLET_A, "--secret-file", str(secret), "--home", str(tmp_path / "data")]

    def run(*args: str, stdin: bytes = b"") -> bytes:
        proc = subprocess.run(
            [sys.executable, "-c", DUMP_MODULES, str(out), *base, *args],
            input=stdin, capture_output=True, env=run_env, timeout=120, check=False,
        )
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        return proc.stdout

    run("put", "svc", stdin=b"sk-cos-cold")  # exchanges once and caches the session
    assert "tencentcloud.common" in json.loads(out.read_text())  # the exchange needed it
    issued = len(env.double.issued_sessions)
    assert run("get", "svc") == b"sk-cos-cold"
    assert len(env.double.issued_sessions) == issued  # the session came from the cache
    mods = set(json.loads(out.read_text()))
    assert "portable_creds_tencent.signed_get" in mods
    leaked = sorted(
        m for m in mods if any(m == n or m.startswith(n + ".") for n in NOT_ON_A_WARM_GET)
    )
    assert leaked == []
