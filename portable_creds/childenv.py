"""What a child started by ``run`` inherits: the parent environment minus our own secrets.

``run`` gives a child exactly the credentials it names, through a read-only scope. Anything in
the parent environment that could reach *more* - the legacy bearer token, the signer token, the
root-secret file or data home, an OIDC token file that an STS exchange turns into the tenant's
unscoped role - must not ride along, or the scope is decoration. The user's own cloud keys
(``AWS_ACCESS_KEY_ID``...) are theirs and kept: ``run`` did not put them there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

#: Variables never passed on (by default): every portable-creds setting, agentKeys secrets
#: (tokens, keys, KEKs: ``AGENTKEYS_SIGNER_TOKEN``, ``AGENTKEYS_WORKER_KEK_HEX``...), and any
#: ``*_TOKEN_FILE`` (``AWS_WEB_IDENTITY_TOKEN_FILE``: an identity, exchangeable for sessions).
_SCRUBBED = re.compile(
    r"PORTABLE_CREDS_.*"
    r"|AGENTKEYS_\w*(TOKEN|SECRET|KEK|KEY|PASSWORD|PASSWD)\w*"
    r"|\w*_TOKEN_FILE",
    re.IGNORECASE,
)


def scrubbed_name(name: str) -> bool:
    """Whether ``run`` withholds variable ``name`` from its child by default."""
    return _SCRUBBED.fullmatch(name) is not None


def child_environment(parent: Mapping[bytes, bytes]) -> tuple[dict[bytes, bytes], list[str]]:
    """``parent`` without the scrubbed variables, and the names removed (sorted; no values)."""
    kept: dict[bytes, bytes] = {}
    removed: list[str] = []
    for key, value in parent.items():
        name = key.decode("utf-8", "replace")
        if scrubbed_name(name):
            removed.append(name)
        else:
            kept[key] = value
    return kept, sorted(removed)
