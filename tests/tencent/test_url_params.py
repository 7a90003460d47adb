"""Issue 12 item 10: ``cos://`` URLs refuse unknown parameters (as ``s3://`` does) and plain
http to anything but a loopback endpoint."""

from __future__ import annotations

import pytest
from portable_creds_tencent.settings import CosSettings, parse_settings

from portable_creds.driver import StoreTarget
from portable_creds.errors import ConfigurationError

BASE = "cos://creds-1250000000?region=ap-guangzhou&mode=static"


def _parse(url: str) -> CosSettings:
    return parse_settings(StoreTarget(url=url, wallet=None))


@pytest.mark.parametrize("typo", ["regoin=ap-guangzhou", "if-match=true", "schema=http"])
def test_unknown_parameters_are_refused(typo: str) -> None:
    with pytest.raises(ConfigurationError, match="unknown cos:// parameter"):
        _parse(f"{BASE}&{typo}")


def test_s3_refuses_unknown_parameters_too() -> None:
    from portable_creds_aws.settings import parse_settings as s3_parse

    with pytest.raises(ConfigurationError, match="unknown s3:// parameter"):
        s3_parse(StoreTarget(url="s3://bucket?regoin=us-east-1", wallet=None))


@pytest.mark.parametrize(
    "params",
    [
        "&scheme=http",  # the real COS endpoint, in clear
        "&scheme=http&ip=10.0.0.5&port=80",
        "&scheme=http&ip=cos.example.com&port=80",
        "&ip=127.0.0.1&port=80&sts_scheme=http&sts_endpoint=sts.example.com:80",
    ],
)
def test_plain_http_is_refused_off_loopback(params: str) -> None:
    with pytest.raises(ConfigurationError, match="loopback"):
        _parse(BASE + params)


def test_plain_http_to_the_local_double_is_allowed() -> None:
    for host in ("127.0.0.1", "localhost"):
        settings = _parse(f"{BASE}&scheme=http&ip={host}&port=8080")
        assert settings.scheme == "http"
