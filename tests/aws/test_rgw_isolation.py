"""Tenant isolation, enforced by Ceph RGW itself, through the real OIDC -> STS -> S3 flow.

Every store here is a tenant store: the driver exchanges the tenant's token for temporary
credentials of the wallet's own role (RGW's default ``role-per-tenant`` strategy), and only
that role's policy (written by the provisioner's ``onboard``) confines them. No client-side
check is involved: the driver sends the cross-tenant request and RGW refuses it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from portable_creds.errors import AccessDenied, InvalidToken, NotFound
from portable_creds.names import object_key

from .conftest import RgwDeployment

pytestmark = pytest.mark.rgw


@pytest.fixture
def pair(rgw_deployment: RgwDeployment, tenant: Callable[[], str]) -> tuple[str, str]:
    a, b = tenant(), tenant()
    store_b = rgw_deployment.store(b)
    store_b.put("github", b"B-secret-github")
    store_b.put("openai", b"B-secret-openai")
    return a, b


def test_round_trip_through_federation(
    rgw_deployment: RgwDeployment, tenant: Callable[[], str]
) -> None:
    w = tenant()
    store = rgw_deployment.store(w)
    store.put("github", b"ghp_example")
    store.put("openai", "sk-example")
    assert store.get("github").reveal() == b"ghp_example"
    assert store.get("openai").reveal() == b"sk-example"
    assert store.list() == ["github", "openai"]
    store.delete("github")
    assert store.list() == ["openai"]
    with pytest.raises(NotFound):
        store.get("github")  # own missing key: NotFound, not AccessDenied
    assert not store.exists("github")
    assert store.objects.capabilities.server_side_isolation
    assert store.objects.capabilities.federation


def test_tenant_a_cannot_touch_b(rgw_deployment: RgwDeployment, pair: tuple[str, str]) -> None:
    a, b = pair
    objs_a = rgw_deployment.object_store(a)
    key_b = object_key(b, "github")
    with pytest.raises(AccessDenied):
        objs_a.get(key_b)
    with pytest.raises(AccessDenied):
        objs_a.head(key_b)
    with pytest.raises(AccessDenied):
        objs_a.put(key_b, b"overwrite")
    with pytest.raises(AccessDenied):
        objs_a.put(object_key(b, "planted"), b"new object in B's prefix")
    with pytest.raises(AccessDenied):
        objs_a.delete(key_b)
    with pytest.raises(AccessDenied):
        list(objs_a.list(f"bots/{b}/"))
    with pytest.raises(AccessDenied):
        list(objs_a.list("bots/"))
    with pytest.raises(AccessDenied):
        objs_a.copy(key_b, object_key(a, "stolen"))
    # A missing key of B's is still "denied", never "not found" (no existence oracle).
    with pytest.raises(AccessDenied):
        objs_a.get(object_key(b, "does-not-exist"))

    # The CredentialStore view of the same attack: A's store pointed at B's wallet.
    from portable_creds.store import CredentialStore

    as_b = CredentialStore(objs_a, rgw_deployment.keys, b)
    with pytest.raises(AccessDenied):
        as_b.get("github")
    with pytest.raises(AccessDenied):
        as_b.list()
    with pytest.raises(AccessDenied):
        as_b.put("github", b"hijack")
    with pytest.raises(AccessDenied):
        as_b.delete("github")

    # B's data is intact, and nothing landed in B's prefix.
    store_b = rgw_deployment.store(b)
    assert store_b.get("github").reveal() == b"B-secret-github"
    assert store_b.get("openai").reveal() == b"B-secret-openai"
    assert store_b.list() == ["github", "openai"]
    # ...and the stolen copy was never created in A's prefix.
    assert rgw_deployment.store(a).list() == []


def test_admin_can_read_tenant_objects(
    rgw_deployment: RgwDeployment, pair: tuple[str, str]
) -> None:
    _, b = pair
    admin = rgw_deployment.admin_store()
    keys = [info.key for info in admin.list(f"bots/{b}/")]
    assert keys == [object_key(b, "github"), object_key(b, "openai")]
    blob = admin.get(object_key(b, "github")).data
    assert b"B-secret-github" not in blob  # sealed before it left the client


def test_offboarding_removes_access_on_next_refresh(
    rgw_deployment: RgwDeployment, tenant: Callable[[], str]
) -> None:
    w = tenant()
    store = rgw_deployment.store(w)
    store.put("github", b"kept")
    assert store.get("github").reveal() == b"kept"
    rgw_deployment.provisioner.offboard(w)
    # The live session loses access at once: RGW re-reads the session's role per request.
    with pytest.raises(AccessDenied):
        store.get("github")
    assert store.objects.provider is not None
    store.objects.provider.invalidate()  # the next call exchanges the token again
    # role-per-tenant: the wallet's role is gone, so STS refuses the token outright.
    with pytest.raises((AccessDenied, InvalidToken)):
        store.get("github")
    with pytest.raises((AccessDenied, InvalidToken)):
        store.put("github", b"after offboarding")
    # A brand-new session for the same wallet gets nothing either.
    with pytest.raises((AccessDenied, InvalidToken)):
        rgw_deployment.store(w).list()
    # The data itself is still there for the administrator.
    admin = rgw_deployment.admin_store()
    assert [i.key for i in admin.list(f"bots/{w}/")] == [object_key(w, "github")]
