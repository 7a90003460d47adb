"""The official Tencent SDK packages as a machine-checkable contract for the double.

Nobody here wrote ``tencentcloud-sdk-python-{sts,cam,kms}``: their ``models.py`` name every request
parameter and response field of every action, and their ``errorcodes.py`` every error code the
service documents. The double checks requests against them (a parameter the action does not
have is answered with ``UnknownParameter``, as the real API does), and the tests check every
code the double can emit and every field it answers with against them.

Table-driven on purpose: adding a service (e.g. ``kms``) is one ``ServiceContract`` row.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
from collections.abc import Mapping
from typing import Any

import attrs


@attrs.frozen
class ServiceContract:
    """Where one service's contract lives in the installed SDK."""

    service: str
    version: str
    package: str
    """e.g. ``tencentcloud.cam.v20190116`` (holds ``models`` and ``errorcodes``)."""


SERVICES: dict[str, ServiceContract] = {
    "sts": ServiceContract("sts", "2018-08-13", "tencentcloud.sts.v20180813"),
    "cam": ServiceContract("cam", "2019-01-16", "tencentcloud.cam.v20190116"),
    "kms": ServiceContract("kms", "2019-01-18", "tencentcloud.kms.v20190118"),
}

COMMON_ERROR_CODES = frozenset(
    {
        # Tencent Cloud API 3.0 "公共错误码" (common error codes), the same table on every
        # product's error-code page, e.g. https://cloud.tencent.com/document/product/1388/114322
        "ActionOffline",
        "AuthFailure.InvalidAuthorization",
        "AuthFailure.InvalidSecretId",
        "AuthFailure.MFAFailure",
        "AuthFailure.SecretIdNotFound",
        "AuthFailure.SignatureExpire",
        "AuthFailure.SignatureFailure",
        "AuthFailure.TokenFailure",
        "AuthFailure.UnauthorizedOperation",
        "DryRunOperation",
        "FailedOperation",
        "InternalError",
        "InvalidAction",
        "InvalidParameter",
        "InvalidParameterValue",
        "InvalidRequest",
        "IpInBlacklist",
        "IpNotInWhitelist",
        "LimitExceeded",
        "MissingParameter",
        "NoSuchProduct",
        "NoSuchVersion",
        "RequestLimitExceeded",
        "ResourceInUse",
        "ResourceInsufficient",
        "ResourceNotFound",
        "ResourceUnavailable",
        "UnauthorizedOperation",
        "UnknownParameter",
        "UnsupportedOperation",
        "UnsupportedProtocol",
    }
)

_TYPE_LINE = re.compile(r":type (\w+): (.+)")
_CLASS_REF = re.compile(r":class:`[\w.]+\.(\w+)`")
_LIST_OF = re.compile(r"list of (\w+)")


def contract_for(service: str) -> ServiceContract:
    try:
        return SERVICES[service]
    except KeyError:
        raise KeyError(f"no SDK contract for service {service!r}; add it to SERVICES") from None


@functools.cache
def error_codes(service: str) -> frozenset[str]:
    """Every code in the service's ``errorcodes.py`` (its module-level string constants)."""
    mod = importlib.import_module(contract_for(service).package + ".errorcodes")
    return frozenset(
        v
        for k, v in vars(mod).items()
        if k.isupper() and not k.startswith("_") and isinstance(v, str)
    )


def allowed_codes(service: str) -> frozenset[str]:
    """What the double may answer for ``service``: the SDK's codes plus the common ones."""
    return error_codes(service) | COMMON_ERROR_CODES


def code_violations(service: str, codes: set[str] | frozenset[str]) -> list[str]:
    """Codes that neither the SDK's ``errorcodes.py`` nor the common list defines."""
    allowed = allowed_codes(service)
    return sorted(c for c in codes if c not in allowed)


@functools.cache
def model_fields(service: str, model: str) -> Mapping[str, str]:
    """``{field: type}`` of one model class, from its constructor and docstring.

    Types are the SDK's own spelling: ``str``, ``int``, ``list of str``, ``list of Tag``,
    ``:class:`tencentcloud.sts.v20180813.models.Credentials```.
    """
    mod = importlib.import_module(contract_for(service).package + ".models")
    cls = getattr(mod, model, None)
    if cls is None:
        raise KeyError(f"{service} models.py defines no {model}")
    names = [k[1:] for k in vars(cls()) if k.startswith("_")]
    types = dict(_TYPE_LINE.findall(inspect.getdoc(cls.__init__) or ""))
    return {n: types.get(n, "") for n in names}


def _nested_model(service: str, type_text: str) -> str | None:
    """The model class a field's type refers to (directly or as ``list of X``), if any."""
    m = _CLASS_REF.search(type_text) or _LIST_OF.fullmatch(type_text.strip())
    if m is None:
        return None
    name = m.group(1)
    mod = importlib.import_module(contract_for(service).package + ".models")
    return name if inspect.isclass(getattr(mod, name, None)) else None


def _violations(service: str, model: str, value: Any, path: str) -> list[str]:
    if not isinstance(value, Mapping):
        return []
    fields = model_fields(service, model)
    out: list[str] = []
    for name, item in value.items():
        where = f"{path}.{name}" if path else name
        if name not in fields:
            out.append(f"{where} is not a field of {service} {model}")
            continue
        nested = _nested_model(service, fields[name])
        if nested is None:
            continue
        for element in item if isinstance(item, list) else [item]:
            out += _violations(service, nested, element, where)
    return out


def request_violations(service: str, action: str, params: Mapping[str, Any]) -> list[str]:
    """Parameters (also inside nested structures) that ``<action>Request`` does not define."""
    return _violations(service, f"{action}Request", params, "")


def response_violations(service: str, action: str, response: Mapping[str, Any]) -> list[str]:
    """Fields of a successful ``Response`` object that ``<action>Response`` does not define."""
    return _violations(service, f"{action}Response", response, "")


def read_violation(service: str, action: str, path: str) -> str | None:
    """Why ``Field.Sub`` of ``<action>Response`` is not defined by the models (None if it is)."""
    model = f"{action}Response"
    parts = path.split(".")
    for i, part in enumerate(parts):
        fields = model_fields(service, model)
        if part not in fields:
            return f"{service} {action}: {path} ({part} is not a field of {model})"
        if i == len(parts) - 1:
            return None
        nested = _nested_model(service, fields[part])
        if nested is None:
            return f"{service} {action}: {path} ({part} has no fields)"
        model = nested
    return None
