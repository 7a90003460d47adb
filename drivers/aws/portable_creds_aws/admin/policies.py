"""Every document the provisioner deploys, rendered as plain data from one ``Deployment``.

Rendering is pure (no network), so ``render`` can print exactly what ``apply`` would write and
``verify`` can diff the live state against it. Two isolation strategies:

* ``tag-variable`` (AWS only): one static role policy whose resources use
  ``${aws:PrincipalTag/agentkeys_user_wallet}``; AWS substitutes the session tag from the token.
* ``role-per-tenant`` (the RGW default; also valid on AWS up to its role quota): one small role
  per wallet, its trust policy admitting only that wallet's token (see ``tenant_roles``).
  Per-request cost and onboard/offboard cost do not depend on the number of tenants.
* ``per-tenant`` (legacy, AWS and RGW): one inline role policy per onboarded wallet on one
  shared role, with the wallet written literally and guarded by a PrincipalTag condition. RGW
  loads every tenant's policy on every request (cost grows with the tenant count); kept so
  existing deployments can ``migrate-strategy`` away from it.

Either way the role itself carries no broad S3 grant: IAM allows are a union, so one broad
statement would defeat the isolation.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import attrs

from portable_creds.errors import ConfigurationError
from portable_creds.names import validate_prefix, validate_wallet

Flavor = Literal["aws", "rgw"]
Strategy = Literal["tag-variable", "per-tenant", "role-per-tenant"]
Revocation = Literal["inline", "sharded"]
REVOCATIONS = ("inline", "sharded")
SHARDED_ROLE_BASE_MAX = 61
"""``<role_name>-<xx>`` (the sharded ``tag-variable`` roles) must fit IAM's 64 characters."""
STRATEGIES = ("tag-variable", "per-tenant", "role-per-tenant")
ROLE_PER_TENANT_BASE_MAX = 21
"""``<role_name>-<wallet>`` must fit IAM's 64-character role names (42 for the wallet)."""

TAG_KEY = "agentkeys_user_wallet"
TENANT_POLICY_PREFIX = "agentkeys-tenant-"
ISOLATION_POLICY = "agentkeys-tenant-isolation"
OFFBOARDED_POLICY = "agentkeys-offboarded"
LIFECYCLE_RULE_ID = "portable-creds-credentials-expiry"
LIFECYCLE_MARKERS_RULE_ID = "portable-creds-expired-delete-markers"
LOGGING_SERVICE = "logging.s3.amazonaws.com"
DEFAULT_LOG_PREFIX = "s3-access/"
DEFAULT_TRAIL_NAME = "portable-creds-data-events"
RGW_NO_ACCESS_LOGS = (
    "Ceph RGW 16.2 does not implement S3 server access logging (PutBucketLogging answers "
    "405 MethodNotAllowed); use RGW's ops log instead (rgw_enable_ops_log = true, with "
    "rgw_ops_log_rados or rgw_ops_log_socket_path)"
)
VERSION = "2012-10-17"
_KMS_KEY_ARN = re.compile(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]{1,128}")
_PRINCIPAL_ARN = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[A-Za-z0-9+=,.@_/-]{1,512}")


def compact(doc: Any) -> str:
    """Policy JSON as sent to IAM: compact (RGW does not decode ``+`` in IAM form bodies)."""
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


