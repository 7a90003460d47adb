"""The public API (``open_store`` -> ``CredentialStore`` with a ``SecretKeySource``) on COS,
against the double, in both federation modes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from portable_creds.errors import (
    AccessDenied,
    ConfigurationError,
    NotFound,
    SecretNotDelivered,
)
from portable_creds.opener import open_store
from portable_creds.outbox import Outbox
from portable_creds.secret_key import SecretKeySource
from portable_creds.store import CredentialStore

from .conftest import WALLET_A, WALLET_B, Env

MODES = ["role-per-tenant", "token-vendor"]
KEYS_ROOT = os.urandom(32)
KEYS = SecretKeySource(KEYS_ROOT)


def open_cos(env: Env, wallet: str, mode: str, **kw: object) -> CredentialStore:
    options: dict[str, object] = {}
    if mode == "token-vendor":
        url = env.vendor_url()
        options = {"secret_id": env.vendor.secret_id, "secret_key": env.vendor.secret_key}
    else:
        url = f"{env.url}&mode={mode}"
    kw.setdefault("outbox", False)
    return open_store(url, wallet=wallet, token=env.token_for(wallet), keys=KEYS, **options, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", MODES)
def test_round_trip_through_credential_store(env: Env, mode: str) -> None:
    store = open_cos(env, WALLET_A, mode)
    store.put("github", b"ghp_secret")
    store.put("openai", "sk-secret")
    assert store.get("github").reveal() == b"ghp_secret"
    assert store.list() == ["github", "openai"]
    raw = env.double.account.buckets[env.bucket].objects[store.key_for("github")].data
    assert b"ghp_secret" not in raw  # sealed before it left the process
    store.delete("github")
    with pytest.raises(NotFound):
        store.get("github")
    with pytest.raises(NotFound):
        store.delete("github")
    assert store.teardown() == 1
    assert store.list() == []


@pytest.mark.parametrize("mode", MODES)
def test_tenant_isolation_through_credential_store(env: Env, mode: str) -> None:
    open_cos(env, WALLET_B, mode).put("github", b"b-secret")
    a = open_cos(env, WALLET_A, mode)
    a.put("github", b"a-secret")
    # Same key source, A's cloud identity, B's wallet: only the cloud's CAM stands in the way.
    confused = CredentialStore(a.objects, KEYS, WALLET_B)
    with pytest.raises(AccessDenied):
        confused.get("github")
    with pytest.raises(AccessDenied):
        confused.list()
    with pytest.raises(AccessDenied):
        confused.put("github", b"overwrite")
    with pytest.raises(AccessDenied):
        confused.delete("github")
    assert open_cos(env, WALLET_B, mode).get("github").reveal() == b"b-secret"


def test_expired_credentials_are_renewed_transparently(env: Env) -> None:
    d = env.double
    store = open_store(
        f"{env.url}&mode=role-per-tenant&duration=900",
        wallet=WALLET_A,
        token=lambda: env.idp.mint(WALLET_A, "portable-creds-test", now=d.now()),
        keys=KEYS,
        outbox=False,
    )
    store.put("github", b"x")
    sessions = len(d.issued_sessions)
    d.advance(3600)
    assert store.get("github").reveal() == b"x"
    assert len(d.issued_sessions) == sessions + 1


def test_outage_keeps_the_secret_in_the_outbox_until_flushed(env: Env, tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox")
    store = open_cos(env, WALLET_A, "role-per-tenant", outbox=box)
    env.double.faults.fail_next(100, status=503)
    with pytest.raises(SecretNotDelivered):
        store.put("github", b"x")
    env.double.faults.clear()
    assert store.flush() == 1
    assert store.get("github").reveal() == b"x"


def test_scoped_store_is_enforced_by_the_cloud_in_token_vendor_mode(env: Env) -> None:
    store = open_cos(env, WALLET_A, "token-vendor")
    assert store.objects.capabilities.scoped_credentials == "cloud"
    store.put("allowed", b"yes")
    store.put("denied", b"no")
    scoped = store.scoped(["allowed"])
    assert scoped.get("allowed").reveal() == b"yes"
    raw = scoped.objects  # no client-side filter: every refusal below comes from CAM
    session = env.double.issued_sessions[-1]
    assert "credentials/allowed.enc" in (session.session_policy_text or "")
    assert "denied" not in (session.session_policy_text or "")
    with pytest.raises(AccessDenied):
        raw.get(store.key_for("denied"))
    with pytest.raises(AccessDenied):
        raw.put(store.key_for("allowed"), b"overwrite")  # read-only scope
    with pytest.raises(AccessDenied):
        raw.delete(store.key_for("allowed"))
    with pytest.raises(AccessDenied):
        list(raw.list(f"bots/{WALLET_A}/"))
    env_vars = raw.exported_credentials()
    assert env_vars["TENCENTCLOUD_SECRET_ID"] == session.secret_id
    assert env_vars["TENCENTCLOUD_SESSION_TOKEN"] == session.token
    writable = store.scoped(["allowed"], read_only=False)
    writable.put("allowed", b"changed")
    assert store.get("allowed").reveal() == b"changed"
    assert store.get("denied").reveal() == b"no"


def test_scoping_is_refused_where_the_cloud_cannot_narrow(env: Env) -> None:
    store = open_cos(env, WALLET_A, "role-per-tenant")
    assert store.objects.capabilities.scoped_credentials == "none"
    with pytest.raises(ConfigurationError):
        store.scoped(["github"])


def test_vendor_never_scopes_into_another_tenant(env: Env) -> None:
    from portable_creds_tencent.federation import Scope

    store = open_cos(env, WALLET_A, "token-vendor")
    provider = store.objects.credentials_provider  # type: ignore[attr-defined]
    foreign = f"bots/{WALLET_B}/credentials/github.enc"
    for keys in ((foreign,), (f"bots/{WALLET_A}/*",), (f"bots/{WALLET_A}/../{WALLET_B}/x",)):
        with pytest.raises(AccessDenied):
            provider.narrowed(Scope(keys, True)).credentials()


def test_oversized_object_is_refused_before_its_body_is_read(env: Env) -> None:
    """COS: an object above the reader's maximum is refused on its Content-Length (issue 12
    #5); the reading process never allocates the 16 MiB body (measured in a child process,
    since the double runs inside this one)."""
    from portable_creds.errors import PayloadTooLarge

    from ..read_probe import probe

    store = open_cos(env, WALLET_A, "role-per-tenant", max_payload=4096)
    store.put("small", b"fits")
    big = 16 << 20
    store.objects.put(store.key_for("huge"), b"\0" * big)
    spec = {
        "url": env.url,
        "options": {
            "secret_id": env.double.root.secret_id,
            "secret_key": env.double.root.secret_key,
        },
        "wallet": WALLET_A,
        "service": "huge",
        "max_payload": 4096,
        "root_hex": KEYS_ROOT.hex(),
    }
    answer = probe(spec)
    assert answer["error"] == "PayloadTooLarge"
    assert answer["peak"] < big // 16
    assert probe({**spec, "service": "small"})["error"] is None
    with pytest.raises(PayloadTooLarge, match="refused without being read"):
        store.get("huge")
    with pytest.raises(PayloadTooLarge):
        store.objects.get_capped(store.key_for("small"), max_size=10)
