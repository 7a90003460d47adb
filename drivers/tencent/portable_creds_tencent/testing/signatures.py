"""Server-side computation of the two Tencent request signatures, from the documented algorithms.

The double recomputes what the client should have sent, using the real secret it issued, and
compares in constant time. Nothing here trusts the client's own view of what it signed beyond
the lists of signed header and parameter names.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote

import attrs


def _q(value: str) -> str:
    return quote(value.encode("utf-8"), safe="-_.~")


@attrs.frozen
class CosAuthorization:
    algorithm: str
    access_key: str
    sign_time: str
    key_time: str
    header_list: tuple[str, ...]
    param_list: tuple[str, ...]
    signature: str


def parse_cos_authorization(value: str) -> CosAuthorization | None:
    """Parse a ``q-sign-algorithm=...`` header; ``None`` if it is not one."""
    fields: dict[str, str] = {}
    for part in value.split("&"):
        name, sep, val = part.partition("=")
        if not sep:
            return None
        fields[name] = val
    need = ("q-sign-algorithm", "q-ak", "q-sign-time", "q-key-time", "q-signature")
    if any(n not in fields for n in need):
        return None

    def names(raw: str) -> tuple[str, ...]:
        return tuple(n for n in raw.split(";") if n)

    return CosAuthorization(
        algorithm=fields["q-sign-algorithm"],
        access_key=fields["q-ak"],
        sign_time=fields["q-sign-time"],
        key_time=fields["q-key-time"],
        header_list=names(fields.get("q-header-list", "")),
        param_list=names(fields.get("q-url-param-list", "")),
        signature=fields["q-signature"],
    )


def cos_signature(
    secret_key: str,
    *,
    method: str,
    decoded_path: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    key_time: str,
) -> str:
    """``q-signature`` for lower-cased ``params``/``headers`` holding only the signed entries."""
    sign_key = hmac.new(secret_key.encode(), key_time.encode(), hashlib.sha1).hexdigest()
    fmt_params = "&".join(f"{_q(k).lower()}={_q(v)}" for k, v in sorted(params.items()))
    fmt_headers = "&".join(f"{_q(k).lower()}={_q(v)}" for k, v in sorted(headers.items()))
    http_string = f"{method.lower()}\n{decoded_path}\n{fmt_params}\n{fmt_headers}\n"
    string_to_sign = f"sha1\n{key_time}\n{hashlib.sha1(http_string.encode('utf-8')).hexdigest()}\n"
    return hmac.new(sign_key.encode(), string_to_sign.encode(), hashlib.sha1).hexdigest()


@attrs.frozen
class Tc3Authorization:
    secret_id: str
    date: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_tc3_authorization(value: str) -> Tc3Authorization | None:
    prefix = "TC3-HMAC-SHA256 "
    if not value.startswith(prefix):
        return None
    parts = {}
    for item in value[len(prefix) :].split(","):
        name, sep, val = item.strip().partition("=")
        if not sep:
            return None
        parts[name] = val
    cred = parts.get("Credential", "").split("/")
    if len(cred) != 4 or cred[3] != "tc3_request" or "Signature" not in parts:
        return None
    return Tc3Authorization(
        secret_id=cred[0],
        date=cred[1],
        service=cred[2],
        signed_headers=tuple(h for h in parts.get("SignedHeaders", "").split(";") if h),
        signature=parts["Signature"],
    )


def tc3_signature(
    secret_key: str,
    *,
    service: str,
    date: str,
    timestamp: str,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    signed_headers: tuple[str, ...],
    payload: bytes,
) -> str:
    canonical_headers = "".join(
        f"{h}:{headers.get(h, '').strip().lower()}\n" for h in signed_headers
    )
    canonical_request = "\n".join(
        [
            method,
            path,
            query,
            canonical_headers,
            ";".join(signed_headers),
            hashlib.sha256(payload).hexdigest(),
        ]
    )
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = (
        f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n"
        f"{hashlib.sha256(canonical_request.encode('utf-8')).hexdigest()}"
    )

    def _h(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()

    k = _h(("TC3" + secret_key).encode("utf-8"), date)
    k = _h(k, service)
    k = _h(k, "tc3_request")
    return hmac.new(k, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
