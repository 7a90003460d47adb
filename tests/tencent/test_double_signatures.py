"""Signatures computed here, independently, from the documented algorithms (not with the
double's or the SDK's code), sent over raw HTTP: the double accepts exactly these and refuses
any change to a signed part."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import json
import time
from urllib.parse import quote

import pytest
from portable_creds_tencent.testing import TencentDouble
from portable_creds_tencent.testing.signatures import cos_signature, tc3_signature


def doc_cos_sign(
    secret_key: str,
    method: str,
    key: str,
    params: dict[str, str],
    headers: dict[str, str],
    key_time: str,
) -> str:
    """COS q-sign as documented: HMAC-SHA1 chain over the formatted HTTP string."""

    def enc(s: str) -> str:
        return quote(s, safe="-_.~")

    sign_key = hmac.new(secret_key.encode(), key_time.encode(), hashlib.sha1).hexdigest()
    p = "&".join(
        f"{enc(k.lower())}={enc(v)}" for k, v in sorted((k.lower(), v) for k, v in params.items())
    )
    h = "&".join(
        f"{enc(k.lower())}={enc(v)}" for k, v in sorted((k.lower(), v) for k, v in headers.items())
    )
    http_string = f"{method.lower()}\n/{key}\n{p}\n{h}\n"
    sts = f"sha1\n{key_time}\n{hashlib.sha1(http_string.encode()).hexdigest()}\n"
    return hmac.new(sign_key.encode(), sts.encode(), hashlib.sha1).hexdigest()


def doc_tc3_sign(secret_key: str, service: str, host: str, ts: int, body: bytes) -> str:
    """TC3-HMAC-SHA256 as documented, for a POST / with content-type;host signed."""
    date = dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")
    canonical = (
        "POST\n/\n\ncontent-type:application/json\nhost:"
        + host
        + "\n\ncontent-type;host\n"
        + hashlib.sha256(body).hexdigest()
    )
    string_to_sign = (
        f"TC3-HMAC-SHA256\n{ts}\n{date}/{service}/tc3_request\n"
        + hashlib.sha256(canonical.encode()).hexdigest()
    )

    def h(k: bytes, m: str) -> bytes:
        return hmac.new(k, m.encode(), hashlib.sha256).digest()

    k = h(h(h(("TC3" + secret_key).encode(), date), service), "tc3_request")
    return hmac.new(k, string_to_sign.encode(), hashlib.sha256).hexdigest()


def cos_request(
    d: TencentDouble,
    method: str,
    bucket: str,
    key: str,
    *,
    body: bytes = b"",
    query: dict[str, str] | None = None,
    secret_id: str | None = None,
    secret_key: str | None = None,
    tamper: str | None = None,
) -> tuple[int, bytes]:
    host = f"{bucket}.cos.{d.region}.myqcloud.com"
    headers = {
        "Host": host,
        "Content-Type": "application/octet-stream",
        "Content-Length": str(len(body)),
        "x-cos-meta-k": "v",
    }
    now = int(time.time())
    key_time = f"{now - 60};{now + 600}"
    params = query or {}
    sig = doc_cos_sign(secret_key or d.root.secret_key, method, key, params, headers, key_time)
    if tamper == "signature":
        sig = ("0" if sig[0] != "0" else "1") + sig[1:]
    auth = (
        f"q-sign-algorithm=sha1&q-ak={secret_id or d.root.secret_id}&q-sign-time={key_time}"
        f"&q-key-time={key_time}&q-header-list="
        + ";".join(sorted(k.lower() for k in headers))
        + "&q-url-param-list="
        + ";".join(sorted(k.lower() for k in params))
        + f"&q-signature={sig}"
    )
    sent = dict(headers, Authorization=auth)
    if tamper == "header":
        sent["x-cos-meta-k"] = "changed"
    path = "/" + quote(key, safe="/-_.~")
    if params:
        path += "?" + "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in params.items())
    if tamper == "path":
        path = "/" + quote(key + "x", safe="/-_.~")
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=sent)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_cos_signature_known_answer_matches_the_doubles_implementation() -> None:
    args = dict(
        method="PUT",
        key="bots/a b/ü.enc",
        params={"tagging": "", "versionId": "x/y"},
        headers={
            "host": "b-1.cos.ap-guangzhou.myqcloud.com",
            "content-length": "5",
            "x-cos-security-token": "t+k==",
        },
        key_time="1700000000;1700003600",
    )
    mine = doc_cos_sign(
        "secret", args["method"], args["key"], args["params"], args["headers"], args["key_time"]
    )
    theirs = cos_signature(
        "secret",
        method="PUT",
        decoded_path="/bots/a b/ü.enc",
        params={"tagging": "", "versionid": "x/y"},
        headers=args["headers"],
        key_time=args["key_time"],
    )
    assert mine == theirs
    assert mine != doc_cos_sign(
        "secret2", args["method"], args["key"], args["params"], args["headers"], args["key_time"]
    )


def test_tc3_known_answer_matches_the_doubles_implementation() -> None:
    body = b'{"RoleName": "r"}'
    mine = doc_tc3_sign("sk", "cam", "127.0.0.1:9", 1700000000, body)
    theirs = tc3_signature(
        "sk",
        service="cam",
        date="2023-11-14",
        timestamp="1700000000",
        method="POST",
        path="/",
        query="",
        headers={"content-type": "application/json", "host": "127.0.0.1:9"},
        signed_headers=("content-type", "host"),
        payload=body,
    )
    assert mine == theirs


def test_independently_signed_cos_requests_are_accepted(double: TencentDouble) -> None:
    bucket = double.create_bucket("sig")
    status, _ = cos_request(double, "PUT", bucket, "dir/ü k.enc", body=b"hello")
    assert status == 200
    status, body = cos_request(double, "GET", bucket, "dir/ü k.enc")
    assert (status, body) == (200, b"hello")
    status, body = cos_request(double, "GET", bucket, "", query={"prefix": "dir/", "max-keys": "5"})
    assert status == 200 and b"<Key>dir/\xc3\xbc k.enc</Key>" in body


@pytest.mark.parametrize("tamper", ["signature", "header", "path"])
def test_cos_refuses_any_change_to_signed_parts(double: TencentDouble, tamper: str) -> None:
    bucket = double.create_bucket("sig")
    status, body = cos_request(double, "PUT", bucket, "k", body=b"x", tamper=tamper)
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    assert double.object_keys(bucket) == []


def test_cos_refuses_wrong_secret_and_unknown_key_id(double: TencentDouble) -> None:
    bucket = double.create_bucket("sig")
    status, body = cos_request(double, "PUT", bucket, "k", body=b"x", secret_key="not-the-secret")
    assert status == 403 and b"SignatureDoesNotMatch" in body
    status, body = cos_request(double, "PUT", bucket, "k", body=b"x", secret_id="AKIDunknown")
    assert status == 403 and b"InvalidAccessKeyId" in body


def tc3_post(
    d: TencentDouble,
    action: str,
    params: dict[str, object],
    *,
    service: str = "cam",
    version: str = "2019-01-16",
    secret_key: str | None = None,
    ts: int | None = None,
    tamper_body: bool = False,
) -> dict[str, object]:
    body = json.dumps(params).encode()
    ts = ts or int(time.time())
    sig = doc_tc3_sign(secret_key or d.root.secret_key, service, d.endpoint, ts, body)
    date = dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")
    headers = {
        "Host": d.endpoint,
        "Content-Type": "application/json",
        "X-TC-Action": action,
        "X-TC-Version": version,
        "X-TC-Timestamp": str(ts),
        "X-TC-Region": d.region,
        "Authorization": f"TC3-HMAC-SHA256 Credential={d.root.secret_id}/{date}/{service}/"
        f"tc3_request, SignedHeaders=content-type;host, Signature={sig}",
    }
    if tamper_body:
        body = body.replace(b"r1", b"r2")
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    try:
        conn.request("POST", "/", body=body, headers=headers)
        resp = conn.getresponse()
        assert resp.status == 200  # errors travel in the JSON envelope
        return json.loads(resp.read())["Response"]  # type: ignore[no-any-return]
    finally:
        conn.close()


def test_independently_signed_tc3_request_is_accepted(double: TencentDouble) -> None:
    trust = json.dumps(
        {
            "version": "2.0",
            "statement": [
                {"effect": "allow", "action": "name/sts:AssumeRole", "principal": {"qcs": ["*"]}}
            ],
        }
    )
    out = tc3_post(double, "CreateRole", {"RoleName": "r1", "PolicyDocument": trust})
    assert "Error" not in out and out["RoleId"]


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"secret_key": "wrong"}, "AuthFailure.SignatureFailure"),
        ({"tamper_body": True}, "AuthFailure.SignatureFailure"),
        ({"ts": int(time.time()) - 3600}, "AuthFailure.SignatureExpire"),
        ({"service": "sts"}, "AuthFailure.SignatureFailure"),
    ],
)
def test_tc3_refusals(double: TencentDouble, kwargs: dict[str, object], code: str) -> None:
    trust = json.dumps(
        {
            "version": "2.0",
            "statement": [
                {"effect": "allow", "action": "name/sts:AssumeRole", "principal": {"qcs": ["*"]}}
            ],
        }
    )
    out = tc3_post(double, "CreateRole", {"RoleName": "r1", "PolicyDocument": trust}, **kwargs)  # type: ignore[arg-type]
    assert out["Error"]["Code"] == code  # type: ignore[index]
    assert double.account.roles == {}
