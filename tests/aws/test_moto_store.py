"""Storage semantics of the s3 driver against moto's HTTP server (boto3 over real HTTP).

moto does not evaluate IAM or tokens, so nothing here says anything about isolation; that is
what the RGW tests are for.
"""

from __future__ import annotations

import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from portable_creds_aws.driver import S3Driver
from portable_creds_aws.objectstore import S3ObjectStore

import portable_creds
from portable_creds.driver import StoreTarget
from portable_creds.errors import AccessDenied, ConfigurationError, NotFound, PreconditionFailed
from portable_creds.names import object_key
from portable_creds.secret_key import SecretKeySource
from portable_creds.store import CredentialStore

from .conftest import MOTO_KEYS, moto_url, random_wallet


def test_credential_round_trip(moto_store: S3ObjectStore, keys: SecretKeySource) -> None:
    w = random_wallet()
    store = CredentialStore(moto_store, keys, w)
    store.put("github", b"ghp_123")
    store.put("aws-prod", "AKIA...")
    assert store.get("github").reveal() == b"ghp_123"
    assert store.list() == ["aws-prod", "github"]
    raw = moto_store.get(object_key(w, "github")).data
    assert b"ghp_123" not in raw
    store.delete("github")
    with pytest.raises(NotFound):
        store.get("github")
    with pytest.raises(NotFound):
        store.delete("github")
    assert store.teardown() == 1
    assert store.list() == []


def test_open_store_by_url(
    moto_endpoint: str, moto_bucket: str, keys: SecretKeySource, tmp_path: object
) -> None:
    """``open_store`` finds the driver through the entry point; static keys need the opt-in."""
    w = random_wallet()
    url = moto_url(moto_endpoint, moto_bucket)
    with pytest.raises(ConfigurationError, match="role_arn"):
        portable_creds.open_store(url, wallet=w, keys=keys, **MOTO_KEYS)
    store = portable_creds.open_store(
        url, wallet=w, keys=keys, home=str(tmp_path), allow_static_tenant=True, **MOTO_KEYS
    )
    store.put("svc", b"value")
    assert store.get("svc").reveal() == b"value"
    assert not store.objects.capabilities.server_side_isolation


def test_object_semantics(moto_store: S3ObjectStore) -> None:
    etag = moto_store.put("a/b/one", b"12345")
    assert '"' not in etag
    got = moto_store.get("a/b/one")
    assert got.data == b"12345" and got.etag == etag
    info = moto_store.head("a/b/one")
    assert (info.key, info.size, info.etag) == ("a/b/one", 5, etag)
    with pytest.raises(NotFound):
        moto_store.get("a/b/missing")
    with pytest.raises(NotFound):
        moto_store.head("a/b/missing")
    moto_store.delete("a/b/missing")  # absent: not an error
    moto_store.delete("a/b/one")
    with pytest.raises(NotFound):
        moto_store.get("a/b/one")


def test_pagination_is_hidden(moto_store: S3ObjectStore) -> None:
    keys = [f"p/k{i:05d}" for i in range(1050)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: moto_store.put(k, b"x"), keys))
    moto_store.put("q/outside", b"y")
    listed = [info.key for info in moto_store.list("p/")]
    assert listed == keys  # > 1000: two pages, in key order, nothing outside the prefix
    assert [i.key for i in moto_store.list("p/k0102")] == [f"p/k0102{d}" for d in range(10)]


def test_create_only_put(moto_store: S3ObjectStore) -> None:
    assert moto_store.capabilities.create_only
    moto_store.put("c/key", b"first", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        moto_store.put("c/key", b"second", if_none_match=True)
    assert moto_store.get("c/key").data == b"first"


def test_create_only_has_one_winner(moto_store: S3ObjectStore) -> None:
    barrier = threading.Barrier(8)

    def race(i: int) -> bool:
        barrier.wait()
        try:
            moto_store.put("race/key", f"writer-{i}".encode(), if_none_match=True)
        except PreconditionFailed:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(race, range(8)))
    assert wins.count(True) == 1
    winner = wins.index(True)
    assert moto_store.get("race/key").data == f"writer-{winner}".encode()


def test_if_match_put(moto_store: S3ObjectStore) -> None:
    assert moto_store.capabilities.if_match
    e1 = moto_store.put("m/key", b"v1")
    e2 = moto_store.put("m/key", b"v2", if_match=e1)
    assert e2 != e1
    with pytest.raises(PreconditionFailed):
        moto_store.put("m/key", b"v3-stale", if_match=e1)
    assert moto_store.get("m/key").data == b"v2"
    with pytest.raises((PreconditionFailed, NotFound)):
        moto_store.put("m/absent", b"x", if_match=e1)


