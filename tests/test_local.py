"""The local driver on a real filesystem: atomicity, conditional writes, modes, scoping, names."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from portable_creds.driver import StoreTarget
from portable_creds.errors import (
    AccessDenied,
    ConfigurationError,
    InvalidName,
    NotFound,
    PreconditionFailed,
)
from portable_creds.local import LocalDriver, LocalObjectStore, root_from_url

A = "0x" + "a1" * 20
B = "0x" + "b2" * 20
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "objects"


@pytest.fixture
def admin(root: Path) -> LocalObjectStore:
    return LocalObjectStore(root)


@pytest.fixture
def store_a(root: Path) -> LocalObjectStore:
    return LocalObjectStore(root, wallet=A)


@pytest.fixture
def store_b(root: Path) -> LocalObjectStore:
    return LocalObjectStore(root, wallet=B)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def all_entries(root: Path) -> list[Path]:
    return [Path(d) / n for d, dirs, files in os.walk(root) for n in dirs + files]


# -- basic object semantics ----------------------------------------------------------------


def test_round_trip_and_etag_is_content_hash(admin: LocalObjectStore) -> None:
    etag = admin.put("bots/x/one", b"first")
    assert etag == hashlib.sha256(b"first").hexdigest()
    got = admin.get("bots/x/one")
    assert (got.data, got.etag) == (b"first", etag)
    info = admin.head("bots/x/one")
    assert (info.key, info.size, info.etag) == ("bots/x/one", 5, etag)
    etag2 = admin.put("bots/x/one", b"second!")
    assert etag2 != etag
    assert admin.get("bots/x/one").data == b"second!"
    assert admin.head("bots/x/one").size == 7


def test_missing_objects(admin: LocalObjectStore) -> None:
    with pytest.raises(NotFound):
        admin.get("nope/x")
    with pytest.raises(NotFound):
        admin.head("nope/x")
    admin.put("dir/sub/obj", b"1")
    with pytest.raises(NotFound):  # a directory of objects is not an object
        admin.get("dir/sub")
    with pytest.raises(NotFound):  # below a file
        admin.get("dir/sub/obj/deeper")
    admin.delete("nope/x")  # absent: not an error
    admin.delete("dir/sub")  # a directory: not an object, left alone
    assert admin.get("dir/sub/obj").data == b"1"


def test_delete_removes(admin: LocalObjectStore) -> None:
    admin.put("k/v", b"x")
    admin.delete("k/v")
    with pytest.raises(NotFound):
        admin.get("k/v")
    assert list(admin.list("k/")) == []
    admin.delete("k/v")  # twice is fine


def test_file_and_directory_cannot_share_a_name(admin: LocalObjectStore) -> None:
    admin.put("a/b", b"file")
    with pytest.raises(InvalidName):
        admin.put("a/b/c", b"below a file")
    admin.put("x/y/z", b"deep")
    with pytest.raises(InvalidName):
        admin.put("x/y", b"over a directory")
    with pytest.raises(InvalidName):
        admin.put("x/y", b"over a directory", if_none_match=True)
    assert admin.get("a/b").data == b"file"
    assert admin.get("x/y/z").data == b"deep"


# -- conditional writes --------------------------------------------------------------------


def test_create_only(admin: LocalObjectStore) -> None:
    etag = admin.put("c/obj", b"one", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        admin.put("c/obj", b"two", if_none_match=True)
    assert admin.get("c/obj").etag == etag
    assert admin.get("c/obj").data == b"one"


def test_if_match(admin: LocalObjectStore) -> None:
    etag1 = admin.put("m/obj", b"v1")
    etag2 = admin.put("m/obj", b"v2", if_match=etag1)
    assert admin.get("m/obj").data == b"v2"
    with pytest.raises(PreconditionFailed):
        admin.put("m/obj", b"stale", if_match=etag1)
    assert admin.get("m/obj").data == b"v2"
    admin.put("m/obj", b"v3", if_match=f'"{etag2}"')  # quoted ETags as HTTP spells them
    assert admin.get("m/obj").data == b"v3"
    with pytest.raises(PreconditionFailed):
        admin.put("m/absent", b"x", if_match=etag1)
    with pytest.raises(NotFound):
        admin.get("m/absent")
    with pytest.raises(ConfigurationError):
        admin.put("m/obj", b"x", if_none_match=True, if_match=etag1)


def test_create_only_race_threads_one_winner(admin: LocalObjectStore) -> None:
    racers = 16
    barrier = threading.Barrier(racers)
    outcomes: dict[int, str] = {}

    def race(i: int) -> None:
        barrier.wait()
        try:
            admin.put("race/obj", f"racer-{i}".encode(), if_none_match=True)
            outcomes[i] = "won"
        except PreconditionFailed:
            outcomes[i] = "lost"

    threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, o in outcomes.items() if o == "won"]
    assert len(outcomes) == racers
    assert len(winners) == 1
    assert admin.get("race/obj").data == f"racer-{winners[0]}".encode()
    assert sorted(p.name for p in (admin.root / "race").iterdir()) == [".pc~lock", "obj"]


RACER = textwrap.dedent(
    """
    import sys
    from portable_creds.errors import PreconditionFailed
    from portable_creds.local import LocalObjectStore
    store = LocalObjectStore(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        store.put("race/obj", sys.argv[2].encode(), if_none_match=True)
        print("won", flush=True)
    except PreconditionFailed:
        print("lost", flush=True)
    """
)


def test_create_only_race_processes_one_winner(root: Path) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(root), f"proc-{i}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for i in range(6)
    ]
    for p in procs:  # everyone is loaded and waiting before anyone goes
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.close()
    results = []
    for p in procs:
        assert p.stdout is not None
        results.append(p.stdout.read().strip())
        assert p.wait(timeout=120) == 0
    winners = [i for i, r in enumerate(results) if r == "won"]
    assert sorted(set(results)) == ["lost", "won"]
    assert len(winners) == 1
    assert LocalObjectStore(root).get("race/obj").data == f"proc-{winners[0]}".encode()


COUNTER = textwrap.dedent(
    """
    import sys
    from portable_creds.errors import PreconditionFailed
    from portable_creds.local import LocalObjectStore
    store = LocalObjectStore(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()
    done = 0
    while done < int(sys.argv[2]):
        current = store.get("cas/counter")
        try:
            store.put("cas/counter", str(int(current.data) + 1).encode(), if_match=current.etag)
            done += 1
        except PreconditionFailed:
            pass
    """
)


def test_if_match_compare_and_swap_loses_no_update(admin: LocalObjectStore) -> None:
    """Concurrent read-modify-write loops (threads and processes): every increment survives."""
    admin.put("cas/counter", b"0")
    per_worker, n_threads, n_procs = 30, 3, 3

    def thread_worker() -> None:
        done = 0
        while done < per_worker:
            current = admin.get("cas/counter")
            try:
                admin.put("cas/counter", str(int(current.data) + 1).encode(), if_match=current.etag)
                done += 1
            except PreconditionFailed:
                pass

    procs = [
        subprocess.Popen(
            [sys.executable, "-c", COUNTER, str(admin.root), str(per_worker)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for _ in range(n_procs)
    ]
    for p in procs:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
    threads = [threading.Thread(target=thread_worker) for _ in range(n_threads)]
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.close()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        assert p.stdout is not None
        p.stdout.read()
        assert p.wait(timeout=300) == 0
    assert int(admin.get("cas/counter").data) == per_worker * (n_threads + n_procs)


# -- atomicity and visibility ---------------------------------------------------------------


def test_readers_never_see_partial_writes(admin: LocalObjectStore) -> None:
    size = 1 << 20
    versions = [bytes([c]) * size for c in b"abcd"]
    admin.put("big/obj", versions[0])
    stop = threading.Event()
    seen: list[bytes] = []
    bad: list[int] = []

    def reader() -> None:
        while not stop.is_set():
            data = admin.get("big/obj").data
            if data not in versions:
                bad.append(len(data))
            elif not seen or seen[-1] != data[:1]:
                seen.append(data[:1])

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(40):
            admin.put("big/obj", versions[i % len(versions)])
    finally:
        stop.set()
        t.join()
    assert bad == []
    assert seen  # the reader really ran


def test_temp_and_lock_files_never_visible(admin: LocalObjectStore, root: Path) -> None:
    admin.put("v/one", b"1")
    admin.put("v/one", b"2")
    with pytest.raises(PreconditionFailed):
        admin.put("v/one", b"3", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        admin.put("v/one", b"4", if_match="0" * 64)
    admin.put("v/two", b"2")
    # What a crash between write and rename leaves behind:
    (root / "v" / ".pc~tmp.deadbeef").write_bytes(b"half")
    on_disk = sorted(p.name for p in (root / "v").iterdir())
    assert on_disk == [".pc~lock", ".pc~tmp.deadbeef", "one", "two"]
    assert [i.key for i in admin.list("v/")] == ["v/one", "v/two"]
    assert [i.key for i in admin.list("")] == ["v/one", "v/two"]
    assert [i.key for i in admin.list("v/.pc~")] == []
    with pytest.raises(InvalidName):
        admin.get("v/.pc~tmp.deadbeef")
    with pytest.raises(InvalidName):
        admin.get("v/.pc~lock")


def test_modes_are_private_despite_permissive_umask(
    admin: LocalObjectStore, root: Path, permissive_umask: None
) -> None:
    fresh = LocalObjectStore(root.parent / "fresh" / "nested")
    for store in (admin, fresh):
        store.put("bots/x/credentials/a.enc", b"sealed")
        store.put("bots/x/credentials/b.enc", b"sealed", if_none_match=True)
        etag = store.head("bots/x/credentials/b.enc").etag
        store.put("bots/x/credentials/b.enc", b"sealed2", if_match=etag)
        entries = [*all_entries(store.root), store.root]
        assert len(entries) >= 7
        for path in entries:
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    assert stat.S_IMODE((root.parent / "fresh").stat().st_mode) == 0o700


# -- names ---------------------------------------------------------------------------------

BAD_KEYS = [
    "",
    "/etc/passwd",
    "a//b",
    "a/",
    "a/./b",
    "a/../b",
    "..",
    "../escape",
    ".",
    "a\\b",
    "a\x00b",
    "a\nb",
    ".pc~tmp.x",
    "a/.pc~lock",
    "x" * 1025,
    "a/" + "y" * 256,
    "bad\udcffsurrogate",
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_invalid_keys_rejected_everywhere(admin: LocalObjectStore, key: str) -> None:
    for call in (
        lambda: admin.put(key, b"x"),
        lambda: admin.put(key, b"x", if_none_match=True),
        lambda: admin.get(key),
        lambda: admin.head(key),
        lambda: admin.delete(key),
    ):
        with pytest.raises(InvalidName):
            call()


def test_traversal_never_escapes_root(admin: LocalObjectStore, root: Path) -> None:
    outside = root.parent / "escape"
    with pytest.raises(InvalidName):
        admin.put("../escape", b"x")
    with pytest.raises(InvalidName):
        admin.put("a/../../escape", b"x")
    with pytest.raises(InvalidName):
        list(admin.list("../"))
    assert not outside.exists()


def test_valid_unusual_keys(admin: LocalObjectStore) -> None:
    for key in ("a/..b", "a/b..", "a/.hidden", "ü/ñ é", "a/~x"):
        admin.put(key, key.encode())
        assert admin.get(key).data == key.encode()


# -- listing -------------------------------------------------------------------------------


def test_listing_order_and_prefixes(admin: LocalObjectStore) -> None:
    keys = ["p/a.enc", "p/B.enc", "p/a-1", "p/a/x", "p/ab", "p/a/y/z", "q/z", "p2/x", "pé/x"]
    for key in reversed(keys):
        admin.put(key, key.encode() * 2)
    everything = sorted(keys, key=lambda k: k.encode("utf-8"))
    assert [i.key for i in admin.list("")] == everything
    assert [i.key for i in admin.list("p/")] == [k for k in everything if k.startswith("p/")]
    assert [i.key for i in admin.list("p/a")] == [k for k in everything if k.startswith("p/a")]
    assert [i.key for i in admin.list("p")] == [k for k in everything if k.startswith("p")]
    assert [i.key for i in admin.list("p/a/")] == ["p/a/x", "p/a/y/z"]
    assert list(admin.list("nothing/here/")) == []
    assert list(admin.list("p/a.enc/")) == []  # below a file
    for info in admin.list(""):
        assert info.size == 2 * len(info.key.encode())
        assert info.etag == hashlib.sha256(info.key.encode() * 2).hexdigest()


# -- tenant scoping ------------------------------------------------------------------------


def test_tenant_round_trip_in_own_area(store_a: LocalObjectStore) -> None:
    for key in (
        f"bots/{A}/credentials/svc.enc",
        f"conformance/abc/bots/{A}/credentials/x.enc",
        f"{A}/top",
    ):
        store_a.put(key, b"mine")
        assert store_a.get(key).data == b"mine"
    assert [i.key for i in store_a.list(f"bots/{A}/")] == [f"bots/{A}/credentials/svc.enc"]
    assert [i.key for i in store_a.list(f"bots/{A}/cred")] == [f"bots/{A}/credentials/svc.enc"]
    store_a.delete(f"bots/{A}/credentials/svc.enc")
    assert list(store_a.list(f"bots/{A}/")) == []


def test_tenant_cannot_touch_another_tenant(
    store_a: LocalObjectStore, store_b: LocalObjectStore, admin: LocalObjectStore, root: Path
) -> None:
    key_b = f"bots/{B}/credentials/svc.enc"
    store_b.put(key_b, b"b-secret")
    for call in (
        lambda: store_a.get(key_b),
        lambda: store_a.head(key_b),
        lambda: store_a.put(key_b, b"overwrite"),
        lambda: store_a.put(key_b, b"overwrite", if_none_match=True),
        lambda: store_a.put(key_b, b"overwrite", if_match=store_b.head(key_b).etag),
        lambda: store_a.delete(key_b),
        lambda: list(store_a.list(f"bots/{B}/")),
        lambda: list(store_a.list(f"bots/{B}/credentials/")),
    ):
        with pytest.raises(AccessDenied):
            call()
    assert store_b.get(key_b).data == b"b-secret"
    assert admin.get(key_b).data == b"b-secret"  # the administrative view is unscoped
    # A denied write does not even create directories in B's area:
    with pytest.raises(AccessDenied):
        store_a.put(f"bots/{B}/new/obj", b"x")
    assert not (root / "bots" / B / "new").exists()


@pytest.mark.parametrize(
    "key",
    [
        "bots/shared/obj",  # no wallet at all: admin territory
        f"bots/{A}",  # the tenant directory itself, not something below it
        f"bots/{A.upper().replace('0X', '0x')}/credentials/x.enc",  # another spelling
        f"bots/{A}/{B}/x",  # another wallet below ours
        f"bots/{B}/{A}/x",  # ours below another wallet
        f"{B}/x/{A}/y",
    ],
)
def test_tenant_key_scope_rule(store_a: LocalObjectStore, key: str) -> None:
    for call in (
        lambda: store_a.put(key, b"x"),
        lambda: store_a.get(key),
        lambda: store_a.head(key),
        lambda: store_a.delete(key),
    ):
        with pytest.raises(AccessDenied):
            call()


@pytest.mark.parametrize("prefix", ["", "bots", "bots/", f"bots/{A}", f"bots/{B}/", "x/"])
def test_tenant_cannot_list_outside_own_area(store_a: LocalObjectStore, prefix: str) -> None:
    with pytest.raises(AccessDenied):
        list(store_a.list(prefix))


def test_tenant_listing_hides_foreign_keys_planted_in_its_area(
    store_a: LocalObjectStore, admin: LocalObjectStore
) -> None:
    admin.put(f"bots/{A}/x/{B}/planted", b"x")
    admin.put(f"bots/{A}/x/mine", b"y")
    assert [i.key for i in store_a.list(f"bots/{A}/")] == [f"bots/{A}/x/mine"]
    assert [i.key for i in admin.list(f"bots/{A}/")] == [
        f"bots/{A}/x/{B}/planted",
        f"bots/{A}/x/mine",
    ]


def test_invalid_wallet_rejected(root: Path) -> None:
    with pytest.raises(InvalidName):
        LocalObjectStore(root, wallet="0x1234")


def test_wallet_is_canonicalised(root: Path) -> None:
    store = LocalObjectStore(root, wallet=A.upper().replace("0X", "0x"))
    assert store.wallet == A
    store.put(f"bots/{A}/k", b"v")


# -- URLs and the driver -------------------------------------------------------------------


def test_root_from_url(tmp_path: Path) -> None:
    assert root_from_url("local:", home=tmp_path) == tmp_path / "objects"
    assert root_from_url("local://", home=tmp_path) == tmp_path / "objects"
    assert root_from_url(f"local://{tmp_path}/x%20y") == tmp_path / "x y"
    assert root_from_url(f"local://localhost{tmp_path}/z") == tmp_path / "z"
    for bad in ("local:relative/path", "local://otherhost/x", "s3://bucket"):
        with pytest.raises(ConfigurationError):
            root_from_url(bad)


def test_driver_opens_scoped_store(tmp_path: Path) -> None:
    driver = LocalDriver()
    assert driver.name == "local"
    store = driver.open_object_store(StoreTarget(url=f"local://{tmp_path}/data", wallet=A))
    assert isinstance(store, LocalObjectStore)
    assert store.backend_id == f"local:{(tmp_path / 'data').resolve()}"
    caps = store.capabilities
    assert (caps.create_only, caps.if_match, caps.federation, caps.server_side_isolation) == (
        True,
        True,
        False,
        True,
    )
    store.put(f"bots/{A}/k", b"v")
    with pytest.raises(AccessDenied):
        store.put(f"bots/{B}/k", b"v")
    default = driver.open_object_store(
        StoreTarget(url="local:", wallet=None, options={"home": str(tmp_path / "home")})
    )
    assert default.root == (tmp_path / "home" / "objects").resolve()
    assert (tmp_path / "home" / "objects").is_dir()


def test_root_that_is_a_file_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ConfigurationError):
        LocalObjectStore(tmp_path / "file" / "objects")


def test_stale_temp_files_of_killed_writers_are_swept(root: Path) -> None:
    from portable_creds.local import STALE_TEMP_SECONDS, TEMP_PREFIX

    first = LocalObjectStore(root)
    first.put("bots/d/k", b"v")
    directory = root / "bots" / "d"
    stale, fresh = directory / f"{TEMP_PREFIX}dead", directory / f"{TEMP_PREFIX}live"
    stale.write_bytes(b"half a write")
    fresh.write_bytes(b"a write in progress")
    old = time.time() - STALE_TEMP_SECONDS - 60
    os.utime(stale, (old, old))
    LocalObjectStore(root).put("bots/d/other", b"w")
    assert not stale.exists()
    assert fresh.exists()  # a live writer's temp file is left alone
    assert [i.key for i in first.list("bots/d/")] == ["bots/d/k", "bots/d/other"]
