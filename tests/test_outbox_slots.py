"""The outbox's journal slots (issue 13): one per process, gone when the process exits
normally, recovered into a pending entry when the process was killed mid-put."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from portable_creds.outbox import Outbox

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import os, sys, time
from portable_creds.outbox import Outbox
box = Outbox(sys.argv[1])
entry = box.add(backend_id="b", wallet="0x" + "ab" * 20, service="svc",
                key="bots/k/credentials/svc.enc", blob=b"sealed-bytes", durable=False)
if sys.argv[2] == "deliver":
    box.delivered(entry)
    print("done", flush=True)
else:
    print("in-flight", flush=True)
    time.sleep(60)
"""


def _child(directory: Path, mode: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(directory), mode],
        stdout=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(REPO)),
    )


def test_a_normal_exit_leaves_no_slot(tmp_path: Path) -> None:
    proc = _child(tmp_path / "ob", "deliver")
    assert proc.communicate(timeout=60)[0] == b"done\n"
    names = sorted(p.name for p in (tmp_path / "ob").iterdir())
    assert names[0] == ".seq" and names[1].endswith(".last") and len(names) == 2, names


def test_a_killed_writer_is_recovered_and_a_live_one_is_not(tmp_path: Path) -> None:
    proc = _child(tmp_path / "ob", "hold")
    assert proc.stdout is not None and proc.stdout.readline() == b"in-flight\n"
    box = Outbox(tmp_path / "ob")
    assert box.pending() == []  # alive: its put is in flight, not pending
    assert len(list((tmp_path / "ob").glob("*.slot"))) == 1
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while not box.pending() and time.monotonic() < deadline:
        time.sleep(0.05)  # the kernel releases the dead process's lock
    [entry] = box.pending()
    assert entry.service == "svc" and box.read_blob(entry) == b"sealed-bytes"
    assert list((tmp_path / "ob").glob("*.slot")) == []
    assert entry.path.stat().st_mode & 0o777 == 0o600
