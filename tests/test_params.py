"""Typed URL parameters: defaults, bounds and one clear error per bad value."""

from __future__ import annotations

import pytest

from portable_creds.errors import ConfigurationError
from portable_creds.params import bool_param, float_param, int_param


def test_defaults_apply_to_missing_or_empty_values() -> None:
    assert int_param({}, "n", 7, 1, 10, scheme="s3") == 7
    assert int_param({"n": ""}, "n", 7, 1, 10, scheme="s3") == 7
    assert float_param({}, "t", 1.5, 600, scheme="s3") == 1.5
    assert bool_param({}, "b", True, scheme="cos") is True


def test_values_are_parsed() -> None:
    assert int_param({"n": "10"}, "n", 7, 1, 10, scheme="s3") == 10
    assert float_param({"t": "0.25"}, "t", 1.5, 600, scheme="s3") == 0.25
    assert bool_param({"b": "off"}, "b", True, scheme="cos") is False
    assert bool_param({"b": "Yes"}, "b", False, scheme="cos") is True


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: int_param({"n": "x"}, "n", 7, 1, 10, scheme="s3"), "s3:// parameter n='x'"),
        (lambda: int_param({"n": "11"}, "n", 7, 1, 10, scheme="s3"), "within 1..10"),
        (lambda: float_param({"t": "0"}, "t", 1.0, 600, scheme="s3"), "within (0, 600]"),
        (lambda: float_param({"t": "soon"}, "t", 1.0, 600, scheme="s3"), "must be a number"),
        (lambda: bool_param({"b": "maybe"}, "b", True, scheme="cos"), "cos:// parameter b"),
    ],
)
def test_bad_values_are_configuration_errors(call: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace("]", r"\]")):
        call()  # type: ignore[operator]
