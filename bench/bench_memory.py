"""Peak RSS of a 10,000-credential bulk read on the local backend.

The read runs in a fresh child process so the number is that process's own high-water mark
(``VmHWM``), not the benchmark harness's. Reported: RSS after imports and one warm-up read
(the floor), peak RSS after ``list()`` + ``get_many()`` of every credential, and the difference
per credential. Credentials are seeded by sealing with the real store and writing the files in
the local backend's layout directly (no fsync per file), which changes nothing about reading.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BENCH = "memory"
WALLET = "0x" + "e5" * 20
SECRET_LEN = 120  # a typical API key / token, with some room

CHILD = r"""
import json, resource, sys, time


def peak_kib():
    # VmHWM is this address space's high-water mark; ru_maxrss would survive exec and report
    # the parent's peak when the parent was bigger.
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

from portable_creds.local import LocalObjectStore
from portable_creds.secret_key import SecretKeySource
from portable_creds.store import CredentialStore

root, keyfile, wallet, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
store = CredentialStore(LocalObjectStore(root, wallet=wallet), SecretKeySource.from_file(keyfile),
                        wallet)
store.get("svc-00000")
base = peak_kib()
start = time.perf_counter()
names = store.list()
secrets = store.get_many(names, max_workers=workers)
elapsed = time.perf_counter() - start
peak = peak_kib()
ok = sum(1 for n, s in secrets.items() if s.reveal()[:12] == n.encode()[:12].ljust(12, b"."))
print(json.dumps({"base_kib": base, "peak_kib": peak, "count": len(secrets), "ok": ok,
                  "seconds": elapsed}))
"""


def _secret(service: str) -> bytes:
    return service.encode()[:12].ljust(12, b".") + b"x" * (SECRET_LEN - 12)


def seed(root: Path, keyfile: Path, count: int) -> None:
    from portable_creds.local import LocalObjectStore
    from portable_creds.secret_key import SecretKeySource
    from portable_creds.store import CredentialStore

    keys = SecretKeySource.create_file(keyfile)
    store = CredentialStore(LocalObjectStore(root, wallet=WALLET), keys, WALLET)
    store.put("svc-00000", _secret("svc-00000"))  # creates the directories (0700)
    directory = root / "bots" / WALLET / "credentials"
    for i in range(1, count):
        service = f"svc-{i:05d}"
        path = directory / f"{service}.enc"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(store.seal(service, _secret(service)))


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    default = "2000" if "--quick" in (argv or []) else "10000"
    count = int(os.environ.get("BENCH_MEMORY_COUNT", default))
    workers = 16
    with tempfile.TemporaryDirectory() as tmp:
        root, keyfile = Path(tmp) / "objects", Path(tmp) / "root.key"
        seed(root, keyfile, count)
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(root), str(keyfile), WALLET, str(workers)],
            capture_output=True,
            check=True,
        )
    res = json.loads(proc.stdout)
    if res["count"] != count or res["ok"] != count:
        raise RuntimeError(f"bulk read returned {res['count']} credentials, {res['ok']} correct")
    base, peak = res["base_kib"] / 1024, res["peak_kib"] / 1024
    note = f"local backend, {count:,} x {SECRET_LEN}-byte secrets, get_many({workers} threads)"
    rows: list[dict[str, Any]] = [
        {
            "bench": BENCH,
            "case": "RSS after imports + one get",
            "metric": "MiB",
            "value": base,
            "note": "fresh process",
        },
        {
            "bench": BENCH,
            "case": f"peak RSS, bulk read of {count:,}",
            "metric": "MiB",
            "value": peak,
            "n": count,
            "note": note,
        },
        {
            "bench": BENCH,
            "case": "peak - floor, per credential",
            "metric": "KiB",
            "value": (res["peak_kib"] - res["base_kib"]) / count,
            "n": count,
            "plot": False,
            "note": "includes list() and the returned dict of Secret objects",
        },
        {
            "bench": BENCH,
            "case": f"bulk read of {count:,} (local)",
            "metric": "ops/s",
            "value": count / res["seconds"],
            "n": count,
            "plot": False,
            "note": note,
        },
    ]
    for row in rows:
        print(f"{row['case']:<40} {row['value']:.2f} {row['metric']}", file=sys.stderr)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
