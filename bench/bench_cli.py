"""CLI cold start: wall time of fresh processes, next to the floors they cannot beat.

Every run is a new interpreter (what a shell script calling ``portable-creds get`` pays). The
references: ``python -c pass`` (interpreter start), importing cryptography's AEAD (the one heavy
import the local path needs), importing boto3 (what the local path must never pay). Also checks,
with ``-X importtime``, that ``get`` on the local backend imports no cloud SDK.

Target (issue 7): ``portable-creds get`` on the local backend <= 0.3 s wall.

Cold CLI on cloud backends (issue 13), fresh processes in the same run, interleaved:
``portable-creds get`` on ``s3://`` (Ceph RGW, web-identity federation) next to a bare
``python -c "import boto3; boto3.client('s3', ...).get_object(...)"`` doing the same GET with
static keys, and on ``cos://`` (the Tencent double, role-per-tenant) next to a bare
``qcloud_cos`` process. The first ``get`` exchanges the token and caches the session
(``<home>/cache/credentials``); every later process must make 0 STS calls (counted by a
loopback proxy in front of the STS endpoint) and take <= 1.1x the bare process's wall time.
On ``cos://`` the driver signs the GET itself (``portable_creds_tencent.signed_get``, held to
the SDK's request by tests/tencent/test_signed_get.py), so the measured process imports no COS
SDK while the bare process is the SDK doing the same GET - the comparison the issue names.

Byte-code: the project's own packages are compiled first (``compileall``), as ``pip install``
does for any wheel and for the SDKs the bare processes import. Without it, under
``PYTHONDONTWRITEBYTECODE=1`` (or a read-only checkout) every ``portable-creds`` process of an
editable install would recompile the project's modules from source, a cost no installed
copy pays. Each cloud case also runs once untimed before the interleaved samples, and every
cloud row notes the children's CPU time (user+sys), which other load on the machine skews
less than wall time. Where valgrind is installed, one run of each cached-session case and its
bare process is also counted in user-space instructions (callgrind's ``Ir``): a ratio that
other load on the machine does not move at all (informational, no target;
``BENCH_CLI_INSTRUCTIONS=0`` skips it).
"""

from __future__ import annotations

import compileall
import importlib.util
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = "cli"
WALLET = "0x" + "c1" * 20
TARGET_GET = 0.3
TARGET_CLOUD_RATIO = 1.1
CLOUD_MODULES = ("boto3", "botocore", "qcloud_cos", "tencentcloud")
SECRET = b"sk-bench-cloud-0123456789"

BARE_BOTO3 = """
import os, sys, boto3
c = boto3.client("s3", endpoint_url=os.environ["BENCH_ENDPOINT"], region_name="us-east-1")
o = c.get_object(Bucket=os.environ["BENCH_BUCKET"], Key=os.environ["BENCH_KEY"])
sys.stdout.buffer.write(o["Body"].read())
"""

BARE_COS = """
import os, sys
from qcloud_cos import CosConfig, CosS3Client
conf = CosConfig(Region=os.environ["COS_REGION"], SecretId=os.environ["BENCH_ID"],
                 SecretKey=os.environ["BENCH_KEY_SECRET"], Token=None,
                 Scheme="http", IP="127.0.0.1", Port=int(os.environ["BENCH_PORT"]))
o = CosS3Client(conf).get_object(Bucket=os.environ["BENCH_BUCKET"], Key=os.environ["BENCH_KEY"])
sys.stdout.buffer.write(o["Body"].get_raw_stream().read())
"""


def _exe() -> str:
    found = Path(sys.executable).with_name("portable-creds")
    if not found.exists():
        raise FileNotFoundError(f"{found} not found: install the project (make venv)")
    return str(found)


#: The project's packages whose byte-code ``_compile_project`` makes sure of.
PROJECT_PACKAGES = ("portable_creds", "portable_creds_aws", "portable_creds_tencent")


def _compile_project() -> None:
    """Write the byte-code of the project's packages, as installing a wheel would."""
    for name in PROJECT_PACKAGES:
        spec = importlib.util.find_spec(name)
        for where in (spec.submodule_search_locations or []) if spec else []:
            compileall.compile_dir(where, quiet=1)


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(argv: list[str], env: dict[str, str], runs: int, stdin: bytes = b"") -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, input=stdin, capture_output=True, env=env, check=False)
        samples.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[-2:]} exited {proc.returncode}: {proc.stderr[-300:]!r}")
    return samples


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _imports_of(argv: list[str], env: dict[str, str]) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *argv], capture_output=True, env=env, check=True
    )
    mods = set()
    for line in proc.stderr.decode(errors="replace").splitlines():
        if line.startswith("import time:") and "|" in line:
            mods.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return mods


