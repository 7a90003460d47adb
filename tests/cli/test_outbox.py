"""A failed remote put keeps the sealed secret in the outbox; ``outbox flush`` delivers it.

Two backends that fail on purpose, both real: the test-only ``flaky`` driver (found by the
real registry through an entry point on PYTHONPATH) that is down while a flag file exists, and
the legacy HTTP backend served by ``LegacyServer`` answering HTTP 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from portable_creds import names
from portable_creds.errors import EXIT_CODES
from portable_creds.testing.legacy_server import LegacyServer

from .conftest import FAILDRIVER, WALLET_A, WALLET_B, Cli, error_line

SECRET = b"sk-outbox-secret-4242"


class Flaky:
    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "remote"
        self.flag = tmp_path / "down"
        self.url = f"flaky://{self.root}?down={self.flag}"

    def down(self) -> None:
        self.flag.touch()

    def up(self) -> None:
        self.flag.unlink()

    def stored(self, wallet: str, service: str) -> bool:
        return (self.root / names.object_key(wallet, service)).is_file()


@pytest.fixture
def flaky(wallet_cli: Cli, tmp_path: Path) -> Flaky:
    wallet_cli.env["PYTHONPATH"] = str(FAILDRIVER)
    f = Flaky(tmp_path)
    wallet_cli.env["PORTABLE_CREDS_BACKEND"] = f.url
    return f


def _outbox_files(cli: Cli) -> list[Path]:
    box = cli.data_home / "outbox"
    return sorted(box.glob("*.json")) if box.is_dir() else []


def test_failed_put_waits_in_the_outbox_and_flush_delivers(wallet_cli: Cli, flaky: Flaky) -> None:
    flaky.down()
    proc = wallet_cli.run("put", "svc", input=SECRET + b"\n")
    assert proc.returncode == EXIT_CODES["remote-unavailable"]
    line = error_line(proc)
    assert "outbox flush" in line
    assert SECRET not in proc.stderr + proc.stdout
    assert not flaky.stored(WALLET_A, "svc")

    # the outbox holds it, sealed: 0600 and no plaintext on disk
    files = _outbox_files(wallet_cli)
    assert len(files) == 1
    assert files[0].stat().st_mode & 0o777 == 0o600
    assert SECRET not in files[0].read_bytes()
    assert str(files[0]) in line

    listed = wallet_cli.ok("outbox", "list")
    fields = listed.stdout.decode().split()
    assert fields[1:] == [WALLET_A, "svc", f"flaky:{flaky.root}"]
    doc = json.loads(wallet_cli.ok("outbox", "list", "--json").stdout)
    assert [(e["wallet"], e["service"], e["path"]) for e in doc] == [
        (WALLET_A, "svc", str(files[0]))
    ]

    # still down: flush fails, keeps the entry, says so
    still = wallet_cli.run("outbox", "flush")
    assert still.returncode == EXIT_CODES["remote-unavailable"]
    assert "stay in the outbox" in still.stderr.decode().splitlines()[-1]
    assert len(_outbox_files(wallet_cli)) == 1

    flaky.up()
    out = json.loads(wallet_cli.ok("outbox", "flush", "--json").stdout)
    assert out == {"delivered": 1, "pending": 0}
    assert flaky.stored(WALLET_A, "svc")
    assert _outbox_files(wallet_cli) == []
    assert wallet_cli.ok("get", "svc").stdout == SECRET
    assert wallet_cli.ok("outbox", "list").stdout == b""


def test_flush_delivers_every_wallet_and_the_newest_write(wallet_cli: Cli, flaky: Flaky) -> None:
    flaky.down()
    for wallet, secret in ((WALLET_A, b"a-old"), (WALLET_A, b"a-new"), (WALLET_B, b"b-only")):
        proc = wallet_cli.run("--wallet", wallet, "put", "svc", input=secret)
        assert proc.returncode == EXIT_CODES["remote-unavailable"]
    assert len(_outbox_files(wallet_cli)) == 3
    flaky.up()
    # --wallet limits the flush to that wallet
    wallet_cli.ok("--wallet", WALLET_B, "outbox", "flush")
    assert flaky.stored(WALLET_B, "svc") and not flaky.stored(WALLET_A, "svc")
    assert len(_outbox_files(wallet_cli)) == 2
    wallet_cli.ok("outbox", "flush", unset=("PORTABLE_CREDS_WALLET",))
    assert _outbox_files(wallet_cli) == []
    assert wallet_cli.ok("get", "svc").stdout == b"a-new"
    assert wallet_cli.ok("--wallet", WALLET_B, "get", "svc").stdout == b"b-only"


def test_flush_leaves_entries_of_another_backend(wallet_cli: Cli, flaky: Flaky,
                                                 tmp_path: Path) -> None:
    flaky.down()
    assert wallet_cli.run("put", "svc", input=SECRET).returncode == EXIT_CODES[
        "remote-unavailable"]
    flaky.up()
    other = f"flaky://{tmp_path / 'elsewhere'}"
    proc = wallet_cli.run("--backend", other, "outbox", "flush")
    assert proc.returncode == EXIT_CODES["configuration"]
    assert f"flaky:{flaky.root}" in proc.stderr.decode().splitlines()[-1]
    assert len(_outbox_files(wallet_cli)) == 1
    wallet_cli.ok("outbox", "flush")
    assert wallet_cli.ok("get", "svc").stdout == SECRET


def test_empty_outbox(wallet_cli: Cli) -> None:
    proc = wallet_cli.ok("outbox", "list")
    assert proc.stdout == b""
    assert b"empty" in proc.stderr
    assert json.loads(wallet_cli.ok("outbox", "flush", "--json").stdout) == {
        "delivered": 0, "pending": 0}


@pytest.fixture
def legacy() -> Iterator[LegacyServer]:
    with LegacyServer({"tok": None}) as srv:
        yield srv


def test_legacy_http_500s_then_flush(wallet_cli: Cli, legacy: LegacyServer) -> None:
    wallet_cli.env.update(PORTABLE_CREDS_BACKEND=legacy.url, PORTABLE_CREDS_LEGACY_TOKEN="tok")
    legacy.fail_next(3, 500)  # the first try and the client's two retries
    proc = wallet_cli.run("put", "svc", input=SECRET)
    assert proc.returncode == EXIT_CODES["remote-unavailable"], proc.stderr
    assert "outbox" in error_line(proc)
    assert legacy.data == {}
    # The legacy API has no conditional writes: a flush could overwrite a newer value
    # written meanwhile, so it is refused unless forced (issue 12).
    refused = wallet_cli.run("outbox", "flush")
    assert refused.returncode == EXIT_CODES["precondition-failed"], refused.stderr
    assert "cannot write conditionally" in refused.stderr.decode()
    assert "--force" in refused.stderr.decode()
    assert legacy.data == {}
    forced = json.loads(wallet_cli.ok("outbox", "flush", "--force", "--json").stdout)
    assert forced["delivered"] == 1
    stored = legacy.data[(WALLET_A, "svc")]
    assert SECRET not in stored  # the legacy server holds only the sealed blob
    assert wallet_cli.ok("get", "svc").stdout == SECRET


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_s3_endpoint_down_then_up(wallet_cli: Cli, tmp_path: Path) -> None:
    """The real AWS driver and boto3: the endpoint refuses connections, later moto answers."""
    pytest.importorskip("portable_creds_aws")
    moto_server = pytest.importorskip("moto.server")
    import boto3

    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    token = tmp_path / "oidc.jwt"
    token.write_text("header.payload.signature")
    url = (f"s3://cli-outbox?endpoint={endpoint}&region=us-east-1&addressing=path"
           f"&role_arn=arn:aws:iam::123456789012:role/agentkeys-data-role&token_file={token}"
           "&max_attempts=1&connect_timeout=2")
    wallet_cli.env["PORTABLE_CREDS_BACKEND"] = url  # no AWS_* keys: federation only

    proc = wallet_cli.run("put", "svc", input=SECRET)
    assert proc.returncode == EXIT_CODES["remote-unavailable"], proc.stderr
    assert "outbox flush" in error_line(proc)
    assert SECRET not in proc.stderr
    assert len(_outbox_files(wallet_cli)) == 1

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                     aws_access_key_id="admin", aws_secret_access_key="admin").create_bucket(
            Bucket="cli-outbox")
        out = json.loads(wallet_cli.ok("outbox", "flush", "--json").stdout)
        assert out == {"delivered": 1, "pending": 0}
        assert wallet_cli.ok("get", "svc").stdout == SECRET
        body = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                            aws_access_key_id="admin", aws_secret_access_key="admin").get_object(
            Bucket="cli-outbox", Key=names.object_key(WALLET_A, "svc"))["Body"].read()
        assert body.startswith(b"PCE") and SECRET not in body
    finally:
        server.stop()


# -- issue 12: a flush never rolls back a newer value nor resurrects a deleted one ----------


def _second_machine(wallet_cli: Cli, tmp_path: Path) -> Cli:
    """Another machine: its own home (own outbox), the same root secret and backend."""
    home = tmp_path / "home-b"
    home.mkdir()
    other = Cli(home)
    other.env = dict(wallet_cli.env, HOME=str(home))
    key = other.init_root_secret()
    key.write_bytes((wallet_cli.data_home / "root.key").read_bytes())
    return other


def test_flush_does_not_roll_back_a_newer_value(
    wallet_cli: Cli, flaky: Flaky, tmp_path: Path
) -> None:
    wallet_cli.init_root_secret()
    machine_b = _second_machine(wallet_cli, tmp_path)
    flaky.down()
    assert wallet_cli.run("put", "svc", input=b"sk-OLD").returncode == EXIT_CODES[
        "remote-unavailable"]
    flaky.up()
    machine_b.ok("put", "svc", input=b"sk-NEW")
    proc = wallet_cli.run("outbox", "flush")
    assert proc.returncode == EXIT_CODES["precondition-failed"], proc.stderr
    text = proc.stderr.decode()
    assert "changed since" in text and "--force" in text and "outbox drop" in text
    assert "when the backend is reachable" not in text
    assert machine_b.ok("get", "svc").stdout == b"sk-NEW"
    assert len(_outbox_files(wallet_cli)) == 1  # kept, for the user to decide
    # The user decides: drop the stale write; nothing is left and sk-NEW stays.
    out = json.loads(wallet_cli.ok("outbox", "drop", "svc", "--json").stdout)
    assert out == {"dropped": 1, "services": ["svc"], "wallet": WALLET_A}
    assert _outbox_files(wallet_cli) == []
    assert machine_b.ok("get", "svc").stdout == b"sk-NEW"


def test_force_flush_overwrites(wallet_cli: Cli, flaky: Flaky, tmp_path: Path) -> None:
    wallet_cli.init_root_secret()
    machine_b = _second_machine(wallet_cli, tmp_path)
    flaky.down()
    wallet_cli.run("put", "svc", input=b"sk-MINE")
    flaky.up()
    machine_b.ok("put", "svc", input=b"sk-THEIRS")
    assert wallet_cli.run("outbox", "flush").returncode == EXIT_CODES["precondition-failed"]
    assert json.loads(wallet_cli.ok("outbox", "flush", "--force", "--json").stdout) == {
        "delivered": 1, "pending": 0}
    assert machine_b.ok("get", "svc").stdout == b"sk-MINE"


def test_flush_of_own_rotation_is_delivered(wallet_cli: Cli, flaky: Flaky) -> None:
    """Nobody else wrote: the pending rotation of a value this machine stored is delivered."""
    wallet_cli.ok("put", "svc", input=b"v1")
    flaky.down()
    wallet_cli.run("put", "svc", input=b"v2")
    flaky.up()
    assert json.loads(wallet_cli.ok("outbox", "flush", "--json").stdout) == {
        "delivered": 1, "pending": 0}
    assert wallet_cli.ok("get", "svc").stdout == b"v2"


def test_flush_does_not_resurrect_after_delete(wallet_cli: Cli, flaky: Flaky) -> None:
    flaky.down()
    assert wallet_cli.run("put", "svc", input=SECRET).returncode == EXIT_CODES[
        "remote-unavailable"]
    flaky.up()
    wallet_cli.ok("delete", "svc")  # only the pending write existed: it is discarded
    assert _outbox_files(wallet_cli) == []
    assert json.loads(wallet_cli.ok("outbox", "flush", "--json").stdout) == {
        "delivered": 0, "pending": 0}
    assert wallet_cli.run("get", "svc").returncode == EXIT_CODES["not-found"]


def test_flush_does_not_resurrect_after_teardown(wallet_cli: Cli, flaky: Flaky) -> None:
    wallet_cli.ok("put", "stored", input=b"v1")
    flaky.down()
    for service in ("stored", "pending-only"):
        assert wallet_cli.run("put", service, input=SECRET).returncode == EXIT_CODES[
            "remote-unavailable"]
    flaky.up()
    wallet_cli.ok("teardown", "--yes")
    assert _outbox_files(wallet_cli) == []
    wallet_cli.ok("outbox", "flush")
    assert wallet_cli.ok("list").stdout == b""


def test_remote_delete_elsewhere_is_not_undone(
    wallet_cli: Cli, flaky: Flaky, tmp_path: Path
) -> None:
    """Machine B deletes a credential this machine stored; this machine's pending rotation
    of it must not bring it back."""
    wallet_cli.init_root_secret()
    machine_b = _second_machine(wallet_cli, tmp_path)
    wallet_cli.ok("put", "svc", input=b"v1")
    flaky.down()
    wallet_cli.run("put", "svc", input=b"v2")
    flaky.up()
    machine_b.ok("delete", "svc")
    proc = wallet_cli.run("outbox", "flush")
    assert proc.returncode == EXIT_CODES["precondition-failed"], proc.stderr
    assert "deleted" in proc.stderr.decode()
    assert machine_b.run("get", "svc").returncode == EXIT_CODES["not-found"]


def test_access_denied_put_says_what_is_wrong(wallet_cli: Cli, flaky: Flaky,
                                               tmp_path: Path) -> None:
    deny = tmp_path / "deny"
    deny.touch()
    wallet_cli.env["PORTABLE_CREDS_BACKEND"] = f"{flaky.url}&deny={deny}"
    proc = wallet_cli.run("put", "svc", input=SECRET)
    assert proc.returncode == EXIT_CODES["access-denied"], proc.stderr
    line = error_line(proc)
    assert "access denied" in line
    assert "once the backend is reachable" not in line
    assert "retrying will not help" in line and "outbox drop svc" in line
    assert SECRET not in proc.stderr
    files = _outbox_files(wallet_cli)
    assert len(files) == 1 and str(files[0]) in line  # nothing lost
    deny.unlink()
    wallet_cli.ok("outbox", "flush")
    assert wallet_cli.ok("get", "svc").stdout == SECRET
