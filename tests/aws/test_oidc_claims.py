"""Issuer requirements RGW does not enforce (issue 12 item 11): ``exp`` present, exactly one
lower-case wallet in the tag claim. ``doctor`` fails a token file that breaks them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jwt
import pytest
from portable_creds_aws.testing.oidc import TAGS_CLAIM, SigningKey

from portable_creds.oidc_claims import claim_problems, payload

W = "0x" + "ab" * 20
V = "0x" + "cd" * 20


def _claims(**over: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": "http://127.0.0.1:1",
        "sub": f"agentkeys:agent:{W}",
        "aud": "sts.amazonaws.com",
        "exp": 2_000_000_000,
        "agentkeys_user_wallet": W,
        TAGS_CLAIM: {"principal_tags": {"agentkeys_user_wallet": [W]}},
    }
    claims.update(over)
    return claims


def test_good_claims_have_no_problems() -> None:
    assert claim_problems(_claims()) == []


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"exp": None}, "exp"),
        ({TAGS_CLAIM: {"principal_tags": {"agentkeys_user_wallet": [W, V]}}}, "exactly one"),
        ({TAGS_CLAIM: {"principal_tags": {"agentkeys_user_wallet": [W.upper()]}}}, "lower-case"),
        ({"agentkeys_user_wallet": "0x" + "AB" * 20}, "lower-case"),
    ],
)
def test_bad_claims_are_named(over: dict[str, Any], needle: str) -> None:
    claims = {k: v for k, v in _claims(**over).items() if v is not None}
    problems = claim_problems(claims)
    assert problems and any(needle in p for p in problems)


def _doctor(tmp_path: Path, claims: dict[str, Any]) -> dict[str, Any]:
    key = SigningKey()
    token = jwt.encode(claims, key.private_key, algorithm="ES256")
    assert payload(token) == claims
    token_file = tmp_path / "token.jwt"
    token_file.write_text(token)
    token_file.chmod(0o600)
    backend = (
        "s3://pc-doctor?endpoint=http://127.0.0.1:9&region=us-east-1"
        f"&role_arn=arn:aws:iam:::role/r-{{wallet}}&token_file={token_file}"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "portable_creds.cli",
            "--backend",
            backend,
            "--wallet",
            W,
            "--home",
            str(tmp_path / "home"),
            "doctor",
            "--json",
            "--timeout",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    doc = json.loads(out.stdout)
    (check,) = [c for c in doc["checks"] if c["name"] == "identity token claims"]
    return dict(check)


def test_doctor_fails_a_token_without_exp(tmp_path: Path) -> None:
    claims = _claims()
    del claims["exp"]
    check = _doctor(tmp_path, claims)
    assert check["status"] == "fail" and "exp" in check["detail"]


def test_doctor_fails_a_multi_valued_wallet_tag(tmp_path: Path) -> None:
    check = _doctor(
        tmp_path, _claims(**{TAGS_CLAIM: {"principal_tags": {"agentkeys_user_wallet": [W, V]}}})
    )
    assert check["status"] == "fail" and "exactly one" in check["detail"]


def test_doctor_accepts_a_good_token(tmp_path: Path) -> None:
    assert _doctor(tmp_path, _claims())["status"] == "ok"
