"""The fast path of ``build_parser(argv)`` (only the named command gets a real subparser)
parses every command line exactly like the full parser (issue 13: a faster cold CLI)."""

from __future__ import annotations

import pytest

from portable_creds.cli import build_parser

ARGVS = [
    ["get", "svc"],
    ["--wallet", "0x" + "ab" * 20, "get", "svc", "--json"],
    ["--backend", "s3://b?region=us-east-1", "put", "svc", "--raw", "--from-file", "f"],
    ["ls"],
    ["rm", "svc"],
    ["outbox", "flush", "--force"],
    ["outbox", "drop", "svc"],
    ["--scope", "a,b", "--read-only", "run", "--", "env"],
    ["config", "show"],
    ["--no-credential-cache", "get", "x"],
]


@pytest.mark.parametrize("argv", ARGVS, ids=[" ".join(a) for a in ARGVS])
def test_fast_path_parses_like_the_full_parser(argv: list[str]) -> None:
    fast = build_parser(argv).parse_known_args(argv)
    full = build_parser().parse_known_args(argv)
    assert vars(fast[0]) == vars(full[0])
    assert fast[1] == full[1]
