"""``make conformance-live``: the whole conformance suite against real AWS and/or Tencent Cloud.

For each cloud named in the environment the runner deploys a throw-away bucket, OIDC provider
and role(s) with the drivers' own provisioners, onboards the suite's tenants (two, plus the
few extra wallets some groups open), runs every group, and tears everything down, also when a
test, the suite or this runner fails (``--keep`` keeps it and prints how to remove it later):

    PORTABLE_CREDS_LIVE_AWS=PROFILE[:REGION]       an AWS profile of botocore's config files
    PORTABLE_CREDS_LIVE_TENCENT=PROFILE[:REGION]   a [PROFILE] in ~/.tencentcloud/credentials

Without either it prints one line saying what to set and exits 0. The deployment, onboarding,
suite and teardown are the same code that ``make test`` runs through this very script against
Ceph RGW (``--rgw CONFIG``) and the Tencent double (``--tencent-double``):
tests/aws/test_conformance_live.py. What it costs and creates: docs/live-testing.md.

No secret is passed on a command line or in a child's environment: AWS keys stay in the
profile, Tencent keys in its credentials file, RGW keys in the 0600 config file the test wrote.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ENV_AWS = "PORTABLE_CREDS_LIVE_AWS"
ENV_TENCENT = "PORTABLE_CREDS_LIVE_TENCENT"
AWS_HARNESS = "portable_creds_aws.live_harness:LiveS3Harness"
COS_HARNESS = "portable_creds_tencent.live_harness:LiveCosHarness"
NOTHING_TO_DO = (
    f"conformance-live: nothing to run; set {ENV_AWS}=PROFILE[:REGION] and/or "
    f"{ENV_TENCENT}=PROFILE[:REGION] (see docs/live-testing.md)"
)


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--keep", action="store_true", help="keep the deployment after the run")
    p.add_argument("--groups", metavar="G1,G2", help="only these groups (default: all)")
    p.add_argument("--out", default="build/conformance-live", help="reports and state files")
    p.add_argument("--rgw", metavar="CONFIG", type=Path,
                   help="(tests) a Ceph RGW: JSON file with endpoint, region, access_key, "
                        "secret_key, admin_user")  # fmt: skip
    p.add_argument("--tencent-double", action="store_true",
                   help="(tests) the Tencent double, started by the harness")  # fmt: skip
    p.add_argument("--teardown", metavar="STATE", type=Path,
                   help="only remove what a kept or crashed run's state file names")  # fmt: skip
    p.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    return p.parse_args(argv)


def _split(value: str, default_region: str) -> tuple[str, str]:
    profile, _, region = value.partition(":")
    return profile.strip() or "default", region.strip() or default_region


def _toml(values: Mapping[str, Any]) -> str:
    """A flat TOML table (strings, booleans): JSON string escapes are valid TOML."""
    lines = []
    for key, value in values.items():
        if value is None:
            continue
        rendered = ("true" if value else "false") if isinstance(value, bool) else json.dumps(
            str(value)
        )
        lines.append(f"{key} = {rendered}")
    return "\n".join(lines) + "\n"


def _private_file(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return path


def _tencent_account(profile: str, region: str) -> tuple[str, str]:
    """(owner UIN, APPID) of the profile's account, from CAM ``GetUserAppId``."""
    from portable_creds_tencent.live_harness import profile_keys
    from tencentcloud.cam.v20190116 import cam_client, models
    from tencentcloud.common import credential

    keys = profile_keys(profile)
    client = cam_client.CamClient(credential.Credential(keys.secret_id, keys.secret_key), region)
    resp = client.GetUserAppId(models.GetUserAppIdRequest())
    return str(resp.OwnerUin), str(resp.AppId)


