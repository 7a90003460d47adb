"""Coverage-guided fuzz target (atheris) for the envelope parser and opener.

The parser is the one piece of code that reads attacker-controlled bytes before any
authentication, so it gets more than property tests: libFuzzer mutates inputs to reach new
branches. The invariant: any input either opens to exactly the plaintext it was sealed from
(only possible for the seed blobs) or raises IntegrityError / PayloadTooLarge. Anything else
(another exception, a hang, a crash) is a finding.

Run: ``make fuzz FUZZ_SECONDS=600`` or
``.venv/bin/python fuzz/fuzz_envelope.py -max_total_time=600 fuzz/corpus``.
Not part of CI. Needs ``pip install atheris`` (a wheel exists for CPython 3.11 on Linux x86-64).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from portable_creds import envelope
    from portable_creds.errors import IntegrityError, PayloadTooLarge
    from portable_creds.keys import Kek

WALLET = "0x" + "ab" * 20
SERVICE = "fuzz"
CONTEXT = envelope.Context(WALLET, SERVICE, f"bots/{WALLET}/credentials/{SERVICE}.enc")
KEK = Kek("fuzz.v1", bytes(range(32)))
SEED_PLAINTEXTS = (b"", b"s", b"sk-or-v1-" + b"a" * 40, bytes(range(256)))


def _resolve(kek_id: str) -> Kek:
    if kek_id != KEK.kek_id:
        raise IntegrityError()
    return KEK


def _seed_blobs() -> dict[bytes, bytes]:
    """Fixed-randomness seals, so the seeds are reproducible and recognisable."""
    seeds = {}
    for i, plaintext in enumerate(SEED_PLAINTEXTS):
        counter = iter(range(1_000_000))

        def rng(n: int, base: int = i, counter: object = counter) -> bytes:
            start = next(counter)  # type: ignore[call-overload]
            return bytes((base * 31 + start + k) % 256 for k in range(n))

        blob = envelope.seal(plaintext, kek=KEK, context=CONTEXT, rng=rng)
        seeds[blob] = plaintext
    return seeds


SEEDS = _seed_blobs()


def test_one_input(data: bytes) -> None:
    with contextlib.suppress(IntegrityError, PayloadTooLarge):
        envelope.parse_header(data)
    try:
        plaintext = envelope.open_blob(
            data, context=CONTEXT, resolve_kek=_resolve, max_payload=envelope.ABSOLUTE_MAX_PAYLOAD
        )
    except (IntegrityError, PayloadTooLarge):
        return
    # Only an unmodified seed may open, and only to its own plaintext.
    if SEEDS.get(data) != plaintext:
        raise AssertionError("a blob that was not sealed by us opened successfully")


def write_corpus(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for i, blob in enumerate(SEEDS):
        (directory / f"seed-{i}").write_bytes(blob)


def main(argv: list[str]) -> None:
    corpus = next((Path(a) for a in argv[1:] if not a.startswith("-")), None)
    if corpus is not None and not any(corpus.glob("*")):
        write_corpus(corpus)
    os.environ.setdefault("PYTHONHASHSEED", "0")
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
