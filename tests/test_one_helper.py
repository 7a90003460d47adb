"""Durable file replacement is written once (``paths.write_file_atomic`` / ``paths.fsync_dir``).

Three copies of "temp file, fsync, rename, fsync the directory" had drifted apart (one raised
where another tolerated a filesystem that cannot fsync a directory). The local driver is the
one deliberate exception: it renames through directory file descriptors (``openat``) under a
lock, for its symlink-safe conditional put.
"""

from __future__ import annotations

import stat
from pathlib import Path

from portable_creds.paths import write_file_atomic

REPO = Path(__file__).resolve().parents[1]
SOURCES = [
    *(REPO / "portable_creds").rglob("*.py"),
    *(REPO / "drivers").rglob("portable_creds_*/**/*.py"),
]


def test_no_second_copy_of_the_durable_write() -> None:
    for path in SOURCES:
        if path.name == "paths.py":
            continue
        text = path.read_text()
        assert "def _fsync_dir" not in text and "def write_file_atomic" not in text, path
        # secret_key's create-only write links a fsynced temp file, then uses fsync_dir
        if path.name not in ("local.py", "secret_key.py"):
            assert "os.fsync(" not in text, path
        # the outbox also renames an entry it already made durable into its delivered state
        # (a move, not a write: no data reaches the disk through it)
        if path.name not in ("local.py", "outbox.py"):
            assert "os.replace(" not in text, path


def test_write_file_atomic_replaces_whole_and_private(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")
    write_file_atomic(target, b"new contents", 0o600)
    assert target.read_bytes() == b"new contents"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["f"]  # no temp file left behind
