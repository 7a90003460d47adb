"""The provisioner's deployment as infrastructure as code: a CloudFormation template, or
Terraform's JSON syntax (``.tf.json``).

Operators on AWS deploy with CloudFormation or Terraform, not with a Python CLI. Both renderings
are built from the very documents ``apply`` writes and ``verify`` compares (``policies``), so a
stack deployed from them is the same deployment: ``verify`` reports no drift against it
(tests/aws/test_render_iac.py deploys the template into moto's CloudFormation and runs
``verify``). Pure: no network, no SDK.

``--kms-key``: Terraform gets an ``aws_kms_key_policy`` on the operator's key. CloudFormation
can set a key policy only on an ``AWS::KMS::Key`` the stack creates (its ``KeyPolicy``
property), not on an existing key, so the template carries the policy in ``Metadata`` for
``admin s3 apply`` (or ``aws kms put-key-policy``) to put.

What neither rendering holds: per-tenant inline policies (``--strategy per-tenant``) and the
offboarding deny list, which the CLI's ``onboard``/``offboard`` write after deployment; keep
``tag-variable`` (the AWS default) when the stack must own the role completely.
"""

from __future__ import annotations

import json
from typing import Any

from portable_creds.errors import ConfigurationError

from . import policies as P

FORMATS = ("json", "cloudformation", "terraform")
ROLE_DESCRIPTION = "portable-creds data role: tenants via OIDC web identity"
CFN_VERSION = "2010-09-09"
KMS_METADATA = "PortableCredsKmsKeyPolicy"


def _require_aws(d: P.Deployment, what: str) -> None:
    if d.flavor != "aws":
        raise ConfigurationError(
            f"{what} describes AWS resources; --flavor rgw is deployed with 'apply' (Ceph RGW "
            "has no CloudFormation or Terraform provider of its own)"
        )
    if d.strategy == "role-per-tenant":
        raise ConfigurationError(
            f"{what} renders the one shared data role; --strategy role-per-tenant creates a role "
            "per wallet at onboarding ('admin s3 onboard'), which a static template cannot "
            "hold: use --strategy tag-variable (the AWS default) for CloudFormation/Terraform"
        )
    if d.revocation == "sharded":
        raise ConfigurationError(
            f"{what} renders the one shared data role; --revocation sharded deploys 256 shard "
            "roles with managed deny policies, which is not rendered yet: deploy it with 'apply'"
        )


def _role_policies(d: P.Deployment, tenants: list[str] | None) -> dict[str, Any]:
    return dict(P.render(d, tenants)["role"]["inline_policies"])