def _positive(instance: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and value < 1:
        raise ConfigurationError(f"{attribute.name} must be at least 1")


@attrs.frozen
class Deployment:
    """What to deploy. Everything else (ARNs, condition keys) is derived from it."""

    bucket: str
    issuer: str
    """The token's exact ``iss`` (e.g. ``https://broker.example.com``)."""
    flavor: Flavor = "aws"
    strategy: Strategy = "tag-variable"
    audience: str = "sts.amazonaws.com"
    account_id: str = ""
    """AWS account id; empty on RGW (its ARNs have no account)."""
    role_name: str = "agentkeys-data-role"
    admin_principal: str | None = None
    """ARN granted read access to every tenant's objects (RGW: ``arn:aws:iam:::user/admin``)."""
    thumbprints: tuple[str, ...] = ()
    prefix: str = "bots"
    lifecycle_days: int | None = attrs.field(default=None, validator=_positive)
    versioning: bool = False
    max_session_duration: int = 3600
    log_bucket: str | None = None
    """S3 server access logs for the data bucket go to this (operator-owned) bucket."""
    log_prefix: str = DEFAULT_LOG_PREFIX
    trail_name: str = DEFAULT_TRAIL_NAME
    """The CloudTrail trail the rendered data-event selectors are for (guidance only)."""
    revocation: Revocation = "inline"
    """``tag-variable`` only: ``inline`` (one role, deny list inline: ~72 offboarded wallets)
    or ``sharded`` (256 shard roles with managed deny policies; see ``sharded``)."""
    kms_key: str | None = None
    """ARN of the (existing) KMS key tenants seal with (``kms_key=`` on their URL): ``apply``
    puts its key policy (``kms_policy``), ``verify`` reports drift. ``None``: no KMS custody."""
    kms_custodian: str | None = None
    """Principal ARN the key policy lets use the key for *any* wallet (custody moves: ``rewrap
    --all-wallets``, ``copy``); ``None``: nobody but the tenants (and IAM via the root)."""

    def __attrs_post_init__(self) -> None:
        validate_prefix(self.prefix)
        if self.flavor not in ("aws", "rgw"):
            raise ConfigurationError("flavor must be aws or rgw")
        if self.strategy not in STRATEGIES:
            raise ConfigurationError(f"strategy must be one of {', '.join(STRATEGIES)}")
        if self.flavor == "rgw" and self.strategy == "tag-variable":
            raise ConfigurationError(
                "Ceph RGW has no IAM policy variables (a ${...} resource is rejected, a ${...} "
                "condition value fails open); use --strategy role-per-tenant (or per-tenant)"
            )
        if self.strategy == "role-per-tenant" and len(self.role_name) > ROLE_PER_TENANT_BASE_MAX:
            raise ConfigurationError(
                f"role_name {self.role_name!r}: with role-per-tenant each tenant's role is "
                f"'<role_name>-<wallet>', which must fit IAM's 64 characters, so role_name may "
                f"have at most {ROLE_PER_TENANT_BASE_MAX}"
            )
        if self.flavor == "aws" and not self.account_id.isdigit():
            raise ConfigurationError("flavor aws needs --account-id (12 digits)")
        if not self.issuer.startswith(("https://", "http://")):
            raise ConfigurationError("issuer must be the token's exact iss URL (https://...)")
        if self.revocation not in REVOCATIONS:
            raise ConfigurationError(f"revocation must be one of {', '.join(REVOCATIONS)}")
        if self.revocation == "sharded":
            if self.strategy != "tag-variable":
                raise ConfigurationError(
                    "--revocation sharded applies to --strategy tag-variable only (the other "
                    "strategies revoke by removing the tenant's own grant)"
                )
            if len(self.role_name) > SHARDED_ROLE_BASE_MAX:
                raise ConfigurationError(
                    f"role_name {self.role_name!r}: sharded revocation names roles "
                    f"'<role_name>-<xx>', so role_name may have at most {SHARDED_ROLE_BASE_MAX} "
                    "characters"
                )
        if self.log_bucket is not None:
            if self.flavor == "rgw":
                raise ConfigurationError(f"--log-bucket: {RGW_NO_ACCESS_LOGS}")
            if not self.log_bucket or self.log_bucket == self.bucket:
                raise ConfigurationError(
                    "--log-bucket must name another bucket: logging into the data bucket "
                    "would mix log objects with credentials (and log its own deliveries)"
                )

        self._check_kms()

    def _check_kms(self) -> None:
        if self.kms_key is None:
            if self.kms_custodian is not None:
                raise ConfigurationError("--kms-custodian needs --kms-key (the key it may use)")
            return
        if self.flavor != "aws":
            raise ConfigurationError("--kms-key: Ceph RGW has no KMS API; use --flavor aws")
        if self.strategy != "tag-variable":
            raise ConfigurationError(
                "--kms-key renders a key policy naming the data role(s) and conditioning on "
                "the session's wallet tag; it is not rendered for --strategy role-per-tenant "
                "or per-tenant (a role per wallet / no tag variable): use --strategy "
                "tag-variable"
            )
        if not _KMS_KEY_ARN.fullmatch(self.kms_key):
            raise ConfigurationError(
                f"--kms-key {self.kms_key!r} is not a KMS key ARN "
                "(arn:aws:kms:REGION:ACCOUNT:key/KEY-ID): the key policy is put on that key, and "
                "tenants must name it the same way in kms_key="
            )
        if self.kms_custodian is not None and not _PRINCIPAL_ARN.fullmatch(self.kms_custodian):
            raise ConfigurationError(
                f"--kms-custodian {self.kms_custodian!r} is not an IAM role or user ARN"
            )

    # ------------------------------------------------------------------ names
    @property
    def provider_host(self) -> str:
        """The issuer without its scheme: how IAM names the provider and its condition keys."""
        return self.issuer.split("://", 1)[1].rstrip("/")

    @property
    def provider_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:oidc-provider/{self.provider_host}"

    @property
    def role_arn(self) -> str:
        """The data role tenants assume; with ``role-per-tenant`` a template whose
        ``{wallet}`` the driver fills in (each wallet has its own role), with sharded
        revocation one whose ``{shard}`` it fills with the wallet's first two hex digits."""
        if self.strategy == "role-per-tenant":
            return f"arn:aws:iam::{self.account_id}:role/{self.role_name}-{{wallet}}"
        if self.revocation == "sharded":
            return f"arn:aws:iam::{self.account_id}:role/{self.role_name}-{{shard}}"
        return f"arn:aws:iam::{self.account_id}:role/{self.role_name}"

    @property
    def bucket_arn(self) -> str:
        return f"arn:aws:s3:::{self.bucket}"

    @property
    def audience_key(self) -> str:
        # RGW 16.2 names the audience condition key ``app_id``; ``aud`` does not exist there
        # (a condition on it always denies).
        return f"{self.provider_host}:{'app_id' if self.flavor == 'rgw' else 'aud'}"

    @property
    def admin(self) -> str | None:
        if self.admin_principal:
            return self.admin_principal
        return f"arn:aws:iam::{self.account_id}:root" if self.flavor == "aws" else None

    def store_url(self, endpoint: str | None = None, region: str | None = None) -> str:
        """The ``s3://`` URL tenants open (what ``render`` prints for operators)."""
        query = [f"role_arn={self.role_arn}"]
        if region:
            query.append(f"region={region}")
        if endpoint:
            query.append(f"endpoint={endpoint}")
        return f"s3://{self.bucket}?" + "&".join(query)


# ---------------------------------------------------------------------- documents
def trust_policy(d: Deployment) -> dict[str, Any]:
    """Who may assume the data role: tokens of our issuer, for our audience, carrying the tag.

    AWS: ``Null aws:RequestTag/<key> = false`` (key must be present; ``StringNotEquals ""`` would
    pass when it is missing). Ceph RGW 16.2 evaluates that ``Null`` test inverted (measured: a
    tagged token is refused, an untagged one accepted), so there the requirement is expressed
    as ``StringLike 0x*``, which fails when the key is missing. AWS gets both.
    """
    condition: dict[str, Any] = {
        "StringEquals": {d.audience_key: d.audience},
        "StringLike": {f"aws:RequestTag/{TAG_KEY}": "0x*"},
    }
    if d.flavor == "aws":
        condition["Null"] = {f"aws:RequestTag/{TAG_KEY}": "false"}
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": d.provider_arn},
                "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"],
                "Condition": condition,
            }
        ],
    }