# --------------------------------------------------------------------------- one run
class Run:
    """One cloud: its harness, config, state file and teardown."""

    def __init__(self, label: str, harness: str, config: dict[str, Any], out: Path) -> None:
        self.label = label
        self.harness = harness
        self.name = f"pc-live-{secrets.token_hex(5)}"
        self.state_file = out / f"{label}-{self.name}.state.json"
        self.report = out / f"{label}-{self.name}.json"
        self.config = {**config, "name": self.name, "state_file": str(self.state_file)}

    def execute(self, ns: argparse.Namespace) -> int:
        workdir = Path(tempfile.mkdtemp(prefix="pc-live-"))  # 0700
        try:
            cfg = _private_file(workdir / "config.toml",
                                _toml({**self.config, "keep": ns.keep}))  # fmt: skip
            cmd = [sys.executable, "-m", "portable_creds_conformance", "--harness",
                   self.harness, "--target", "live", "--config", str(cfg),
                   "--report", str(self.report)]  # fmt: skip
            if ns.groups:
                cmd += ["--groups", ns.groups]
            if ns.pytest_args:
                cmd += ["--", *ns.pytest_args]
            print(f"=== conformance-live: {self.label} ({self.name})", flush=True)
            try:
                return subprocess.call(cmd)
            finally:
                # The harness tears down in its cleanup; this catches a run that crashed
                # before (or during) it. Idempotent: nothing left means nothing to do.
                if not ns.keep:
                    for line in teardown_state(self.state_file, self.config):
                        print(f"teardown: {line}", flush=True)
                elif self.state_file.exists():
                    print(f"kept: remove it with: {sys.executable} {__file__} --teardown "
                          f"{self.state_file}" + self._teardown_hint(), flush=True)  # fmt: skip
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _teardown_hint(self) -> str:
        return f" --rgw {self.config['rgw_config']}" if self.config.get("rgw_config") else ""


def teardown_state(state_file: Path, config: Mapping[str, Any] | None = None) -> list[str]:
    """Remove what ``state_file`` names (nothing if it does not exist), then the file."""
    if not state_file.exists():
        return []
    state = json.loads(state_file.read_text())
    done: list[str] = list(state.pop("torn_down", None) or [])  # what the harness removed
    if "environment" in state:  # Tencent
        if state["environment"] == "tencent":
            from portable_creds_tencent.live_harness import (
                profile_keys,
                provisioner_for_state,
                teardown,
            )

            keys = profile_keys(str(state.get("profile") or "default"))
            done += teardown(state, provisioner_for_state(state, keys))
        # The double lived in the harness process: nothing outlives it.
    else:
        from portable_creds_aws.live_harness import LiveEnvironment, admin_clients, teardown

        cfg = dict(config or {})
        cfg.setdefault("flavor", state["flavor"])
        cfg.setdefault("region", state["region"])
        cfg.setdefault("endpoint", state.get("endpoint"))
        cfg.setdefault("profile", state.get("profile"))
        cfg.update(name=state.get("role_name", "x"), state_file=str(state_file))
        env = LiveEnvironment.from_config(cfg)
        s3, iam, _ = admin_clients(env)
        done += teardown(state, s3, iam)
    state_file.unlink()
    return done


def _rgw_config(path: Path) -> dict[str, Any]:
    raw = json.loads(path.read_text())
    return {
        "flavor": "rgw",
        "endpoint": raw["endpoint"],
        "region": raw.get("region", "us-east-1"),
        "access_key": raw["access_key"],
        "secret_key": raw["secret_key"],
        "admin_user": raw.get("admin_user"),
        "rgw_config": str(path),
    }


def runs_for(ns: argparse.Namespace, environ: Mapping[str, str], out: Path) -> list[Run]:
    runs: list[Run] = []
    if ns.rgw is not None:
        runs.append(Run("rgw", AWS_HARNESS, _rgw_config(ns.rgw), out))
    if ns.tencent_double:
        runs.append(Run("tencent-double", COS_HARNESS, {"environment": "double"}, out))
    if environ.get(ENV_AWS, "").strip():
        profile, region = _split(environ[ENV_AWS], "us-east-1")
        runs.append(Run("aws", AWS_HARNESS,
                        {"flavor": "aws", "profile": profile, "region": region}, out))  # fmt: skip
    if environ.get(ENV_TENCENT, "").strip():
        profile, region = _split(environ[ENV_TENCENT], "ap-guangzhou")
        owner_uin, appid = _tencent_account(profile, region)
        config = {"environment": "tencent", "profile": profile, "region": region,
                  "owner_uin": owner_uin, "appid": appid}  # fmt: skip
        runs.append(Run("tencent", COS_HARNESS, config, out))
    return runs


def main(argv: list[str] | None = None) -> int:
    ns = _parse(sys.argv[1:] if argv is None else argv)
    if ns.teardown is not None:
        config = _rgw_config(ns.rgw) if ns.rgw is not None else None
        for line in teardown_state(ns.teardown, config):
            print(f"teardown: {line}")
        return 0
    out = Path(ns.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    runs = runs_for(ns, os.environ, out)
    if not runs:
        print(NOTHING_TO_DO)
        return 0
    results = [(run, run.execute(ns)) for run in runs]
    print("\n=== conformance-live runs")
    for run, code in results:
        verdict = "PASS" if code == 0 else f"FAIL (exit {code})"
        print(f"  {run.label:<16} {run.name:<20} {verdict}  {run.report}")
    return 0 if all(code == 0 for _, code in results) else 1


if __name__ == "__main__":
    sys.exit(main())