# ---------------------------------------------------------------------- CloudFormation
def _cfn_lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A ``policies.lifecycle`` rule (S3 API shape) in ``AWS::S3::Bucket`` Rule syntax."""
    out: dict[str, Any] = {
        "Id": rule["ID"],
        "Status": rule["Status"],
        "Prefix": rule["Filter"]["Prefix"],
    }
    expiration = rule.get("Expiration", {})
    if "Days" in expiration:
        out["ExpirationInDays"] = expiration["Days"]
    if expiration.get("ExpiredObjectDeleteMarker"):
        out["ExpiredObjectDeleteMarker"] = True
    if "NoncurrentVersionExpiration" in rule:
        out["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
        }
    return out


def cloudformation(d: P.Deployment, tenants: list[str] | None = None) -> dict[str, Any]:
    """An ``AWS::`` template with the bucket, its policy, the OIDC provider and the data role.

    The bucket is kept when the stack is deleted or replaces it (``DeletionPolicy`` and
    ``UpdateReplacePolicy`` ``Retain``): it holds every tenant's sealed credentials.
    """
    _require_aws(d, "a CloudFormation template")
    bucket_props: dict[str, Any] = {
        "BucketName": d.bucket,
        "PublicAccessBlockConfiguration": P.public_access_block(d),
    }
    ownership = P.ownership_controls(d)
    if ownership is not None:
        bucket_props["OwnershipControls"] = ownership
    if d.versioning:
        bucket_props["VersioningConfiguration"] = {"Status": "Enabled"}
    lifecycle = P.lifecycle(d)
    if lifecycle is not None:
        bucket_props["LifecycleConfiguration"] = {
            "Rules": [_cfn_lifecycle_rule(r) for r in lifecycle["Rules"]]
        }
    if d.log_bucket is not None:
        bucket_props["LoggingConfiguration"] = {
            "DestinationBucketName": d.log_bucket,
            "LogFilePrefix": d.log_prefix,
        }
    provider: dict[str, Any] = {"Url": d.issuer, "ClientIdList": [d.audience]}
    if d.thumbprints:
        provider["ThumbprintList"] = list(d.thumbprints)
    role_props: dict[str, Any] = {
        "RoleName": d.role_name,
        "Description": ROLE_DESCRIPTION,
        "MaxSessionDuration": d.max_session_duration,
        "AssumeRolePolicyDocument": P.trust_policy(d),
    }
    inline = _role_policies(d, tenants)
    if inline:
        role_props["Policies"] = [
            {"PolicyName": name, "PolicyDocument": doc} for name, doc in sorted(inline.items())
        ]
    resources: dict[str, Any] = {
        "CredentialBucket": {
            "Type": "AWS::S3::Bucket",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": bucket_props,
        },
        "OidcProvider": {"Type": "AWS::IAM::OIDCProvider", "Properties": provider},
        "DataRole": {
            "Type": "AWS::IAM::Role",
            # The trust policy names the provider's ARN: it must exist first.
            "DependsOn": "OidcProvider",
            "Properties": role_props,
        },
    }
    policy = P.bucket_policy(d)
    if policy is not None:
        resources["CredentialBucketPolicy"] = {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {"Bucket": {"Ref": "CredentialBucket"}, "PolicyDocument": policy},
        }
    template: dict[str, Any] = {
        "AWSTemplateFormatVersion": CFN_VERSION,
        "Description": f"portable-creds credential store {d.bucket} (rendered by "
        "'portable-creds admin s3 render --format cloudformation')",
        "Resources": resources,
        "Outputs": {
            "DataRoleArn": {"Value": {"Fn::GetAtt": ["DataRole", "Arn"]}},
            "StoreUrl": {"Value": d.store_url()},
        },
    }
    if d.kms_key is not None:
        from .kms_policy import key_policy

        template["Metadata"] = {
            KMS_METADATA: {
                "KeyArn": d.kms_key,
                "KeyPolicy": key_policy(d),
                "Note": "CloudFormation sets a key policy only on a key the stack creates: put "
                "this one on the existing key with 'portable-creds admin s3 ... --kms-key ARN "
                "apply' (or 'aws kms put-key-policy --policy-name default') after the stack",
            }
        }
    return template


# ---------------------------------------------------------------------- Terraform
def _tf_lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": rule["ID"],
        "status": rule["Status"],
        "filter": {"prefix": rule["Filter"]["Prefix"]},
    }
    expiration = rule.get("Expiration", {})
    if "Days" in expiration:
        out["expiration"] = {"days": expiration["Days"]}
    if expiration.get("ExpiredObjectDeleteMarker"):
        out["expiration"] = {"expired_object_delete_marker": True}
    if "NoncurrentVersionExpiration" in rule:
        out["noncurrent_version_expiration"] = {
            "noncurrent_days": rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
        }
    return out


def terraform(d: P.Deployment, tenants: list[str] | None = None) -> dict[str, Any]:
    """Terraform JSON syntax for the ``hashicorp/aws`` provider (v5 resource split).

    Policies are embedded as JSON strings (``P.compact``), the text ``apply`` sends, escaped
    as Terraform literals.
    """
    _require_aws(d, "a Terraform configuration")
    bucket_ref = "${aws_s3_bucket.credentials.id}"
    pab = P.public_access_block(d)
    resource: dict[str, Any] = {
        "aws_s3_bucket": {"credentials": {"bucket": d.bucket}},
        "aws_s3_bucket_public_access_block": {
            "credentials": {
                "bucket": bucket_ref,
                "block_public_acls": pab["BlockPublicAcls"],
                "ignore_public_acls": pab["IgnorePublicAcls"],
                "block_public_policy": pab["BlockPublicPolicy"],
                "restrict_public_buckets": pab["RestrictPublicBuckets"],
            }
        },
    }
    ownership = P.ownership_controls(d)
    if ownership is not None:
        resource["aws_s3_bucket_ownership_controls"] = {
            "credentials": {
                "bucket": bucket_ref,
                "rule": {"object_ownership": ownership["Rules"][0]["ObjectOwnership"]},
            }
        }
    if d.versioning:
        resource["aws_s3_bucket_versioning"] = {
            "credentials": {"bucket": bucket_ref, "versioning_configuration": {"status": "Enabled"}}
        }
    lifecycle = P.lifecycle(d)
    if lifecycle is not None:
        lc: dict[str, Any] = {
            "bucket": bucket_ref,
            "rule": [_tf_lifecycle_rule(r) for r in lifecycle["Rules"]],
        }
        if d.versioning:
            lc["depends_on"] = ["aws_s3_bucket_versioning.credentials"]
        resource["aws_s3_bucket_lifecycle_configuration"] = {"credentials": lc}
    if d.log_bucket is not None:
        resource["aws_s3_bucket_logging"] = {
            "credentials": {
                "bucket": bucket_ref,
                "target_bucket": d.log_bucket,
                "target_prefix": d.log_prefix,
            }
        }
    policy = P.bucket_policy(d)
    if policy is not None:
        resource["aws_s3_bucket_policy"] = {
            "credentials": {
                "bucket": bucket_ref,
                "policy": _tf_literal(P.compact(policy)),
                "depends_on": ["aws_s3_bucket_public_access_block.credentials"],
            }
        }
    provider: dict[str, Any] = {"url": d.issuer, "client_id_list": [d.audience]}
    if d.thumbprints:
        provider["thumbprint_list"] = list(d.thumbprints)
    resource["aws_iam_openid_connect_provider"] = {"issuer": provider}
    resource["aws_iam_role"] = {
        "data": {
            "name": d.role_name,
            "description": ROLE_DESCRIPTION,
            "max_session_duration": d.max_session_duration,
            "assume_role_policy": _tf_literal(P.compact(P.trust_policy(d))),
            "depends_on": ["aws_iam_openid_connect_provider.issuer"],
        }
    }
    inline = _role_policies(d, tenants)
    if inline:
        resource["aws_iam_role_policy"] = {
            _tf_name(name): {
                "name": name,
                "role": "${aws_iam_role.data.id}",
                "policy": _tf_literal(P.compact(doc)),
            }
            for name, doc in sorted(inline.items())
        }
    if d.kms_key is not None:
        from .kms_policy import key_policy

        resource["aws_kms_key_policy"] = {
            "credentials": {
                "key_id": d.kms_key,
                "policy": _tf_literal(P.compact(key_policy(d))),
                # The policy names the data role: AWS refuses an unknown principal.
                "depends_on": ["aws_iam_role.data"],
            }
        }
    return {
        "terraform": {
            "required_providers": {"aws": {"source": "hashicorp/aws", "version": ">= 5.0"}}
        },
        "resource": resource,
        "output": {
            "data_role_arn": {"value": "${aws_iam_role.data.arn}"},
            "store_url": {"value": d.store_url()},
        },
    }


def _tf_literal(text: str) -> str:
    """``text`` as a literal Terraform string: JSON-syntax strings are templates, so the IAM
    policy variable ``${aws:PrincipalTag/...}`` must be written ``$${...}`` (and ``%{`` as
    ``%%{``) or Terraform would try to interpolate it."""
    return text.replace("${", "$${").replace("%{", "%%{")


def _tf_name(policy_name: str) -> str:
    """A Terraform resource name (letters, digits, ``_``, ``-``; not starting with a digit)."""
    return "policy_" + "".join(c if c.isalnum() or c in "_-" else "_" for c in policy_name)


def render_text(d: P.Deployment, fmt: str) -> str:
    """The ``render --format`` output for the infrastructure-as-code formats."""
    if fmt == "cloudformation":
        return json.dumps(cloudformation(d), indent=2, sort_keys=True)
    if fmt == "terraform":
        return json.dumps(terraform(d), indent=2, sort_keys=True)
    raise ConfigurationError(f"unknown render format {fmt!r}; use one of {', '.join(FORMATS)}")
