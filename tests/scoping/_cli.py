"""Running the real ``portable-creds`` CLI, and a bare-boto3 child, as subprocesses.

Shared by the scoping tests here and the RGW ones in ``tests/aws/test_scoping_cli.py``. The
environment is scrubbed of the user's settings (``PORTABLE_CREDS_*``, ``AGENTKEYS_*``,
``XDG_*``, ``AWS_*``) so only what a test passes reaches the process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent / "portable-creds"
PROBE = Path(__file__).resolve().parent / "bare_boto3_probe.py"
ERROR_PREFIX = "portable-creds: error: "


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("PORTABLE_CREDS_", "AGENTKEYS_", "XDG_", "AWS_", "TENCENTCLOUD_", "COS_")
        )
    }
    env["HOME"] = str(home)
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


def run_cli(
    home: Path, *args: str, input: bytes = b"", env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    full = clean_env(home)
    full.update(env or {})
    return subprocess.run(
        [str(BIN), *args], input=input, capture_output=True, env=full, timeout=120, check=False
    )


def stderr_of(proc: subprocess.CompletedProcess[bytes]) -> str:
    return proc.stderr.decode(errors="replace")


def probe_with_exports(home: Path, exports: str, request: Mapping[str, Any]) -> dict[str, str]:
    """Run the bare-boto3 probe in a POSIX shell that ``eval``s ``exports`` first.

    The child's environment holds nothing but PATH, HOME and what the export lines set, so
    boto3 can only use the exported credentials (its default chain reads the env vars).
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "EXPORTS": exports,
        "PROBE_PYTHON": sys.executable,
        "PROBE_SCRIPT": str(PROBE),
    }
    proc = subprocess.run(
        ["/bin/sh", "-c", 'eval "$EXPORTS" && exec "$PROBE_PYTHON" "$PROBE_SCRIPT"'],
        input=json.dumps(dict(request)).encode(),
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, stderr_of(proc)
    result = json.loads(proc.stdout)
    assert isinstance(result, dict)
    return {str(k): str(v) for k, v in result.items()}