def _clean_env(**extra: str) -> dict[str, str]:
    scrub = ("PORTABLE_CREDS_", "AGENTKEYS_", "AWS_", "TENCENTCLOUD_", "COS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(scrub)}
    env.update(extra)
    return env


def _instructions(cases: dict[str, tuple[list[str], dict[str, str]]]) -> dict[str, int] | None:
    """User-space instructions (callgrind's ``Ir``) of one run of each case, ``None`` without
    valgrind. Unlike wall or CPU time, the count is the same on a busy machine."""
    if os.environ.get("BENCH_CLI_INSTRUCTIONS", "1") == "0" or not shutil.which("valgrind"):
        return None
    counts: dict[str, int] = {}
    for name, (argv, env) in cases.items():
        full = argv if argv[0] == sys.executable else [sys.executable, *argv]
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *full],
            capture_output=True, env=env, check=False,
        )
        found = re.search(rb"Collected : (\d+)", proc.stderr)
        if proc.returncode != 0 or found is None:
            return None
        counts[name] = int(found.group(1))
    return counts


def _instruction_rows(where: str, bare_name: str, counts: dict[str, int] | None
                      ) -> list[dict[str, Any]]:
    if not counts:
        return []
    base = counts[bare_name]
    return [
        {
            "bench": BENCH,
            "case": f"instructions: {name} / {bare_name} ({where})",
            "metric": "x",
            "value": count / base,
            "n": 1,
            "note": f"{count / 1e6:.0f} M vs {base / 1e6:.0f} M user-space instructions "
            "(valgrind callgrind Ir), one run each; not moved by machine load",
            "plot": False,
        }
        for name, count in counts.items()
        if name != bare_name
    ]


