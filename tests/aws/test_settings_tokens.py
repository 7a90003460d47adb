"""URL validation, session names and the token sources (broker over real local HTTP)."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import jwt
import pytest
from portable_creds_aws.driver import S3Driver
from portable_creds_aws.federation import refresh_windows, session_name
from portable_creds_aws.settings import parse_settings
from portable_creds_aws.testing.oidc import OidcIssuer
from portable_creds_aws.tokens import BrokerTokenSource, FileTokenSource

from portable_creds.driver import StoreTarget
from portable_creds.errors import (
    ConfigurationError,
    CredentialsError,
    InvalidToken,
    RemoteUnavailable,
)

from .conftest import random_wallet

ROLE = "arn:aws:iam::123456789012:role/agentkeys-data-role"


def settings(url: str, **options: object):  # type: ignore[no-untyped-def]
    return parse_settings(StoreTarget(url=url, wallet=None, options=options))


def test_url_parameters_are_parsed() -> None:
    s = settings(
        f"s3://my-bucket?region=eu-west-1&endpoint=http://127.0.0.1:9000&role_arn={ROLE}"
        "&addressing=virtual&duration=900&max_attempts=5&connect_timeout=2&read_timeout=7"
    )
    assert (s.bucket, s.region, s.endpoint, s.sts_endpoint) == (
        "my-bucket",
        "eu-west-1",
        "http://127.0.0.1:9000",
        "http://127.0.0.1:9000",
    )
    assert (s.role_arn, s.addressing, s.duration, s.max_attempts) == (ROLE, "virtual", 900, 5)
    assert (s.connect_timeout, s.read_timeout) == (2.0, 7.0)
    assert s.federated
    assert "secret" not in repr(s)


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("s3://Bad_Bucket", "invalid bucket"),
        ("s3://ok-bucket/some/path", "without a path"),
        ("s3://ok-bucket?role_arn=not-an-arn", "role_arn"),
        ("s3://ok-bucket?addressing=sideways", "addressing"),
        ("s3://ok-bucket?duration=0", "duration"),
        ("s3://ok-bucket?duration=abc", "integer"),
        ("s3://ok-bucket?endpoint=ftp://x", "endpoint"),
        ("s3://ok-bucket?regoin=us-east-1", "unknown s3:// parameter"),
        ("s3://ok-bucket?secret_key=abc", "secret parameter"),
        ("s3://ok-bucket?session_jwt=abc", "secret parameter"),
    ],
)
def test_bad_urls_are_configuration_errors(url: str, needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle):
        settings(url)


def test_tenant_store_needs_a_role_and_a_token() -> None:
    w = random_wallet()
    with pytest.raises(ConfigurationError, match="role_arn"):
        S3Driver().open_object_store(StoreTarget(url="s3://ok-bucket", wallet=w))
    with pytest.raises(ConfigurationError, match="token"):
        S3Driver().open_object_store(StoreTarget(url=f"s3://ok-bucket?role_arn={ROLE}", wallet=w))
    with pytest.raises(ConfigurationError, match="session JWT"):
        S3Driver().open_object_store(
            StoreTarget(
                url=f"s3://ok-bucket?role_arn={ROLE}&broker_url=http://127.0.0.1:1", wallet=w
            )
        )


def test_session_names_follow_upstream_and_fit_64_chars() -> None:
    w = "0x" + "Ab" * 20
    name = session_name(w, now=1_700_000_000.123456)
    assert len(name) <= 64
    assert re.fullmatch(r"[A-Za-z0-9_=,.@-]+", name)
    assert name.startswith("agentkeys-0xabab")
    assert name.endswith("-1700000000-123456")
    assert session_name(w, now=1.5) != session_name(w, now=2.5)


def test_refresh_windows_scale_with_session_length() -> None:
    assert refresh_windows(3600) == (900, 600)
    advisory, mandatory = refresh_windows(5)
    assert 0 < mandatory < advisory < 5
    advisory, mandatory = refresh_windows(900)
    assert 0 < mandatory < advisory < 900


def test_token_file_is_reread(tmp_path: Path) -> None:
    path = tmp_path / "token"
    source = FileTokenSource(path)
    with pytest.raises(CredentialsError, match="does not exist"):
        source()
    path.write_text("first\n")
    assert source() == "first"
    path.write_text("second")
    assert source() == "second"
    path.write_text("  \n")
    with pytest.raises(InvalidToken):
        source()


def test_broker_mints_tokens_for_the_session_wallet() -> None:
    w = random_wallet()
    with OidcIssuer() as issuer:
        session = issuer.open_session(w)
        source = BrokerTokenSource(issuer.iss, session, ttl_seconds=120)
        assert session not in repr(source)
        token = source()
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["agentkeys_user_wallet"] == w
        assert claims["https://aws.amazon.com/tags"]["principal_tags"] == {
            "agentkeys_user_wallet": [w]
        }
        assert 0 < claims["exp"] - claims["iat"] <= 120
        assert source() != token or issuer.minted == 2
        with pytest.raises(CredentialsError, match="log in again"):
            BrokerTokenSource(issuer.iss, "not-a-session")()
        with pytest.raises(ConfigurationError):
            BrokerTokenSource(issuer.iss, session, ttl_seconds=10)()


def test_unreachable_broker_is_remote_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(RemoteUnavailable, match="broker"):
        BrokerTokenSource(f"http://127.0.0.1:{port}", "s", timeout=2)()