def _tenant_statements(d: Deployment, wallet: str, guard: dict[str, Any] | None) -> list[Any]:
    base = f"{d.prefix}/{wallet}"
    tag_guard = {"StringEquals": guard} if guard else {}

    def cond(extra: dict[str, Any] | None = None) -> dict[str, Any]:
        merged: dict[str, Any] = dict(tag_guard)
        merged.update(extra or {})
        return {"Condition": merged} if merged else {}

    return [
        {
            "Sid": "ReadOwnPrefix",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [f"{d.bucket_arn}/{base}/*"],
            **cond(),
        },
        {
            "Sid": "WriteOwnCredentials",
            "Effect": "Allow",
            "Action": [
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            "Resource": [f"{d.bucket_arn}/{base}/credentials/*"],
            **cond(),
        },
        {
            "Sid": "ListOwnPrefix",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [d.bucket_arn],
            **cond({"StringLike": {"s3:prefix": [f"{base}/*"]}}),
        },
    ]


def tenant_policy(d: Deployment, wallet: str) -> dict[str, Any]:
    """``per-tenant``: the wallet written literally, guarded by the session's wallet tag."""
    w = validate_wallet(wallet)
    return {
        "Version": VERSION,
        "Statement": _tenant_statements(d, w, {f"aws:PrincipalTag/{TAG_KEY}": w}),
    }


def tenant_policy_name(wallet: str) -> str:
    return TENANT_POLICY_PREFIX + validate_wallet(wallet)


def isolation_policy(d: Deployment) -> dict[str, Any]:
    """``tag-variable``: one policy for all tenants; AWS substitutes the session's tag."""
    return {
        "Version": VERSION,
        "Statement": _tenant_statements(d, "${aws:PrincipalTag/" + TAG_KEY + "}", None),
    }


def offboarded_policy(d: Deployment, wallets: list[str]) -> dict[str, Any] | None:
    """``tag-variable`` offboarding: an explicit Deny (beats the shared Allow) per wallet."""
    if not wallets:
        return None
    ws = sorted(validate_wallet(w) for w in wallets)
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "OffboardedObjects",
                "Effect": "Deny",
                "Action": ["s3:*"],
                "Resource": [f"{d.bucket_arn}/{d.prefix}/{w}/*" for w in ws],
            },
            {
                "Sid": "OffboardedListing",
                "Effect": "Deny",
                "Action": ["s3:ListBucket"],
                "Resource": [d.bucket_arn],
                "Condition": {"StringLike": {"s3:prefix": [f"{d.prefix}/{w}/*" for w in ws]}},
            },
        ],
    }


