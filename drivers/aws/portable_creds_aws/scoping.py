"""Session policies that narrow a tenant's web-identity credentials to a few exact objects.

STS grants the *intersection* of the data role's policies and the session policy passed with
``AssumeRoleWithWebIdentity``, and the policy is sealed into the session token, so a holder of
the credentials (another process, a bare SDK, an attacker who copied them) cannot widen it.
Verified on Ceph RGW 16.2 (tests/aws/test_scoping_rgw.py) as on AWS.

The policy names every object ARN literally and never grants ``s3:ListBucket``: a scoped
identity can neither enumerate the tenant's services nor learn which exist outside its scope.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from portable_creds.errors import ConfigurationError, InvalidName

#: AWS STS limit on the plaintext of inline session policies (RGW has none we rely on).
MAX_SESSION_POLICY_CHARS = 2048
READ_ACTIONS: tuple[str, ...] = ("s3:GetObject",)
WRITE_ACTIONS: tuple[str, ...] = ("s3:PutObject", "s3:DeleteObject")
_KEY_RE = re.compile(r"[A-Za-z0-9._/-]+")
"""Object keys portable-creds produces; ``*``, ``?`` and ``$`` would be wildcards/variables."""


def actions(*, read_only: bool) -> list[str]:
    return list(READ_ACTIONS if read_only else READ_ACTIONS + WRITE_ACTIONS)


def session_policy_document(bucket: str, keys: Sequence[str], *, read_only: bool) -> dict[str, Any]:
    """One Allow statement: the actions on exactly ``keys`` in ``bucket``."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        raise ConfigurationError("a scoped store needs at least one object key")
    for key in wanted:
        if not isinstance(key, str) or not _KEY_RE.fullmatch(key) or key.startswith("/"):
            raise InvalidName(
                f"cannot scope credentials to key {key!r}: only A-Z a-z 0-9 . _ - / are "
                "allowed (wildcards would widen the scope)"
            )
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PortableCredsScope",
                "Effect": "Allow",
                "Action": actions(read_only=read_only),
                "Resource": [f"arn:aws:s3:::{bucket}/{key}" for key in wanted],
            }
        ],
    }


def session_policy(bucket: str, keys: Sequence[str], *, read_only: bool) -> str:
    """The compact JSON sent as ``Policy``; ``ConfigurationError`` if STS would refuse its size."""
    text = json.dumps(
        session_policy_document(bucket, keys, read_only=read_only), separators=(",", ":")
    )
    if len(text) > MAX_SESSION_POLICY_CHARS:
        raise ConfigurationError(
            f"a scope of {len(set(keys))} services needs a {len(text)}-character session "
            f"policy, above the STS limit of {MAX_SESSION_POLICY_CHARS}; scope fewer services "
            "per credential (split the work across several scoped stores)"
        )
    return text
