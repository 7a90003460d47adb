"""docs/portability.md: the walkthrough's commands run as written (RGW -> Tencent double, then
the applications switch their backend URL), and the Kubernetes manifest is consistent."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
from pathlib import Path

import pytest
from portable_creds_aws.testing.oidc import OidcIssuer
from portable_creds_aws.testing.rgw import RgwEndpoint

from portable_creds.store import CredentialStore

from ..cloud_fixtures import REGION, random_wallet
from .conftest import REPO, Env, clean_env, own_rgw_deployment, write_secret

DOC = (REPO / "docs" / "portability.md").read_text()
SERVICES = ("openai", "github", "slack")


def walkthrough() -> str:
    section = DOC.split("## Walkthrough", 1)[1]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) >= 4
    return "\n".join(blocks)


def test_walkthrough_runs_as_written(
    rgw: RgwEndpoint, oidc: OidcIssuer, cos: Env, tmp_path: Path
) -> None:
    fleet = own_rgw_deployment(rgw, oidc, "pc-copy-doc")
    root = os.urandom(32)
    secret_file = write_secret(tmp_path / "root.key", root)
    from portable_creds.secret_key import SecretKeySource

    keys = SecretKeySource(root)
    wallets = [random_wallet() for _ in range(3)]
    values: dict[str, dict[str, bytes]] = {}
    for w in wallets:
        fleet.provisioner.onboard(w)
        cos.provisioner.onboard(w)
        values[w] = {s: f"{s}-{secrets.token_hex(8)}".encode() for s in SERVICES}
        with CredentialStore(fleet.object_store(w), keys, w) as tenant:
            for s, v in values[w].items():
                tenant.put(s, v)
    wallet = wallets[1]
    rgw_token = tmp_path / "rgw.token"
    rgw_token.write_text(oidc.token(wallet, ttl=3600))
    cos_token = tmp_path / "cos.token"
    cos_token.write_text(cos.idp.mint(wallet, "portable-creds-test", lifetime=3600))
    environ = clean_env(
        tmp_path,
        SRC=f"s3://{fleet.bucket}?region={REGION}&endpoint={rgw.url}",
        DST=cos.url,
        AWS_ACCESS_KEY_ID=rgw.admin_access_key,
        AWS_SECRET_ACCESS_KEY=rgw.admin_secret_key,
        TENCENTCLOUD_SECRET_ID=cos.double.root.secret_id,
        TENCENTCLOUD_SECRET_KEY=cos.double.root.secret_key,
        APP_URL_RGW=fleet.url(token_file=str(rgw_token)),
        APP_URL_COS=f"{cos.url}&mode=role-per-tenant&token_file={cos_token}",
        WALLET=wallet,
        PORTABLE_CREDS_SECRET_FILE=str(secret_file),
    )
    proc = subprocess.run(
        ["bash", "--norc", "-euo", "pipefail", "-c", walkthrough()],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    # list before (RGW), the dry run's summary, list after the switch (COS)
    count = len(wallets) * len(SERVICES)
    assert proc.stdout.decode().splitlines() == [
        *sorted(SERVICES), f"summary: {count} would-copy", *sorted(SERVICES)
    ]
    assert (tmp_path / "openai.txt").read_bytes() == values[wallet]["openai"]
    admin = fleet.admin_store()
    assert list(admin.list("bots/")) == []  # the source is gone ...
    for w in wallets:  # ... and every tenant reads everything from COS with its own identity
        with CredentialStore(cos.open(w), keys, w) as tenant:
            assert {s: tenant.get(s).reveal() for s in SERVICES} == values[w]


def test_kubernetes_job_shards_match_its_completions() -> None:
    manifest = (REPO / "docs" / "k8s-copy-job.yaml").read_text()

    def field(name: str) -> str:
        found = re.search(rf"^\s+{name}: (\S+)", manifest, re.M)
        assert found, name
        return found.group(1)

    assert field("completionMode") == "Indexed"
    shard = re.search(r'--shard "\$\{JOB_COMPLETION_INDEX\}/(\d+)"', manifest)
    assert shard and shard.group(1) == field("completions") == field("parallelism")
    assert "--all-wallets" in manifest and "(k8s-copy-job.yaml)" in DOC


@pytest.mark.parametrize("block", re.findall(r"```(?:sh)?\n(.*?)```", DOC, re.S))
def test_every_copy_command_in_the_doc_parses(block: str) -> None:
    """Flags the doc shows exist (a renamed option would fail here before a user hits it)."""
    from portable_creds.cli import build_parser

    parser = build_parser()
    for line in block.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)  # a "# the URL's ..." comment is prose
        if words[:1] != ["portable-creds"] or "copy" not in words:
            continue
        for stop in (">", "|"):
            words = words[: words.index(stop)] if stop in words else words
        assert parser.parse_args(words[1:]).func.__name__ == "cmd_copy"
