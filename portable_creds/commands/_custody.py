"""``--from-keys`` / ``--to-keys``: custody moves between key sources, for ``rewrap`` and ``copy``.

``rewrap --from-keys SPEC`` opens what SPEC sealed and seals it afresh with the store's own key
source (the URL's ``kms_key=``, else the root secret), or with ``--to-keys SPEC``. Specs are
parsed and resolved by ``portable_creds.key_specs`` (``root-secret[:FILE]``, ``signer``,
``kms:<key ARN>`` resolved by the backend's driver). Without ``--from-keys`` the blobs open
with what the store would open them with anyway (its KMS key, then the root secret if there
is one), so ``--to-keys`` alone moves everything to the new source.

Standard library only at import time (``--help`` imports every command module).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import _common

if TYPE_CHECKING:
    from ..driver import ObjectStore
    from ..keys import KeySource

def requested(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "from_keys", None) or getattr(args, "to_keys", None))


def _root_secret(settings: _common.Settings, path: str | None, *, create: bool) -> KeySource:
    from pathlib import Path

    from ..opener import default_key_source
    from ..secret_key import SecretKeySource

    if path is not None:
        return SecretKeySource.from_file(Path(path).expanduser(), settings.kek_version or 1)
    configured = _common.key_source(settings)
    if configured is not None:
        return configured
    return default_key_source(settings.home, create=create, on_notice=_common.notice)


def _signer(args: argparse.Namespace) -> KeySource:
    from .. import config
    from ..errors import ConfigurationError
    from ..signer import SignerKeySource

    resolved = config.resolve(vars(args))
    url = resolved["signer_url"].value
    if not url:
        raise ConfigurationError(
            "key source 'signer' needs the agentKeys signer: set AGENTKEYS_SIGNER_URL (or "
            "'portable-creds config set signer_url URL'); its token comes from "
            "AGENTKEYS_SIGNER_TOKEN or the profile, never the command line"
        )
    return SignerKeySource(
        url, omni_account=resolved["omni_account"].value, token=resolved["signer_token"].value
    )


def keys_for(
    args: argparse.Namespace, settings: _common.Settings, objects: ObjectStore
) -> KeySource:
    """Seal with ``--to-keys`` (default: the store's own source); open with it or any
    ``--from-keys`` (default: the store's own sources). Specs are checked before any source
    is built, so a typo fails before a KMS client or signer is contacted."""
    from .. import key_specs
    from ..errors import ConfigurationError

    from_specs = [key_specs.parse(s) for s in getattr(args, "from_keys", None) or []]
    raw_to = getattr(args, "to_keys", None)
    to_spec = key_specs.parse(raw_to) if raw_to else None

    def resolve(spec: key_specs.KeySpec) -> KeySource:
        return key_specs.resolve(
            spec,
            objects,
            root_secret=lambda path: _root_secret(settings, path, create=False),
            signer=lambda: _signer(args),
        )

    configured = objects.configured_key_source()
    root: KeySource | None = None
    if configured is None or not from_specs:
        try:
            root = _root_secret(settings, None, create=_common.is_local(settings.backend))
        except ConfigurationError:
            if configured is None and to_spec is None:
                raise  # nothing to seal with: say why (no root secret at <path> ...)
    own = [s for s in (configured, root) if s is not None]
    current = resolve(to_spec) if to_spec is not None else own[0]
    previous = [resolve(s) for s in from_specs] if from_specs else own
    if requested(args) and (not previous or (len(previous) == 1 and previous[0] is current)):
        raise ConfigurationError(
            "nothing to move from: name the key source the blobs are sealed with now "
            "(--from-keys SPEC)"
        )
    return key_specs.chain(current, previous)


def factory(
    args: argparse.Namespace, settings: _common.Settings
) -> Callable[[ObjectStore], KeySource]:
    """``keys_for`` as an ``opener.KeysFactory`` (the store's identity signs KMS calls)."""
    return lambda objects: keys_for(args, settings, objects)