def bucket_policy(d: Deployment) -> dict[str, Any] | None:
    """Administrator read access. Needed on RGW: objects a web-identity session writes belong
    to a shadow user, so even the bucket owner cannot read them without a grant.

    ``s3:DeleteObjectVersion`` too: Ceph RGW 16.2 checks it for every DeleteObjects entry that
    carries a ``VersionId`` (``"null"`` on an unversioned bucket included) and, once a bucket
    policy exists, refuses such an entry with ``AccessDenied`` unless the policy allows it, even
    for objects the bucket owner wrote itself (measured; docs/ceph.md). Emptying a bucket
    version by version (teardown, purges) needs it."""
    admin = d.admin
    if admin is None:
        return None
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "AdminRead",
                "Effect": "Allow",
                "Principal": {"AWS": [admin]},
                "Action": [
                    "s3:GetObject",
                    "s3:ListBucket",
                    "s3:DeleteObject",
                    "s3:DeleteObjectVersion",
                ],
                "Resource": [d.bucket_arn, f"{d.bucket_arn}/*"],
            }
        ],
    }


def public_access_block(d: Deployment) -> dict[str, bool]:
    """AWS: all four settings on (AWS's own default for new buckets; nothing here is public).

    Ceph RGW 16.2 keeps two measured exceptions: ``BlockPublicAcls`` makes every role-session
    PUT fail there and ``BlockPublicPolicy`` blocks later bucket-policy updates, so the RGW
    flavour sets only ``IgnorePublicAcls`` (which already neutralises ``ACL=public-read``) and
    ``RestrictPublicBuckets`` (docs/ceph.md).
    """
    aws = d.flavor == "aws"
    return {
        "BlockPublicAcls": aws,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": aws,
        "RestrictPublicBuckets": True,
    }


