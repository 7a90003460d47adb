"""Scoped stores on Ceph RGW: the session policy on ``AssumeRoleWithWebIdentity`` is what
refuses out-of-scope access, through the real OIDC -> STS -> S3 flow.

Every refusal here comes from RGW (federated S3 stores have no client-side check), and the
bare-boto3 tests use nothing of ours but the exported environment variables.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from portable_creds_aws.objectstore import S3ObjectStore

from portable_creds.errors import AccessDenied, NotFound
from portable_creds.names import object_key
from portable_creds.store import CredentialStore

from .conftest import RgwDeployment

pytestmark = pytest.mark.rgw


@pytest.fixture
def tenant_store(
    rgw_deployment: RgwDeployment, tenant: Callable[[], str]
) -> Iterator[CredentialStore]:
    store = rgw_deployment.store(tenant())
    store.put("allowed", b"in-scope value")
    store.put("denied", b"out-of-scope value")
    yield store
    store.close()


def _objects(store: CredentialStore) -> S3ObjectStore:
    assert isinstance(store.objects, S3ObjectStore)
    return store.objects


def test_federated_store_declares_cloud_scoping(tenant_store: CredentialStore) -> None:
    assert tenant_store.objects.capabilities.scoped_credentials == "cloud"
    scoped = tenant_store.scoped(["allowed"])
    assert scoped.objects.capabilities.scoped_credentials == "cloud"
    assert scoped.objects.capabilities.server_side_isolation


def test_read_only_scope_is_enforced_by_rgw(tenant_store: CredentialStore) -> None:
    scoped = tenant_store.scoped(["allowed", "absent"], read_only=True)
    objs = _objects(scoped)
    assert objs.provider is not None and objs.provider.policy is not None
    assert scoped.get("allowed").reveal() == b"in-scope value"
    with pytest.raises(NotFound):  # in scope but absent: told apart from forbidden
        scoped.get("absent")
    assert scoped.list() == ["allowed"]  # probes the scope; listing itself is not allowed

    key_allowed, key_denied = tenant_store.key_for("allowed"), tenant_store.key_for("denied")
    attacks: dict[str, Callable[[], object]] = {
        "get other service": lambda: objs.get(key_denied),
        "head other service": lambda: objs.head(key_denied),
        "put other service": lambda: objs.put(key_denied, b"x"),
        "delete other service": lambda: objs.delete(key_denied),
        "put in scope (read-only)": lambda: objs.put(key_allowed, b"x"),
        "delete in scope (read-only)": lambda: objs.delete(key_allowed),
        "list tenant prefix": lambda: list(objs.list(f"bots/{tenant_store.wallet}/")),
        "list exact key": lambda: list(objs.list(key_allowed)),
        "copy other into scope": lambda: objs.copy(key_denied, key_allowed),
    }
    for what, attack in attacks.items():
        with pytest.raises(AccessDenied, match="scoped credentials"):
            attack()
            pytest.fail(f"{what}: RGW allowed it")
    # Nothing changed, and the unscoped store still has its full access.
    assert tenant_store.get("allowed").reveal() == b"in-scope value"
    assert tenant_store.get("denied").reveal() == b"out-of-scope value"
    assert tenant_store.list() == ["allowed", "denied"]


def test_read_write_scope_writes_only_its_services(tenant_store: CredentialStore) -> None:
    scoped = tenant_store.scoped(["allowed", "fresh"], read_only=False)
    scoped.put("allowed", b"rotated")
    scoped.put("fresh", b"new")
    assert tenant_store.get("allowed").reveal() == b"rotated"
    assert tenant_store.get("fresh").reveal() == b"new"
    scoped.delete("fresh")
    assert not tenant_store.exists("fresh")
    objs = _objects(scoped)
    with pytest.raises(AccessDenied):
        objs.put(tenant_store.key_for("denied"), b"x")
    with pytest.raises(AccessDenied):
        objs.delete(tenant_store.key_for("denied"))
    with pytest.raises(AccessDenied):
        scoped.get("denied")
    assert tenant_store.get("denied").reveal() == b"out-of-scope value"


def test_a_scoped_store_cannot_be_widened(tenant_store: CredentialStore) -> None:
    objs = _objects(tenant_store.scoped(["allowed"], read_only=True))
    with pytest.raises(AccessDenied, match="widen"):
        objs.scoped([tenant_store.key_for("denied")], read_only=True)
    with pytest.raises(AccessDenied, match="read-only"):
        objs.scoped([tenant_store.key_for("allowed")], read_only=False)
    narrower = objs.scoped([tenant_store.key_for("allowed")], read_only=True)
    assert narrower.get(tenant_store.key_for("allowed")).data  # still works inside the scope


def test_scope_cannot_reach_another_tenant(
    rgw_deployment: RgwDeployment, tenant: Callable[[], str], tenant_store: CredentialStore
) -> None:
    """Even a scope naming B's object gets nothing: the session policy only narrows."""
    b = tenant()
    rgw_deployment.store(b).put("allowed", b"B's value")
    objs = _objects(tenant_store).scoped([object_key(b, "allowed")], read_only=False)
    with pytest.raises(AccessDenied):
        objs.get(object_key(b, "allowed"))
    with pytest.raises(AccessDenied):
        objs.put(object_key(b, "allowed"), b"hijack")
    assert rgw_deployment.store(b).get("allowed").reveal() == b"B's value"