def test_rewrap_uses_if_match(moto_store: S3ObjectStore) -> None:
    root = secrets.token_bytes(32)
    w = random_wallet()
    old = CredentialStore(moto_store, SecretKeySource(root, 1), w)
    old.put("svc", b"payload")
    new = CredentialStore(moto_store, SecretKeySource(root, 2), w)
    assert new.rewrap() == 1
    assert new.get("svc").reveal() == b"payload"
    assert (
        CredentialStore(moto_store, SecretKeySource(root, 2, accept_versions=()), w)
        .get("svc")
        .reveal()
        == b"payload"
    )


def test_missing_bucket_is_a_configuration_error(moto_endpoint: str) -> None:
    store = S3Driver().open_object_store(
        StoreTarget(
            url=moto_url(moto_endpoint, "pc-no-such-bucket"), wallet=None, options=MOTO_KEYS
        )
    )
    with pytest.raises(ConfigurationError, match="bucket does not exist"):
        store.put("k", b"v")
    with pytest.raises(ConfigurationError):
        list(store.list(""))


def test_one_client_reused_across_threads(moto_store: S3ObjectStore) -> None:
    client = moto_store.client
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: moto_store.put(f"t/{i}", b"v"), range(64)))
    assert moto_store.client is client
    assert len(list(moto_store.list("t/"))) == 64


def test_static_tenant_store_is_scoped_by_the_driver(
    moto_endpoint: str, moto_bucket: str, moto_store: S3ObjectStore
) -> None:
    """Static keys confine nothing on the service, so a tenant store checks keys itself."""
    a, b = random_wallet(), random_wallet()
    moto_store.put(object_key(b, "github"), b"B")
    store_a = S3Driver().open_object_store(
        StoreTarget(
            url=moto_url(moto_endpoint, moto_bucket),
            wallet=a,
            options={**MOTO_KEYS, "allow_static_tenant": True},
        )
    )
    store_a.put(object_key(a, "github"), b"A")
    assert store_a.get(object_key(a, "github")).data == b"A"
    for attempt in (
        lambda: store_a.get(object_key(b, "github")),
        lambda: store_a.head(object_key(b, "github")),
        lambda: store_a.put(object_key(b, "planted"), b"x"),
        lambda: store_a.delete(object_key(b, "github")),
        lambda: list(store_a.list(f"bots/{b}/")),
        lambda: list(store_a.list("bots/")),
        lambda: store_a.copy(object_key(b, "github"), object_key(a, "stolen")),
    ):
        with pytest.raises(AccessDenied):
            attempt()
    assert moto_store.get(object_key(b, "github")).data == b"B"
    assert [i.key for i in moto_store.list(f"bots/{b}/")] == [object_key(b, "github")]


def test_oversized_object_is_refused_before_its_body_is_read(
    moto_endpoint: str, moto_bucket: str, moto_store: S3ObjectStore
) -> None:
    """An object above the reader's maximum is refused on its Content-Length (issue 12 #5):
    the reading process never allocates the 16 MiB body (measured in a child process, since
    moto runs inside this one)."""
    from portable_creds.errors import PayloadTooLarge

    from ..read_probe import probe

    w = random_wallet()
    root = secrets.token_bytes(32)
    store = CredentialStore(moto_store, SecretKeySource(root), w, max_payload=4096)
    store.put("small", b"fits")
    big = 16 << 20
    moto_store.put(store.key_for("huge"), b"\0" * big)
    spec = {
        "url": moto_url(moto_endpoint, moto_bucket),
        "options": MOTO_KEYS,
        "wallet": w,
        "service": "huge",
        "max_payload": 4096,
        "root_hex": root.hex(),
    }
    answer = probe(spec)
    assert answer["error"] == "PayloadTooLarge"
    assert answer["peak"] < big // 16
    assert probe({**spec, "service": "small"})["error"] is None
    with pytest.raises(PayloadTooLarge, match="refused without being read"):
        store.get("huge")
    with pytest.raises(PayloadTooLarge):
        moto_store.get_capped(store.key_for("small"), max_size=10)
    assert moto_store.get_capped(store.key_for("small"), max_size=10_000).data
