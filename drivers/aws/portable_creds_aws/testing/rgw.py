"""A throw-away single-host Ceph RADOS Gateway with S3, STS and IAM on loopback.

RGW is the project's isolation oracle: it really validates OIDC tokens, turns the token's tags
claim into session tags and evaluates role policies, which moto does not (see docs/ceph.md).
This launcher boots one monitor, one memstore OSD (data lives in RAM and dies with the OSD) and
radosgw, every listener on 127.0.0.1 on ports picked free, all state in one private temporary
directory. The daemons run in the foreground as our children, so stopping them is by handle,
never by name, and (on Linux) the kernel kills them if the process that started them dies.

Boots in about 3 s because the monitor proposes every 50 ms instead of every second (RGW creates
its pools one osdmap epoch at a time).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

import attrs

from portable_creds.errors import ConfigurationError, RemoteUnavailable

REQUIRED_BINARIES = (
    "ceph-mon",
    "ceph-osd",
    "radosgw",
    "radosgw-admin",
    "ceph",
    "monmaptool",
    "ceph-authtool",
)
INSTALL_HINT = (
    "apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw ceph-common "
    "(Debian 12)"
)
ADMIN_CAPS = "roles=*;oidc-provider=*;user-policy=*;users=*;buckets=*;metadata=*;usage=*"


class CephNotInstalled(ConfigurationError):
    """The Ceph daemons needed for a local RGW are not on PATH."""


def missing_binaries() -> list[str]:
    """Names of the Ceph programs this launcher needs that are not on PATH."""
    return [name for name in REQUIRED_BINARIES if shutil.which(name) is None]


@attrs.frozen(repr=False)
class RgwEndpoint:
    """Where the gateway listens and the administrator's static keys (an RGW user, not root)."""

    url: str
    admin_access_key: str
    admin_secret_key: str
    admin_user: str
    state_dir: Path

    @property
    def host_port(self) -> str:
        return self.url.split("://", 1)[1]

    def __repr__(self) -> str:
        return f"RgwEndpoint(url={self.url!r}, admin_user={self.admin_user!r})"


