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


def test_every_parameter_the_driver_reads_is_known() -> None:
    """A parameter added to the driver but not to KNOWN_PARAMS would be refused as unknown."""
    import re
    from pathlib import Path

    import portable_creds_tencent
    from portable_creds_tencent.settings import KNOWN_PARAMS

    source = "\n".join(
        p.read_text() for p in Path(portable_creds_tencent.__file__).parent.glob("*.py")
    )
    read = set(re.findall(r'params\.get\("([a-z_]+)"', source))
    read |= set(re.findall(r'_param\(\s*params,\s*"([a-z_]+)"', source))
    read |= set(re.findall(r'require\("([a-z_]+)"\)', source))
    assert read, "the patterns above no longer match the driver's code"
    assert read <= KNOWN_PARAMS, sorted(read - KNOWN_PARAMS)
