"""Issuer requirements on a tenant's OIDC token that the cloud itself does not enforce.

Measured on Ceph RGW 16.2 (docs/ceph.md): STS accepts a token with no ``exp`` (a token that
never expires), and turns every value of a multi-valued wallet tag into a session tag, so a
policy guarded by ``StringEquals aws:PrincipalTag/...`` matches any of them. The provisioned
role-per-tenant trust policy refuses multi-valued and upper-case tags, but an issuer must still
mint exactly one lower-case wallet per token, with an ``exp``. ``doctor`` and the bundled test
issuer/broker check these here. Pure functions on the decoded payload: no signature check
(that is the service's job), no network.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any

TAG_KEY = "agentkeys_user_wallet"
TAGS_CLAIM = "https://aws.amazon.com/tags"
_LOWER_WALLET = re.compile(r"0x[0-9a-f]{40}")


def payload(token: str) -> dict[str, Any] | None:
    """The JWT's payload (unverified), or ``None`` if ``token`` is not a JWT."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    return decoded if isinstance(decoded, dict) else None


def claim_problems(claims: Mapping[str, Any]) -> list[str]:
    """What is wrong with a tenant token's claims; empty when it meets the requirements."""
    problems: list[str] = []
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        problems.append("no numeric 'exp' claim (RGW accepts such a token forever)")
    tags = claims.get(TAGS_CLAIM)
    if tags is not None:
        values = tags.get("principal_tags", {}).get(TAG_KEY) if isinstance(tags, dict) else None
        listed = values if isinstance(values, list) else [values]
        if len(listed) != 1 or not isinstance(listed[0], str):
            problems.append(
                f"the {TAG_KEY} tag must carry exactly one wallet (got {len(listed)} values: "
                "a session would match every wallet listed)"
            )
        elif not _LOWER_WALLET.fullmatch(listed[0]):
            problems.append(f"the {TAG_KEY} tag must be a lower-case 0x wallet")
    wallet = claims.get(TAG_KEY)
    if wallet is not None and not (isinstance(wallet, str) and _LOWER_WALLET.fullmatch(wallet)):
        problems.append(f"the {TAG_KEY} claim must be one lower-case 0x wallet")
    return problems
