"""A child process using bare ``CosS3Client`` with whatever credentials its environment carries.

Reads ``{"ops": [[name, op, key], ...]}`` on stdin, where ``op`` is get, head, put, delete,
delete_objects (batch ``POST ?delete`` of one key) or list (``key`` is the prefix), and prints
``{name: outcome}``: ``ok:<sha256 of the body>`` / ``ok``, or ``"<HTTP status> <COS error
code>"`` when COS refuses; a batch delete reports the per-key ``Error`` entry the same way
(its HTTP status is 200).

Nothing of portable-creds is imported: this is what any tool handed the exported variables
(``portable-creds creds export`` on a ``cos://`` backend) would do. cos-python-sdk-v5 reads no
environment itself, so the mapping is done here: ``TENCENTCLOUD_SECRET_ID``/``_SECRET_KEY``/
``_SESSION_TOKEN`` -> ``SecretId``/``SecretKey``/``Token``, ``COS_REGION`` -> ``Region``,
``COS_BUCKET`` -> ``Bucket``, and ``COS_ENDPOINT_URL`` (set only when the store's URL overrides
the endpoint, e.g. the local Tencent double) -> ``Scheme``/``IP``/``Port``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import Any
from urllib.parse import urlsplit

from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosServiceError


def client() -> CosS3Client:
    kwargs: dict[str, Any] = {
        "Region": os.environ["COS_REGION"],
        "SecretId": os.environ["TENCENTCLOUD_SECRET_ID"],
        "SecretKey": os.environ["TENCENTCLOUD_SECRET_KEY"],
        "Token": os.environ.get("TENCENTCLOUD_SESSION_TOKEN"),
    }
    endpoint = os.environ.get("COS_ENDPOINT_URL")
    if endpoint:
        parts = urlsplit(endpoint)
        kwargs.update(Scheme=parts.scheme, IP=parts.hostname, Port=parts.port)
    # retry=0: a refusal is a 4xx, never retried anyway; this keeps a failing run short.
    return CosS3Client(CosConfig(**kwargs), retry=0)


def run(cos: CosS3Client, bucket: str, op: str, key: str) -> str:
    if op == "get":
        body = cos.get_object(Bucket=bucket, Key=key)["Body"].get_raw_stream().read()
        return "ok:" + hashlib.sha256(body).hexdigest()
    if op == "head":
        cos.head_object(Bucket=bucket, Key=key)
    elif op == "put":
        cos.put_object(Bucket=bucket, Key=key, Body=b"written by the child")
    elif op == "delete":
        cos.delete_object(Bucket=bucket, Key=key)
    elif op == "delete_objects":
        resp = cos.delete_objects(
            Bucket=bucket, Delete={"Quiet": "false", "Object": [{"Key": key}]}
        )
        errors = resp.get("Error") or []
        if isinstance(errors, dict):
            errors = [errors]
        if errors:
            return f"200 {errors[0].get('Code')}"
    elif op == "list":
        cos.list_objects(Bucket=bucket, Prefix=key)
    else:
        raise SystemExit(f"unknown op {op!r}")
    return "ok"


def main() -> int:
    request = json.load(sys.stdin)
    cos = client()
    bucket = os.environ["COS_BUCKET"]
    out: dict[str, str] = {}
    for name, op, key in request["ops"]:
        try:
            out[name] = run(cos, bucket, op, key)
        except CosServiceError as exc:
            out[name] = f"{exc.get_status_code()} {exc.get_error_code()}"
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
