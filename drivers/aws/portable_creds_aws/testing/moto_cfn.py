"""What moto's CloudFormation lacks for our template, done the way CloudFormation does it.

moto (5.x) deploys ``AWS::IAM::Role`` with its inline ``Policies``, but has no handler for
``AWS::IAM::OIDCProvider`` or ``AWS::S3::BucketPolicy`` (they are skipped with a warning),
creates an ``AWS::S3::Bucket`` with only its encryption and tags, and stores a role's inline
``PolicyDocument`` objects in a form its own GetRolePolicy cannot serialise as JSON.

``install(endpoint)`` adds the missing parts to the in-process moto server
(``ThreadedMotoServer``): each property is applied through the public S3/IAM API of that same
server (botocore validates every request against AWS's service model), using the property
names of the CloudFormation resource schemas that cfn-lint ships and checks the template
against. So after a stack is created, the S3 and IAM APIs show what real CloudFormation would
have configured, and ``verify`` reads it back like any deployment.

Test support only: it changes moto's behaviour process-wide (idempotently).
"""

from __future__ import annotations

from typing import Any

try:
    import boto3
except ImportError as exc:  # an optional dependency: say which extra brings it
    raise ImportError(
        "portable_creds_aws.testing.moto_cfn needs boto3 and moto: "
        "pip install 'portable-creds-aws[conformance]'"
    ) from exc

_state: dict[str, str] = {}


def _client(service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=_state["endpoint"],
        region_name=_state["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """``AWS::S3::Bucket`` Rule -> S3 API ``LifecycleRule`` (the subset the template uses)."""
    out: dict[str, Any] = {
        "ID": rule["Id"],
        "Status": rule["Status"],
        "Filter": {"Prefix": rule.get("Prefix", "")},
    }
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if rule.get("ExpiredObjectDeleteMarker") in (True, "true"):
        out["Expiration"] = {"ExpiredObjectDeleteMarker": True}
    if "NoncurrentVersionExpiration" in rule:
        days = rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(days)}
    return out


def _bool(value: Any) -> bool:
    return value in (True, "true", "True")


def _apply_bucket_properties(bucket: str, props: dict[str, Any]) -> None:
    s3 = _client("s3")
    pab = props.get("PublicAccessBlockConfiguration")
    if pab is not None:
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={k: _bool(v) for k, v in pab.items()},
        )
    ownership = props.get("OwnershipControls")
    if ownership is not None:
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=ownership)
    versioning = props.get("VersioningConfiguration")
    if versioning is not None:
        s3.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": versioning["Status"]}
        )
    lifecycle = props.get("LifecycleConfiguration")
    if lifecycle is not None:
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in lifecycle["Rules"]]},
        )
    logging_cfg = props.get("LoggingConfiguration")
    if logging_cfg is not None:
        s3.put_bucket_logging(
            Bucket=bucket,
            BucketLoggingStatus={
                "LoggingEnabled": {
                    "TargetBucket": logging_cfg["DestinationBucketName"],
                    "TargetPrefix": logging_cfg.get("LogFilePrefix", ""),
                }
            },
        )


def install(endpoint: str, region: str = "us-east-1") -> None:
    """Teach the in-process moto server's CloudFormation the parts it lacks (idempotent)."""
    import json

    from moto.cloudformation import parsing
    from moto.core.common_models import CloudFormationModel
    from moto.iam.models import Role
    from moto.s3.models import FakeBucket

    _state.update(endpoint=endpoint, region=region)
    if _state.get("installed"):
        return

    original = FakeBucket.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create_bucket(
        cls: Any, /, resource_name: str, cloudformation_json: Any, account_id: str,
        region_name: str, **kwargs: Any,
    ) -> Any:  # fmt: skip
        bucket = original(cls, resource_name, cloudformation_json, account_id, region_name,
                          **kwargs)  # fmt: skip
        _apply_bucket_properties(resource_name, cloudformation_json.get("Properties", {}))
        return bucket

    FakeBucket.create_from_cloudformation_json = classmethod(create_bucket)  # type: ignore[method-assign,assignment]

    # moto stores a role's inline ``PolicyDocument`` objects as Python dicts and later answers
    # GetRolePolicy with their repr (not JSON); CloudFormation hands IAM JSON text.
    role_original = Role.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create_role(
        cls: Any, /, resource_name: str, cloudformation_json: Any, account_id: str,
        region_name: str, **kwargs: Any,
    ) -> Any:  # fmt: skip
        for policy in cloudformation_json.get("Properties", {}).get("Policies", []):
            if not isinstance(policy.get("PolicyDocument"), str):
                policy["PolicyDocument"] = json.dumps(policy["PolicyDocument"])
        return role_original(cls, resource_name, cloudformation_json, account_id, region_name,
                             **kwargs)  # fmt: skip

    Role.create_from_cloudformation_json = classmethod(create_role)  # type: ignore[method-assign,assignment]

    class _Applied:
        """Shared by the handlers below, which must be *direct* subclasses of moto's
        ``CloudFormationModel``: moto finds handlers through ``__subclasses__()``."""

        def __init__(self, physical_id: str) -> None:
            self.physical_resource_id = physical_id

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr == "Arn"

        def get_cfn_attribute(self, attribute_name: str) -> str:
            return self.physical_resource_id

        @classmethod
        def update_from_cloudformation_json(cls, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError("stack updates are not needed by the tests")

        @classmethod
        def delete_from_cloudformation_json(cls, *args: Any, **kwargs: Any) -> None:
            return None

    class OidcProvider(_Applied, CloudFormationModel):
        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::IAM::OIDCProvider"

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: Any, account_id: str,
            region_name: str, **kwargs: Any,
        ) -> OidcProvider:  # fmt: skip
            props = cloudformation_json["Properties"]
            request: dict[str, Any] = {"Url": props["Url"],
                                       "ClientIDList": props.get("ClientIdList", [])}
            if props.get("ThumbprintList"):
                request["ThumbprintList"] = props["ThumbprintList"]
            arn = _client("iam").create_open_id_connect_provider(**request)[
                "OpenIDConnectProviderArn"
            ]
            return cls(arn)

    class BucketPolicy(_Applied, CloudFormationModel):
        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::S3::BucketPolicy"

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: Any, account_id: str,
            region_name: str, **kwargs: Any,
        ) -> BucketPolicy:  # fmt: skip
            props = cloudformation_json["Properties"]
            _client("s3").put_bucket_policy(
                Bucket=props["Bucket"], Policy=json.dumps(props["PolicyDocument"])
            )
            return cls(props["Bucket"])

    for cache in (parsing.get_model_list, parsing.get_model_map):
        cache.cache_clear()
    assert {"AWS::IAM::OIDCProvider", "AWS::S3::BucketPolicy"} <= set(parsing.get_model_map())
    _state["installed"] = "yes"
