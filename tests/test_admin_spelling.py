"""The s3 and cos ``admin`` CLIs spell the same concepts the same way (old spellings still work).

An operator moving between clouds should not have to relearn flags for the lifecycle rule, the
issuer, the audience, the access logs or the config file.
"""

from __future__ import annotations

import argparse

import pytest
from portable_creds_aws.admin.cli import build_parser as s3_parser
from portable_creds_tencent.admin import _parser as cos_parser

SHARED = ("--config", "--issuer", "--audience", "--log-bucket", "--log-prefix", "--lifecycle-days")


def _options(parser: argparse.ArgumentParser) -> dict[str, str]:
    return {s: a.dest for a in parser._actions for s in a.option_strings}


@pytest.mark.parametrize("option", SHARED)
def test_shared_concepts_have_one_spelling(option: str) -> None:
    assert option in _options(s3_parser()), ("s3", option)
    assert option in _options(cos_parser()), ("cos", option)


def test_cos_keeps_the_old_lifecycle_spelling() -> None:
    parser = cos_parser()
    new = parser.parse_args(["render", "--lifecycle-days", "30"])
    old = parser.parse_args(["render", "--expire-days", "30"])
    assert new.expire_days == old.expire_days == 30