def _bare_s3(env: dict[str, str]) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL_S3"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def _code(fn: Callable[[], object]) -> str:
    try:
        fn()
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "allowed"


def test_exported_credentials_carry_the_scope_to_bare_boto3(
    rgw_deployment: RgwDeployment, tenant_store: CredentialStore
) -> None:
    scoped = tenant_store.scoped(["allowed"], read_only=True)
    env = scoped.objects.exported_credentials()
    assert set(env) == {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CREDENTIAL_EXPIRATION",
        "AWS_ENDPOINT_URL_S3",
        "AWS_REGION",
    }
    assert env["AWS_ENDPOINT_URL_S3"] == rgw_deployment.endpoint.url
    expires = dt.datetime.fromisoformat(env["AWS_CREDENTIAL_EXPIRATION"].replace("Z", "+00:00"))
    assert dt.timedelta(0) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=1, minutes=1)
    # Not the unscoped store's session: a different key with the policy sealed in its token.
    assert (
        env["AWS_ACCESS_KEY_ID"] != tenant_store.objects.exported_credentials()["AWS_ACCESS_KEY_ID"]
    )

    s3 = _bare_s3(env)
    bucket = rgw_deployment.bucket
    allowed, denied = tenant_store.key_for("allowed"), tenant_store.key_for("denied")
    body = s3.get_object(Bucket=bucket, Key=allowed)["Body"].read()
    assert body == _objects(tenant_store).get(allowed).data  # the sealed blob, as stored
    refused = {
        "get": _code(lambda: s3.get_object(Bucket=bucket, Key=denied)),
        "put": _code(lambda: s3.put_object(Bucket=bucket, Key=allowed, Body=b"x")),
        "delete": _code(lambda: s3.delete_object(Bucket=bucket, Key=allowed)),
        "list": _code(lambda: s3.list_objects_v2(Bucket=bucket)),
        "acl": _code(lambda: s3.put_object_acl(Bucket=bucket, Key=allowed, ACL="public-read")),
    }
    assert refused == dict.fromkeys(refused, "AccessDenied")


def test_session_policy_sent_is_exactly_the_scope(tenant_store: CredentialStore) -> None:
    objs = _objects(tenant_store.scoped(["allowed", "denied"], read_only=False))
    assert objs.provider is not None and objs.provider.policy is not None
    (statement,) = json.loads(objs.provider.policy)["Statement"]
    bucket = objs.settings.bucket
    assert statement["Resource"] == [
        f"arn:aws:s3:::{bucket}/{tenant_store.key_for('allowed')}",
        f"arn:aws:s3:::{bucket}/{tenant_store.key_for('denied')}",
    ]
    assert objs.provider.sts_calls == 0  # lazily: no STS call before the first request
    objs.get(tenant_store.key_for("allowed"))
    assert objs.provider.sts_calls == 1


def test_offboarding_ends_a_live_scoped_session(
    rgw_deployment: RgwDeployment, tenant_store: CredentialStore
) -> None:
    """The session policy only intersects with the role's policy, which RGW reads at request
    time: removing the tenant's statements ends even an already exported scoped session."""
    scoped = tenant_store.scoped(["allowed"], read_only=True)
    env = scoped.objects.exported_credentials()
    s3 = _bare_s3(env)
    bucket, key = rgw_deployment.bucket, tenant_store.key_for("allowed")
    assert _code(lambda: s3.get_object(Bucket=bucket, Key=key)) == "allowed"
    rgw_deployment.provisioner.offboard(tenant_store.wallet)
    assert _code(lambda: s3.get_object(Bucket=bucket, Key=key)) == "AccessDenied"
