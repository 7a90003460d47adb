"""``portable-creds admin s3 ...``: argument parsing and exit codes around ``Provisioner``.

Settings come from flags or a JSON file (``--config``; flags win), the administrator's
credentials from botocore's default chain (environment, profile, instance role), so no secret
is ever passed on the command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from portable_creds.driver import StoreTarget
from portable_creds.errors import ConfigurationError, PortableCredsError

from ..clients import iam_client, s3_client, static_credentials
from ..settings import parse_settings
from . import policies as P
from .provisioner import Provisioner
from .render_iac import FORMATS, render_text
from .tenant_roles import render_role

_FIELDS = (
    "bucket",
    "issuer",
    "flavor",
    "strategy",
    "audience",
    "account_id",
    "role_name",
    "admin_principal",
    "thumbprints",
    "prefix",
    "lifecycle_days",
    "versioning",
    "max_session_duration",
    "endpoint",
    "region",
    "log_bucket",
    "log_prefix",
    "trail_name",
    "revocation",
    "kms_key",
    "kms_custodian",
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="portable-creds admin s3",
        description="Provision the bucket, OIDC provider and data role for the s3 driver.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  portable-creds admin s3 --bucket acme-creds --issuer https://idp.example.com \\\n"
            "      --account-id 123456789012 --log-bucket acme-logs render\n"
            "  portable-creds admin s3 --config deploy.json render --format cloudformation\n"
            "  portable-creds admin s3 --config deploy.json apply\n"
            "  portable-creds admin s3 --config deploy.json verify"
        ),
    )
    p.add_argument("--config", type=Path, help="JSON file with any of the options below")
    p.add_argument("--bucket")
    p.add_argument("--issuer", help="the tokens' exact iss URL")
    p.add_argument("--flavor", choices=["aws", "rgw"])
    p.add_argument(
        "--strategy",
        choices=list(P.STRATEGIES),
        help="tag-variable (AWS default), role-per-tenant (RGW default), per-tenant (legacy)",
    )
    p.add_argument("--audience")
    p.add_argument("--account-id", dest="account_id")
    p.add_argument("--role-name", dest="role_name")
    p.add_argument("--admin-principal", dest="admin_principal")
    p.add_argument("--thumbprint", dest="thumbprints", action="append")
    p.add_argument("--prefix")
    p.add_argument("--lifecycle-days", dest="lifecycle_days", type=int)
    p.add_argument("--versioning", action="store_true", default=None)
    p.add_argument("--max-session-duration", dest="max_session_duration", type=int)
    p.add_argument("--endpoint", help="S3/IAM endpoint (RGW); omit for AWS")
    p.add_argument("--region")
    p.add_argument(
        "--log-bucket",
        dest="log_bucket",
        help="S3 server access logs of the data bucket go to this bucket (AWS; not RGW 16.2)",
    )
    p.add_argument(
        "--log-prefix",
        dest="log_prefix",
        help=f"key prefix of the access logs [{P.DEFAULT_LOG_PREFIX}]",
    )
    p.add_argument(
        "--trail-name",
        dest="trail_name",
        help=f"CloudTrail trail for the rendered data-event selectors [{P.DEFAULT_TRAIL_NAME}]",
    )
    p.add_argument(
        "--revocation",
        choices=list(P.REVOCATIONS),
        help="tag-variable: inline (one role, up to ~72 offboarded wallets) or sharded "
        "(256 shard roles, managed deny policies: 100,000+) [inline]",
    )
    p.add_argument(
        "--kms-key",
        dest="kms_key",
        metavar="ARN",
        help="existing KMS key tenants seal with (kms_key= on their URL): render/apply its key "
        "policy, verify reports its drift (aws, tag-variable)",
    )
    p.add_argument(
        "--kms-custodian",
        dest="kms_custodian",
        metavar="ARN",
        help="role/user ARN the key policy lets use the key for every wallet (custody moves: "
        "rewrap --all-wallets, copy); default: nobody beyond the tenants",
    )
    sub = p.add_subparsers(dest="command", required=True)
    render = sub.add_parser("render", help="print every document as JSON (or as IaC)")
    render.add_argument(
        "--format",
        choices=FORMATS,
        default="json",
        help="json: every document keyed by what it is (default); cloudformation: an AWS "
        "CloudFormation template; terraform: Terraform JSON syntax (save as NAME.tf.json)",
    )
    sub.add_parser("apply", help="create or update the deployment")
    sub.add_parser("verify", help="diff deployed vs rendered; non-zero exit on drift")
    for name in ("onboard", "offboard"):
        sp = sub.add_parser(name, help=f"{name} one tenant")
        sp.add_argument("wallet")
    sub.add_parser("tenants", help="list onboarded wallets (the recorded intended set)")
    mig = sub.add_parser(
        "migrate-strategy",
        help="move a deployment from --from STRATEGY to the configured --strategy",
    )
    mig.add_argument("--from", dest="from_strategy", required=True, choices=list(P.STRATEGIES))
    mig.add_argument(
        "--keep-old",
        action="store_true",
        help="grant under the new strategy but keep the old grants (remove them on a re-run)",
    )
    return p


def _settings(ns: argparse.Namespace) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    if ns.config is not None:
        try:
            loaded = json.loads(ns.config.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read --config {ns.config}: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigurationError(f"--config {ns.config} must hold a JSON object")
        unknown = sorted(set(loaded) - set(_FIELDS))
        if unknown:
            raise ConfigurationError(f"unknown keys in {ns.config}: {', '.join(unknown)}")
        merged.update(loaded)
    for field in _FIELDS:
        value = getattr(ns, field, None)
        if value is not None:
            merged[field] = value
    for required in ("bucket", "issuer"):
        if not merged.get(required):
            raise ConfigurationError(f"--{required} is required (flag or --config key)")
    return merged


def deployment_from(cfg: dict[str, Any]) -> P.Deployment:
    kwargs = {k: v for k, v in cfg.items() if k not in ("endpoint", "region")}
    if "thumbprints" in kwargs:
        kwargs["thumbprints"] = tuple(kwargs["thumbprints"])
    if cfg.get("flavor") == "rgw" and "strategy" not in cfg:
        kwargs["strategy"] = "role-per-tenant"
    try:
        return P.Deployment(**kwargs)
    except TypeError as exc:
        raise ConfigurationError(f"invalid deployment settings: {exc}") from None


def provisioner_from(cfg: dict[str, Any]) -> Provisioner:
    d = deployment_from(cfg)
    query = []
    if cfg.get("endpoint"):
        query.append(f"endpoint={cfg['endpoint']}")
    if cfg.get("region"):
        query.append(f"region={cfg['region']}")
    settings = parse_settings(StoreTarget(url=f"s3://{d.bucket}?" + "&".join(query), wallet=None))
    creds = static_credentials(settings)
    kms = None
    if d.kms_key is not None:
        from ..kms import kms_client

        kms = kms_client(settings, creds)
    return Provisioner(
        d,
        iam=iam_client(settings, creds),
        s3=s3_client(settings, creds),
        region=settings.region,
        kms=kms,
    )


def main(argv: list[str]) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        cfg = _settings(ns)
        if ns.command == "render":
            d = deployment_from(cfg)
            if ns.format != "json":
                print(render_text(d, ns.format))
                return 0
            docs = P.render(d)
            docs["store_url"] = d.store_url(cfg.get("endpoint"), cfg.get("region"))
            if d.strategy == "per-tenant":
                docs["tenant_policy_template"] = P.tenant_policy(d, "0x" + "0" * 40)
            if d.strategy == "role-per-tenant":
                docs["tenant_role_template"] = render_role(d, "0x" + "0" * 40)
            docs["audit"] = P.audit_guidance(d)
            if d.kms_key is not None:
                from .kms_policy import key_policy

                docs["kms_key_policy"] = {"key": d.kms_key, "policy": key_policy(d)}
            print(json.dumps(docs, indent=2, sort_keys=True))
            return 0
        prov = provisioner_from(cfg)
        if ns.command == "apply":
            for line in prov.apply():
                print(line)
            return 0
        if ns.command == "verify":
            diff = prov.verify()
            if diff:
                print("\n".join(diff))
                print("verify: deployed state differs from the rendered documents", file=sys.stderr)
                return 1
            print("verify: deployed state matches")
            return 0
        if ns.command == "onboard":
            print(prov.onboard(ns.wallet))
            return 0
        if ns.command == "offboard":
            print(prov.offboard(ns.wallet))
            return 0
        if ns.command == "migrate-strategy":
            from .migrate import migrate_strategy

            for line in migrate_strategy(prov, ns.from_strategy, keep_old=ns.keep_old):
                print(line)
            return 0
        if ns.command == "tenants":
            for wallet in prov.tenants():
                print(wallet)
            return 0
    except PortableCredsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    parser.error(f"unknown command {ns.command}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