def ownership_controls(d: Deployment) -> dict[str, Any] | None:
    """``BucketOwnerEnforced`` on AWS: ACLs disabled, the bucket owner owns every object.

    ``None`` on RGW: Ceph RGW 16.2 has no ownership controls (the API is not implemented
    there; web-identity sessions own what they write, which is why the bucket policy grants
    the administrator read access).
    """
    if d.flavor != "aws":
        return None
    return {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def lifecycle(d: Deployment) -> dict[str, Any] | None:
    """Expire everything under the prefix after ``lifecycle_days``.

    With versioning, expiring the current version only hides it behind a delete marker: the
    sealed blob would live on as a noncurrent version forever. So a versioned bucket also
    expires noncurrent versions (``lifecycle_days`` after they became noncurrent) and, in a
    second rule, the delete markers left with no version behind them (S3 refuses
    ``ExpiredObjectDeleteMarker`` and ``Days`` in one ``Expiration``).
    """
    if d.lifecycle_days is None:
        return None
    prefix = {"Prefix": f"{d.prefix}/"}
    main: dict[str, Any] = {
        "ID": LIFECYCLE_RULE_ID,
        "Filter": prefix,
        "Status": "Enabled",
        "Expiration": {"Days": d.lifecycle_days},
    }
    rules = [main]
    if d.versioning:
        main["NoncurrentVersionExpiration"] = {"NoncurrentDays": d.lifecycle_days}
        rules.append(
            {
                "ID": LIFECYCLE_MARKERS_RULE_ID,
                "Filter": dict(prefix),
                "Status": "Enabled",
                "Expiration": {"ExpiredObjectDeleteMarker": True},
            }
        )
    return {"Rules": rules}


#: The lifecycle rule fields ``render`` writes (``verify`` compares exactly these).
LIFECYCLE_RULE_FIELDS = ("ID", "Filter", "Status", "Expiration", "NoncurrentVersionExpiration")


def access_logging(d: Deployment) -> dict[str, Any] | None:
    """``PutBucketLogging``'s status for the data bucket: every request, in the log bucket."""
    if d.log_bucket is None:
        return None
    return {"LoggingEnabled": {"TargetBucket": d.log_bucket, "TargetPrefix": d.log_prefix}}


def log_bucket_policy(d: Deployment) -> dict[str, Any] | None:
    """What the *log* bucket needs so S3's logging service may deliver into it.

    The log bucket is the operator's (often shared by many buckets), so it is rendered for
    them to merge into that bucket's policy, never written by ``apply``. Scoped to deliveries
    from this data bucket in this account (the confused-deputy guard AWS recommends).
    """
    if d.log_bucket is None:
        return None
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "S3ServerAccessLogsFromCredentialBucket",
                "Effect": "Allow",
                "Principal": {"Service": LOGGING_SERVICE},
                "Action": ["s3:PutObject"],
                "Resource": f"arn:aws:s3:::{d.log_bucket}/{d.log_prefix}*",
                "Condition": {
                    "ArnLike": {"aws:SourceArn": d.bucket_arn},
                    "StringEquals": {"aws:SourceAccount": d.account_id},
                },
            }
        ],
    }


