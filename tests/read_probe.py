"""Read one credential in a child process and report what the read cost the *client*.

The endpoints the tests use (moto, the COS double) run inside the pytest process, so a
``tracemalloc`` peak measured there includes the server's own copy of the body. Run as
``python tests/read_probe.py '<json>'``: it opens the object store by URL (static keys),
reads ``service`` through a ``CredentialStore`` (root secret ``root_hex``, a small
``max_payload``) and prints ``{"error": <class name or null>, "peak": <bytes>}``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any


def probe(spec: dict[str, Any]) -> dict[str, Any]:
    """Run this file in a fresh interpreter with ``spec``; return its JSON answer."""
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    answer: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return answer


def main() -> None:
    from portable_creds.driver import StoreTarget
    from portable_creds.registry import load_driver
    from portable_creds.secret_key import SecretKeySource
    from portable_creds.store import CredentialStore

    spec = json.loads(sys.argv[1])
    target = StoreTarget(url=spec["url"], wallet=None, options=spec["options"])
    objects = load_driver(target.scheme).open_object_store(target)
    keys = SecretKeySource(bytes.fromhex(spec["root_hex"]))
    store = CredentialStore(objects, keys, spec["wallet"], max_payload=spec["max_payload"])
    error: str | None = None
    tracemalloc.start()
    try:
        store.get(spec["service"])
    except Exception as exc:  # the class name is the answer
        error = type(exc).__name__
    _, peak = tracemalloc.get_traced_memory()
    print(json.dumps({"error": error, "peak": peak}))


if __name__ == "__main__":
    main()
