"""``portable-creds demo`` (and ``make demo``): a narrated tour of what the library promises.

It runs on the local backend in a fresh temporary home, so it needs no configuration and
touches nothing of the user's: store for wallet A, read back, show that wallet B can neither
list nor read A's object, show that the stored bytes hold no plaintext, and show that one
flipped byte makes the blob fail its integrity check. The secret is a random demo value.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from . import _common

WALLET_A = "0x" + "a11ce" * 8
WALLET_B = "0x" + "b0b0" * 10
SERVICE = "openai"


def register(subparsers: Any) -> None:
    p = _common.add_command(
        subparsers,
        "demo",
        help="a short narrated walkthrough on a throw-away local store",
        description=(
            "Store a credential for wallet A, read it back, show that wallet B cannot see it,\n"
            "show that the stored blob holds no plaintext, flip one byte and show the\n"
            "integrity error. Runs in a temporary home; your own store is not touched."
        ),
        epilog=(
            "examples:\n"
            "  portable-creds demo\n"
            "  portable-creds demo --json     # the checks' results as one JSON object"
        ),
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary home and print its path")
    p.set_defaults(func=cmd_demo)


#: Where the narration goes: stdout, or nowhere with ``--json`` (stdout carries the result).
_out: list[TextIO] = []


def _say(text: str = "") -> None:
    (_out[-1] if _out else sys.stdout).write(text + "\n")


def _step(n: int, total: int, title: str) -> None:
    _say()
    _say(f"[{n}/{total}] {title}")
    _say("-" * (len(title) + 6))


def hexdump(data: bytes, *, limit: int = 64, indent: str = "    ") -> list[str]:
    """``xxd``-style lines for the first ``limit`` bytes."""
    lines = []
    for off in range(0, min(len(data), limit), 16):
        chunk = data[off : off + 16]
        hexpart = " ".join(chunk[i : i + 2].hex() for i in range(0, len(chunk), 2))
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{indent}{off:08x}: {hexpart:<39}  {text}")
    if len(data) > limit:
        lines.append(f"{indent}... ({len(data) - limit} more bytes)")
    return lines


def cmd_demo(args: argparse.Namespace) -> int:
    import io
    import shutil
    import tempfile

    as_json = _common.flag(args, "json")
    home = Path(tempfile.mkdtemp(prefix="portable-creds-demo-"))
    if as_json:
        _out.append(io.StringIO())
    try:
        results = run_demo(home)
    finally:
        if as_json:
            _out.pop()
        if _common.flag(args, "keep"):
            if not as_json:
                _say(f"\nThe demo home is kept at {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    if as_json:
        _common.print_json(
            {"ok": True, **results, "home": str(home) if _common.flag(args, "keep") else None}
        )
    return 0


def run_demo(home: Path) -> dict[str, Any]:
    """The narrated tour; returns what it showed (each step raises if its promise fails)."""
    import secrets

    from ..errors import EXIT_CODES, AccessDenied, IntegrityError
    from ..opener import open_store

    root = home / "objects"
    url = f"local://{root}"
    secret = f"sk-demo-{secrets.token_hex(12)}".encode()
    total = 5

    _say("portable-creds demo: sealed, tenant-isolated credentials on the local backend")
    _say(f"(a throw-away home: {home}; the secret below is a random demo value)")

    _step(1, total, "Wallet A stores a credential")
    store_a = open_store(
        url, wallet=WALLET_A, home=home, on_notice=lambda msg: _say(f"    note: {msg}")
    )
    store_a.put(SERVICE, secret)
    key = store_a.key_for(SERVICE)
    path = root / key
    _say(f"    $ echo {secret.decode()} | portable-creds --wallet {WALLET_A} put {SERVICE}")
    _say(f"    sealed on this machine and stored at  {key}")
    _say(f"    file {path} ({path.stat().st_size} bytes, mode {path.stat().st_mode & 0o777:04o})")

    _step(2, total, "Wallet A reads it back")
    got = store_a.get(SERVICE).reveal()
    _say(f"    $ portable-creds --wallet {WALLET_A} get {SERVICE}")
    _say(f"    {got.decode()}")
    _say(f"    identical to what was stored: {'yes' if got == secret else 'NO'}")
    if got != secret:
        raise IntegrityError("the demo read back different bytes than it stored")

    _step(3, total, "Wallet B cannot see it")
    store_b = open_store(url, wallet=WALLET_B, home=home)
    listed = store_b.list()
    _say(f"    $ portable-creds --wallet {WALLET_B} list")
    _say(f"    {listed!r}   (B's list is empty)" if not listed else f"    {listed!r}")
    try:
        store_b.objects.get(key)
    except AccessDenied as exc:
        _say(f"    B asks for A's object {key} directly:")
        _say(f"    AccessDenied: {exc}")
    else:
        raise AccessDenied("the demo expected wallet B to be refused, but it read A's object")

    _step(4, total, "The stored blob holds no plaintext")
    blob = path.read_bytes()
    _say(f"    the first bytes of the {len(blob)}-byte blob (header, wrapped key, ...):")
    for line in hexdump(blob):
        _say(line)
    found = secret in blob or secret.hex().encode() in blob
    _say(f"    searching the blob for the secret's bytes: {'FOUND' if found else 'not found'}")
    if found:
        raise IntegrityError("the demo found the plaintext in the stored blob")

    _step(5, total, "Flip one byte: the integrity check refuses the blob")
    offset = len(blob) - 20
    with open(path, "r+b") as fh:
        fh.seek(offset)
        old = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([old ^ 0x01]))
    _say(f"    flipped byte {offset} of the stored file: 0x{old:02x} -> 0x{old ^ 0x01:02x}")
    _say(f"    $ portable-creds --wallet {WALLET_A} get {SERVICE}")
    try:
        store_a.get(SERVICE)
    except IntegrityError as exc:
        _say(f"    IntegrityError: {exc}")
    else:
        raise IntegrityError("the demo expected the flipped blob to fail its integrity check")
    _say(
        "    (no partial plaintext is ever returned; the CLI exits with code "
        f"{EXIT_CODES['integrity']})"
    )

    _say()
    _say("Done. Try it yourself:")
    results = {
        "wallet_a": WALLET_A,
        "wallet_b": WALLET_B,
        "service": SERVICE,
        "stored_key": key,
        "read_back_identical": got == secret,
        "other_wallet_listed": listed,
        "other_wallet_read_refused": True,
        "plaintext_in_blob": found,
        "tamper_detected": True,
    }
    _say("    export PORTABLE_CREDS_WALLET=0x<your 40 hex>")
    _say('    echo "$API_KEY" | portable-creds put myservice && portable-creds list')
    return results
