"""The drivers' fleet operations against real services: ``list_wallets`` (one delimited
listing, paginated) and ``delete_many`` (batched, falling back to single deletes, per-key
refusals reported and nothing else touched)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from portable_creds_aws import objectstore
from portable_creds_aws.objectstore import S3ObjectStore
from portable_creds_tencent.driver import CosDriver

from portable_creds import fleet
from portable_creds.driver import StoreTarget
from portable_creds.errors import AccessDenied

from ..cloud_fixtures import RgwDeployment
from ..tencent.conftest import WALLET_A, WALLET_B
from .conftest import Env, wallet

WALLETS = [wallet(n) for n in (7, 3, 11, 5, 2)]


def seed_layout(put: Callable[[str, bytes], object]) -> None:
    for w in WALLETS:
        put(f"bots/{w}/credentials/a.enc", b"x")
        put(f"bots/{w}/credentials/b.enc", b"y")
    put("bots/not-a-wallet/credentials/a.enc", b"z")
    put("bots/0x" + "AB" * 20 + "/credentials/a.enc", b"not canonical")
    put(f"other/{wallet(99)}/credentials/a.enc", b"other prefix")
    put("bots/loose-object", b"no directory")


def test_s3_list_wallets_and_batched_delete(
    moto_store: S3ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_layout(moto_store.put)
    assert fleet.list_wallets(moto_store) == sorted(WALLETS)
    assert fleet.list_wallets(moto_store, "other") == [wallet(99)]
    keys = [i.key for i in moto_store.list("bots/0x")]
    monkeypatch.setattr(objectstore, "DELETE_BATCH", 3)  # several DeleteObjects requests
    assert moto_store.delete_many([*keys, "bots/never-existed"]) == {}
    assert [i.key for i in moto_store.list("bots/0x")] == []
    assert [i.key for i in moto_store.list("bots/")] == [
        "bots/loose-object", "bots/not-a-wallet/credentials/a.enc"
    ]  # fmt: skip


@pytest.mark.rgw
def test_rgw_role_session_delete_many_stays_inside_the_tenant(
    rgw_deployment: RgwDeployment, tenant: Callable[[], str]
) -> None:
    a, b = tenant(), tenant()
    store_a, store_b = rgw_deployment.object_store(a), rgw_deployment.object_store(b)
    own = [f"bots/{a}/credentials/{n}.enc" for n in ("x", "y", "z")]
    for key in own:
        store_a.put(key, b"a")
    foreign = f"bots/{b}/credentials/x.enc"
    store_b.put(foreign, b"b")
    # The tenant's own keys go (as a batch or one by one); B's key is refused and stays.
    failed = store_a.delete_many([*own, foreign])
    assert list(failed) == [foreign] and isinstance(failed[foreign], AccessDenied)
    assert [i.key for i in store_a.list(f"bots/{a}/")] == []
    assert store_b.get(foreign).data == b"b"
    assert fleet.list_wallets(rgw_deployment.admin_store()) != []


def test_cos_list_wallets_paginates_and_tenant_delete_many_is_per_key(cos: Env) -> None:
    admin = cos.admin()
    seed_layout(admin.put)
    paged = CosDriver().open_object_store(
        StoreTarget(
            url=cos.url + "&page_size=2",
            wallet=None,
            options={
                "secret_id": cos.double.root.secret_id,
                "secret_key": cos.double.root.secret_key,
            },
        )
    )
    assert fleet.list_wallets(paged) == sorted(WALLETS)
    assert fleet.list_wallets(admin, "other") == [wallet(99)]
    tenant_a = cos.open(WALLET_A)
    own = [f"bots/{WALLET_A}/credentials/{n}.enc" for n in ("x", "y")]
    for key in own:
        tenant_a.put(key, b"a")
    foreign = f"bots/{WALLET_B}/credentials/x.enc"
    admin.put(foreign, b"b")
    failed = tenant_a.delete_many([*own, foreign])
    assert list(failed) == [foreign] and isinstance(failed[foreign], AccessDenied)
    assert [i.key for i in admin.list(f"bots/{WALLET_A}/")] == []
    assert admin.get(foreign).data == b"b"
    assert admin.delete_many([i.key for i in admin.list("bots/0x")] + [foreign]) == {}
    assert fleet.list_wallets(admin) == []