def _free_ports(count: int) -> list[int]:
    """Ports the kernel considers free right now (held open together so they are distinct)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGKILL the child when its parent thread exits."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1

    def _set() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)

    return _set


def _random_key(length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


class RgwCluster:
    """Start with ``start()`` (or ``with RgwCluster() as endpoint:``), stop with ``stop()``."""

    def __init__(
        self,
        *,
        base_dir: Path | None = None,
        sts_min_session_duration: int = 5,
        debug_rgw: int = 1,
        memstore_bytes: int = 512 * 1024 * 1024,
        keep_state: bool = False,
        boot_timeout: float = 60.0,
    ) -> None:
        self._base_parent = base_dir
        self._sts_min = sts_min_session_duration
        self._debug_rgw = debug_rgw
        self._memstore_bytes = memstore_bytes
        self._keep_state = keep_state
        self._boot_timeout = boot_timeout
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._base: Path | None = None
        self.endpoint: RgwEndpoint | None = None

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> RgwEndpoint:
        missing = missing_binaries()
        if missing:
            raise CephNotInstalled(
                f"cannot start a local Ceph RGW: {', '.join(missing)} not found; install with "
                + INSTALL_HINT
            )
        if self.endpoint is not None:
            return self.endpoint
        self._base = Path(tempfile.mkdtemp(prefix="pc-rgw-", dir=self._base_parent))
        os.chmod(self._base, 0o700)
        try:
            self.endpoint = self._boot(self._base)
        except BaseException:
            self.stop()
            raise
        return self.endpoint

    def stop(self) -> None:
        """SIGTERM our daemons by handle, SIGKILL after a second (RGW exits slowly; data is
        throw-away anyway), then remove the state directory."""
        procs = list(self._procs.values())
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        deadline = time.monotonic() + 1.0
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=10)
        self._procs.clear()
        self.endpoint = None
        if self._base is not None and not self._keep_state:
            shutil.rmtree(self._base, ignore_errors=True)
        self._base = None

    def __enter__(self) -> RgwEndpoint:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------- helpers
    def radosgw_admin(self, *args: str) -> str:
        """Run ``radosgw-admin`` against this cluster (e.g. ``lc process``)."""
        if self._base is None:
            raise ConfigurationError("the RGW cluster is not running: call start() first")
        return self._run(["radosgw-admin", "-n", "client.admin", *args])

    @property
    def pids(self) -> dict[str, int]:
        """Process ids of the running daemons (mon.a, osd.0, client.rgw)."""
        return {name: proc.pid for name, proc in self._procs.items() if proc.poll() is None}

    @property
    def log_dir(self) -> Path | None:
        return None if self._base is None else self._base / "log"

    def _env(self) -> dict[str, str]:
        assert self._base is not None
        env = dict(os.environ)
        env["CEPH_CONF"] = str(self._base / "ceph.conf")
        return env

    def _run(self, argv: Sequence[str], *, timeout: float = 30.0) -> str:
        result = subprocess.run(
            list(argv),
            env=self._env(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RemoteUnavailable(
                f"{argv[0]} {' '.join(argv[1:3])} failed (exit {result.returncode}): "
                f"{result.stderr.decode(errors='replace')[-500:]}; logs in {self.log_dir}"
            )
        return result.stdout.decode()

    def _spawn(self, name: str, argv: Sequence[str]) -> None:
        assert self._base is not None
        with open(self._base / "log" / f"{name}.stderr", "ab") as err:
            self._procs[name] = subprocess.Popen(
                list(argv),
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                preexec_fn=_die_with_parent(),
            )

    def _wait(self, what: str, ready: Callable[[], bool], deadline: float) -> None:
        while time.monotonic() < deadline:
            for name, proc in self._procs.items():
                if proc.poll() is not None:
                    raise RemoteUnavailable(
                        f"{name} exited with {proc.returncode} while waiting for {what}; "
                        f"logs in {self.log_dir}"
                    )
            if ready():
                return
            time.sleep(0.1)
        raise RemoteUnavailable(f"timed out waiting for {what}; logs in {self.log_dir}")

    def _ceph_ok(self, *args: str) -> str | None:
        try:
            return self._run(["ceph", "--connect-timeout", "3", *args], timeout=10)
        except (RemoteUnavailable, subprocess.TimeoutExpired):
            return None

    # ----------------------------------------------------------------- boot
    def _boot(self, base: Path) -> RgwEndpoint:
        deadline = time.monotonic() + self._boot_timeout
        for sub in ("mon", "osd/osd.0", "run", "log", "rgw", "crash"):
            (base / sub).mkdir(parents=True, mode=0o700, exist_ok=True)
        mon_v2, mon_v1, rgw_port = _free_ports(3)
        fsid = str(uuid.uuid4())
        mon_addr = f"[v2:127.0.0.1:{mon_v2},v1:127.0.0.1:{mon_v1}]"
        admin_user = "admin"
        admin_ak = "PC" + _random_key(18, string.ascii_uppercase + string.digits)
        admin_sk = _random_key(40)
        (base / "ceph.conf").write_text(
            _ceph_conf(
                base=base,
                fsid=fsid,
                mon_addr=mon_addr,
                rgw_port=rgw_port,
                sts_key=_random_key(16),
                sts_min=self._sts_min,
                debug_rgw=self._debug_rgw,
                memstore_bytes=self._memstore_bytes,
            )
        )
        keyring = str(base / "keyring")
        self._run(
            [
                "ceph-authtool",
                "--create-keyring",
                keyring,
                "--gen-key",
                "-n",
                "mon.",
                "--cap",
                "mon",
                "allow *",
            ]
        )
        self._run(
            [
                "ceph-authtool",
                keyring,
                "--gen-key",
                "-n",
                "client.admin",
                "--cap",
                "mon",
                "allow *",
                "--cap",
                "osd",
                "allow *",
                "--cap",
                "mds",
                "allow *",
                "--cap",
                "mgr",
                "allow *",
            ]
        )
        monmap = str(base / "monmap")
        self._run(["monmaptool", "--create", "--fsid", fsid, "--addv", "a", mon_addr, monmap])
        self._run(["ceph-mon", "--mkfs", "-i", "a", "--monmap", monmap, "--keyring", keyring])
        self._spawn("mon.a", ["ceph-mon", "-f", "-i", "a"])
        self._wait("the monitor", lambda: self._ceph_ok("-s") is not None, deadline)

        osd_uuid = str(uuid.uuid4())
        osd_key = self._run(["ceph-authtool", "--gen-print-key"]).strip()
        new_json = base / "osd" / "new.json"
        new_json.write_text(json.dumps({"cephx_secret": osd_key}))
        osd_id = self._run(["ceph", "osd", "new", osd_uuid, "-i", str(new_json)]).strip()
        if osd_id != "0":
            raise RemoteUnavailable(f"unexpected OSD id {osd_id!r}; logs in {self.log_dir}")
        self._run(
            [
                "ceph-authtool",
                "--create-keyring",
                str(base / "osd/osd.0/keyring"),
                "--name",
                "osd.0",
                "--add-key",
                osd_key,
            ]
        )
        self._run(["ceph-osd", "-i", "0", "--mkfs", "--osd-uuid", osd_uuid], timeout=60)
        self._spawn("osd.0", ["ceph-osd", "-f", "-i", "0"])

        def osd_up() -> bool:
            out = self._ceph_ok("osd", "stat", "-f", "json")
            return out is not None and json.loads(out).get("num_up_osds") == 1

        self._wait("the OSD", osd_up, deadline)

        self._run(
            [
                "ceph",
                "auth",
                "get-or-create",
                "client.rgw",
                "mon",
                "allow rw",
                "osd",
                "allow rwx",
                "-o",
                str(base / "rgw/keyring"),
            ]
        )
        self._spawn("client.rgw", ["radosgw", "-f", "-n", "client.rgw"])
        url = f"http://127.0.0.1:{rgw_port}"
        self._wait("radosgw", lambda: _http_answers(url), deadline)

        self.radosgw_admin(
            "user",
            "create",
            f"--uid={admin_user}",
            "--display-name=portable-creds test admin",
            f"--access-key={admin_ak}",
            f"--secret={admin_sk}",
        )
        self.radosgw_admin("caps", "add", f"--uid={admin_user}", f"--caps={ADMIN_CAPS}")
        return RgwEndpoint(
            url=url,
            admin_access_key=admin_ak,
            admin_secret_key=admin_sk,
            admin_user=admin_user,
            state_dir=base,
        )


def _http_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/", timeout=2) as resp:  # noqa: S310 - loopback
            return int(resp.status) == 200
    except urllib.error.HTTPError as exc:
        return exc.code == 403
    except OSError:
        return False


def _ceph_conf(
    *,
    base: Path,
    fsid: str,
    mon_addr: str,
    rgw_port: int,
    sts_key: str,
    sts_min: int,
    debug_rgw: int,
    memstore_bytes: int,
) -> str:
    return f"""[global]