def _cloud_rows(
    where: str, bare_name: str, timed: Timed, sts_later: int, runs: int,
    counts: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    samples, cpu = timed
    base = statistics.median(samples[bare_name])
    base_cpu = statistics.median(cpu[bare_name])
    for name, values in samples.items():
        med = statistics.median(values)
        med_cpu = statistics.median(cpu[name])
        note = f"wall time of a fresh process, interleaved; child CPU {med_cpu:.3f} s"
        if name != bare_name:
            note += f" ({med_cpu / base_cpu:.2f}x the bare process's)"
        row: dict[str, Any] = {
            "bench": BENCH,
            "case": f"{name} ({where})",
            "metric": "s",
            "value": med,
            "p50": med,
            "p99": _pct(values, 0.99),
            "n": len(values),
            "note": note,
        }
        if name != bare_name:
            row["baseline"] = f"{bare_name} ({where})"
            row["ratio"] = med / base
            if "cached session" in name:
                row["target"] = f"<= {TARGET_CLOUD_RATIO}x {bare_name}"
                row["ok"] = med / base <= TARGET_CLOUD_RATIO
        rows.append(row)
    rows.append(
        {
            "bench": BENCH,
            "case": f"STS calls by later `get` processes ({where})",
            "metric": "calls",
            "value": float(sts_later),
            "n": runs,
            "target": "0 (the first process's session is reused)",
            "ok": sts_later == 0,
            "note": "counted by a loopback proxy in front of the STS endpoint",
            "plot": False,
        }
    )
    rows.extend(_instruction_rows(where, bare_name, counts))
    return rows


def _sts_posts(proxy: Any) -> int:
    return sum(1 for r in proxy.records if r.request.method == "POST")


def rgw_rows(exe: str, runs: int) -> list[dict[str, Any]]:
    from portable_creds_aws.testing.deployment import admin_provisioner, rgw_per_tenant_deployment
    from portable_creds_aws.testing.oidc import OidcIssuer
    from portable_creds_aws.testing.rgw import RgwCluster

    from portable_creds.names import object_key
    from portable_creds.testing.faultproxy import FaultProxy

    wallet = "0x" + "c2" * 20
    with (
        RgwCluster() as rgw,
        OidcIssuer() as issuer,
        tempfile.TemporaryDirectory() as home,
    ):
        d = rgw_per_tenant_deployment("pc-bench-cli", rgw, issuer)
        prov = admin_provisioner(rgw, d, "us-east-1")
        prov.apply()
        prov.onboard(wallet)
        host, port = rgw.url.removeprefix("http://").split(":")
        token = Path(home, "token.jwt")
        token.write_text(issuer.token(wallet, ttl=3600))
        root = Path(home, "root.key")
        root.write_bytes(os.urandom(32))
        root.chmod(0o600)
        with FaultProxy((host, int(port))) as sts:
            url = (
                f"s3://{d.bucket}?region=us-east-1&endpoint={rgw.url}&sts_endpoint={sts.url}"
                f"&role_arn={d.role_arn}&token_file={token}"
            )
            pc_env = _clean_env(
                HOME=home, PORTABLE_CREDS_BACKEND=url, PORTABLE_CREDS_WALLET=wallet,
                PORTABLE_CREDS_SECRET_FILE=str(root), PORTABLE_CREDS_HOME=home,
            )
            subprocess.run([exe, "put", "bench"], input=SECRET, env=pc_env, check=True,
                           capture_output=True)
            # The stored object is sealed: the bare process reads those same bytes.
            admin_env = _clean_env(
                HOME=home, AWS_ACCESS_KEY_ID=rgw.admin_access_key,
                AWS_SECRET_ACCESS_KEY=rgw.admin_secret_key, BENCH_ENDPOINT=rgw.url,
                BENCH_BUCKET=d.bucket, BENCH_KEY=object_key(wallet, "bench"),
            )
            blob = subprocess.run([sys.executable, "-c", BARE_BOTO3], env=admin_env,
                                  check=True, capture_output=True).stdout
            before = _sts_posts(sts)
            cases = {
                "bare boto3 get_object process": ([sys.executable, "-c", BARE_BOTO3], admin_env),
                "portable-creds get, cached session": ([exe, "get", "bench"], pc_env),
            }
            timed = _timed_cases(cases, runs, {"bare boto3 get_object process": blob,
                                               "portable-creds get, cached session": SECRET})
            later = _sts_posts(sts) - before
            nocache = _timed_cases(
                {"portable-creds get --no-credential-cache": (
                    [exe, "get", "bench", "--no-credential-cache"], pc_env)},
                max(3, runs // 3),
                {"portable-creds get --no-credential-cache": SECRET},
            )
            timed[0].update(nocache[0])
            timed[1].update(nocache[1])
            counts = _instructions(cases)
    return _cloud_rows("RGW", "bare boto3 get_object process", timed, later, runs, counts)


def cos_rows(exe: str, runs: int) -> list[dict[str, Any]]:
    import bench_cos

    from portable_creds.names import object_key
    from portable_creds.testing.faultproxy import FaultProxy

    wallet = "0x" + "c3" * 20
    with bench_cos.double_process() as info, tempfile.TemporaryDirectory() as home:
        env = bench_cos._setup(info, wallet)
        token = Path(home, "token.jwt")
        token.write_text(env["idp"].mint(wallet, bench_cos.AUDIENCE, lifetime=3600))
        root = Path(home, "root.key")
        root.write_bytes(os.urandom(32))
        root.chmod(0o600)
        with FaultProxy(("127.0.0.1", int(info["port"]))) as sts:
            url = (
                f"{env['url']}&mode=role-per-tenant&sts_endpoint=127.0.0.1:{sts.port}"
                f"&token_file={token}"
            )
            pc_env = _clean_env(
                HOME=home, PORTABLE_CREDS_BACKEND=url, PORTABLE_CREDS_WALLET=wallet,
                PORTABLE_CREDS_SECRET_FILE=str(root), PORTABLE_CREDS_HOME=home,
            )
            subprocess.run([exe, "put", "bench"], input=SECRET, env=pc_env, check=True,
                           capture_output=True)
            bare_env = _clean_env(
                HOME=home, COS_REGION=info["region"], BENCH_ID=env["root"].secret_id,
                BENCH_KEY_SECRET=env["root"].secret_key, BENCH_PORT=str(info["port"]),
                BENCH_BUCKET=env["bucket"], BENCH_KEY=object_key(wallet, "bench"),
            )
            blob = subprocess.run([sys.executable, "-c", BARE_COS], env=bare_env, check=True,
                                  capture_output=True).stdout
            before = _sts_posts(sts)
            bare = "bare qcloud_cos get_object process"
            cached = "portable-creds get, cached session"
            cases = {bare: ([sys.executable, "-c", BARE_COS], bare_env),
                     cached: ([exe, "get", "bench"], pc_env)}
            timed = _timed_cases(cases, runs, {bare: blob, cached: SECRET})
            later = _sts_posts(sts) - before
            counts = _instructions(cases)
    return _cloud_rows("Tencent double, role-per-tenant", bare, timed, later, runs, counts)


#: Per case: wall seconds, and the child's CPU seconds (user+sys), of each sample.
Timed = tuple[dict[str, list[float]], dict[str, list[float]]]


def _timed_cases(
    cases: dict[str, tuple[list[str], dict[str, str]]], runs: int, expect: dict[str, bytes]
) -> Timed:
    """Wall and CPU seconds of fresh processes, the cases alternating so load hits them alike,
    after one untimed round (page cache); each must exit 0 and print exactly ``expect[name]``."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    for i in range(-1, runs):
        for name in order[i % len(order) :] + order[: i % len(order)]:
            argv, env = cases[name]
            cpu_start = _child_cpu()
            start = time.perf_counter()
            proc = subprocess.run(argv, capture_output=True, env=env, check=False)
            wall = time.perf_counter() - start
            if proc.returncode != 0 or proc.stdout != expect[name]:
                raise RuntimeError(f"{name} failed ({proc.returncode}): {proc.stderr[-300:]!r}")
            if i >= 0:
                samples[name].append(wall)
                cpu[name].append(_child_cpu() - cpu_start)
    return samples, cpu


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    runs = int(os.environ.get("BENCH_CLI_RUNS", "5" if "--quick" in (argv or []) else "15"))
    exe = _exe()
    _compile_project()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as home:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PORTABLE_CREDS_", "AGENTKEYS_"))
        }
        env.update(PORTABLE_CREDS_HOME=home, PORTABLE_CREDS_WALLET=WALLET)
        subprocess.run(
            [exe, "put", "bench"],
            input=b"sk-bench-0123456789",
            env=env,
            check=True,
            capture_output=True,
        )
        got = subprocess.run([exe, "get", "bench"], env=env, check=True, capture_output=True)
        if got.stdout != b"sk-bench-0123456789":
            raise RuntimeError("portable-creds get did not return the stored secret")
        cases = [
            ("python -c pass", [sys.executable, "-c", "pass"], None),
            (
                "import cryptography AEAD",
                [
                    sys.executable,
                    "-c",
                    "from cryptography.hazmat.primitives.ciphers.aead import AESGCM",
                ],
                None,
            ),
            ("import boto3", [sys.executable, "-c", "import boto3"], None),
            ("portable-creds --help", [exe, "--help"], None),
            ("portable-creds get (local)", [exe, "get", "bench"], TARGET_GET),
        ]
        # Warm the page cache once so the first case does not pay for it.
        _time([sys.executable, "-c", "import boto3"], env, 1)
        results = {}
        for name, cmd, target in cases:
            samples = _time(cmd, env, runs)
            med = statistics.median(samples)
            results[name] = med
            row: dict[str, Any] = {
                "bench": BENCH,
                "case": name,
                "metric": "s",
                "value": med,
                "p50": med,
                "p99": _pct(samples, 0.99),
                "n": runs,
                "note": "wall time of a fresh process",
            }
            if name.startswith("portable-creds"):
                row["baseline"] = "python -c pass"
            if target is not None:
                row["target"] = f"<= {target} s wall"
                row["ok"] = med <= target
            rows.append(row)
        loaded = _imports_of([exe, "get", "bench"], env)
        leaked = sorted(m for m in CLOUD_MODULES if m in loaded)
        rows.append(
            {
                "bench": BENCH,
                "case": "cloud SDK modules imported by `get` (local)",
                "metric": "modules",
                "value": float(len(leaked)),
                "target": "0 (the local path must not import boto3)",
                "ok": not leaked,
                "note": ", ".join(leaked) or "none (checked with -X importtime)",
                "plot": False,
            }
        )
    cloud_runs = int(os.environ.get("BENCH_CLI_CLOUD_RUNS", "5" if "--quick" in (argv or [])
                                    else "15"))
    for where, fn in (("RGW", rgw_rows), ("Tencent double", cos_rows)):
        try:
            rows.extend(fn(exe, cloud_runs))
        except Exception as exc:  # a missing backend is a row, not a crash
            rows.append(
                {
                    "bench": BENCH,
                    "case": f"cold CLI get ({where}): not measured",
                    "metric": "-",
                    "value": float("nan"),
                    "note": f"{type(exc).__name__}: {exc}"[:300],
                    "plot": False,
                }
            )
    for row in rows:
        print(f"{row['case']:<60} {row['value']:.4f} {row['metric']}"
              + (f"  ratio {row['ratio']:.3f}" if "ratio" in row else "")
              + ("" if row.get("ok") is None else ("  ok" if row["ok"] else "  MISSED"))
              + ("  [" + row["note"].split("; ", 1)[1] + "]" if "child CPU" in row.get("note", "")
                 else ""),
              file=sys.stderr)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
