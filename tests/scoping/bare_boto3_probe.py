"""A child process using bare boto3 with whatever credentials its environment carries.

Reads ``{"bucket": ..., "ops": [[name, op, key], ...]}`` on stdin, where ``op`` is get, head,
put, delete, list or copy (``key`` is ``[source, dest]`` for copy, a prefix for list), and
prints ``{name: outcome}``: ``ok:<sha256 of the body>`` / ``ok`` or the S3 error code.
Nothing of portable-creds is imported: this is what any tool handed the exported
credentials would do.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

# Endpoint, region and credentials come from the environment (AWS_ENDPOINT_URL_S3,
# AWS_REGION, AWS_ACCESS_KEY_ID, ...). Path addressing and "checksums only when required"
# are what any client of an on-premises Ceph RGW 16.2 configures.
CONFIG = Config(
    s3={"addressing_style": "path"},
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
    retries={"mode": "standard", "total_max_attempts": 2},
)


def run(s3: Any, bucket: str, op: str, key: Any) -> str:
    if op == "get":
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return "ok:" + hashlib.sha256(body).hexdigest()
    if op == "head":
        s3.head_object(Bucket=bucket, Key=key)
    elif op == "put":
        s3.put_object(Bucket=bucket, Key=key, Body=b"written by the child")
    elif op == "delete":
        s3.delete_object(Bucket=bucket, Key=key)
    elif op == "list":
        s3.list_objects_v2(Bucket=bucket, Prefix=key)
    elif op == "copy":
        s3.copy_object(Bucket=bucket, Key=key[1], CopySource={"Bucket": bucket, "Key": key[0]})
    else:
        raise SystemExit(f"unknown op {op!r}")
    return "ok"


def main() -> int:
    request = json.load(sys.stdin)
    s3 = boto3.client("s3", config=CONFIG)
    out: dict[str, str] = {}
    for name, op, key in request["ops"]:
        try:
            out[name] = run(s3, request["bucket"], op, key)
        except ClientError as exc:
            out[name] = str(exc.response.get("Error", {}).get("Code") or "HTTP error")
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