fsid = {fsid}
mon_host = {mon_addr}
public_network = 127.0.0.0/8
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_ipv6 = false
ms_bind_ipv4 = true
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
keyring = {base}/keyring
run_dir = {base}/run
admin_socket = {base}/run/$name.asok
pid_file = {base}/run/$name.pid
log_file = {base}/log/$name.log
crash_dir = {base}/crash
exporter_sock_dir = {base}/run
log_to_stderr = false
err_to_stderr = true
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
paxos_propose_interval = 0.05
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
mon_max_pg_per_osd = 1000
mon_pg_warn_min_per_osd = 0
auth_allow_insecure_global_id_reclaim = false
mon_warn_on_insecure_global_id_reclaim_allowed = false

[mon]
mon_data = {base}/mon/$name
mon_cluster_log_file = {base}/log/cluster.log

[osd]
osd_data = {base}/osd/$name
keyring = {base}/osd/$name/keyring
osd_objectstore = memstore
memstore_device_bytes = {memstore_bytes}
osd_memory_target = 939524096
osd_max_object_name_len = 460
osd_max_object_namespace_len = 64
osd_op_num_shards = 2
osd_op_num_threads_per_shard = 1

[client.rgw]
# tcp_nodelay=1: without it small GETs take ~45 ms (Nagle + delayed ACK), with it ~3 ms
rgw_frontends = beast endpoint=127.0.0.1:{rgw_port} tcp_nodelay=1
rgw_data = {base}/rgw
keyring = {base}/rgw/keyring
rgw_enable_apis = s3, s3website, admin, sts, iam
rgw_s3_auth_use_sts = true
rgw_sts_key = {sts_key}
rgw_thread_pool_size = 64
rgw_dns_name = 127.0.0.1
# a lifecycle "day" lasts 10 s (then `radosgw-admin lc process`)
rgw_lc_debug_interval = 10
# 5-second sessions let tests watch temporary credentials expire (Ceph's default is 900)
rgw_sts_min_session_duration = {sts_min}
rgw_verify_ssl = false
debug_rgw = {debug_rgw}
debug_ms = 0
"""


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m portable_creds_aws.testing.rgw``: start, print the endpoint, stop on Ctrl-C."""
    del argv
    cluster = RgwCluster()
    endpoint = cluster.start()
    env_file = endpoint.state_dir / "env.sh"
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(
            f"export RGW_ENDPOINT={endpoint.url}\n"
            f"export AWS_ACCESS_KEY_ID={endpoint.admin_access_key}\n"
            f"export AWS_SECRET_ACCESS_KEY={endpoint.admin_secret_key}\n"
            f"export CEPH_CONF={endpoint.state_dir / 'ceph.conf'}\n"
        )
    print(f"RGW_ENDPOINT={endpoint.url}")
    print(f"admin credentials: source {env_file} (mode 0600); Ctrl-C stops and wipes", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