def cloudtrail_data_events(d: Deployment) -> dict[str, Any] | None:
    """``PutEventSelectors`` input logging every object-level call under the prefix.

    Guidance, applied by operators with their own tooling
    (``aws cloudtrail put-event-selectors --cli-input-json file://FILE``) to a trail they
    own: trails are account-wide, and replacing a trail's selectors would drop theirs.
    """
    if d.flavor != "aws":
        return None
    return {
        "TrailName": d.trail_name,
        "AdvancedEventSelectors": [
            {
                "Name": f"portable-creds credential objects in {d.bucket}",
                "FieldSelectors": [
                    {"Field": "eventCategory", "Equals": ["Data"]},
                    {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
                    {"Field": "resources.ARN", "StartsWith": [f"{d.bucket_arn}/{d.prefix}/"]},
                ],
            }
        ],
    }


def audit_guidance(d: Deployment) -> dict[str, Any]:
    """The cloud-side audit switches ``render`` prints (not part of ``verify``'s comparison)."""
    if d.flavor == "rgw":
        return {
            "server_access_logging": None,
            "cloudtrail_data_events": None,
            "notes": [RGW_NO_ACCESS_LOGS],
        }
    notes = [
        "cloudtrail_data_events: apply to a trail you own with "
        "'aws cloudtrail put-event-selectors --cli-input-json file://FILE' (it replaces that "
        "trail's selectors: merge with any you have); data events are billed per event",
    ]
    if d.log_bucket is None:
        notes.append(
            "server access logging is off; pass --log-bucket BUCKET (and merge "
            "log_bucket_policy into that bucket's policy) to turn it on"
        )
    else:
        notes.append(
            f"merge log_bucket_policy into the policy of {d.log_bucket} before 'apply': "
            "PutBucketLogging is refused until the logging service may write there"
        )
    return {
        "server_access_logging": access_logging(d),
        "log_bucket_policy": log_bucket_policy(d),
        "cloudtrail_data_events": cloudtrail_data_events(d),
        "notes": notes,
    }


def oidc_provider(d: Deployment) -> dict[str, Any]:
    doc: dict[str, Any] = {"Url": d.issuer, "ClientIDList": [d.audience]}
    if d.thumbprints:
        doc["ThumbprintList"] = list(d.thumbprints)
    return doc


def render(d: Deployment, tenants: list[str] | None = None) -> dict[str, Any]:
    """Every document, keyed by what it is. ``tenants`` adds per-tenant policies."""
    role_policies: dict[str, Any] = {}
    role: dict[str, Any] | None = None
    if d.strategy == "tag-variable":
        role_policies[ISOLATION_POLICY] = isolation_policy(d)
    elif d.strategy == "per-tenant":
        for wallet in sorted(tenants or []):
            role_policies[tenant_policy_name(wallet)] = tenant_policy(d, wallet)
    if d.strategy != "role-per-tenant":  # role-per-tenant has no shared role (tenant_roles)
        role = {
            "name": d.role_name,
            "arn": d.role_arn,
            "max_session_duration": d.max_session_duration,
            "trust_policy": trust_policy(d),
            "inline_policies": role_policies,
        }
    return {
        "oidc_provider": {"arn": d.provider_arn, **oidc_provider(d)},
        "role": role,
        "bucket": {
            "name": d.bucket,
            "policy": bucket_policy(d),
            "public_access_block": public_access_block(d),
            "ownership_controls": ownership_controls(d),
            "lifecycle": lifecycle(d),
            "versioning": "Enabled" if d.versioning else None,
            "access_logging": access_logging(d),
        },
        "store_url": d.store_url(),
    }


def canonical(doc: Any) -> Any:
    """Order-free, singleton-free form: IAM may return ``["x"]`` as ``"x"`` and reorder lists."""
    if isinstance(doc, dict):
        return {k: canonical(v) for k, v in sorted(doc.items())}
    if isinstance(doc, list):
        items = [canonical(v) for v in doc]
        if len(items) == 1:
            return items[0]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return doc
