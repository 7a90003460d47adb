"""The ``role-per-tenant`` strategy: one small IAM role per wallet (the RGW default).

Why: with ``per-tenant`` every tenant's inline policy sits on one shared role, and RGW loads
the whole role (all N policies) on every request: ~37 µs of gateway CPU per onboarded tenant
per request, and every onboard/offboard rewrites that one object (and concurrent writers lose
each other's changes inside RGW). Here each wallet gets its own role, so

* a request loads one role with one small policy, whatever the number of tenants;
* onboard/offboard create/delete one wallet's role; writers of different wallets never touch
  the same IAM object, so nothing they do can be lost or undone by another;
* the trust policy admits only that wallet's token (``sub`` and a single-valued, exact wallet
  tag), so a token whose tag claim lists several wallets, or an upper-case one, is refused by
  STS (measured on RGW 16.2: ``ForAllValues:StringEquals`` on ``aws:RequestTag`` refuses a
  multi-valued tag; plain ``StringEquals`` alone would accept it when any value matches).

Tenants open ``role_arn=arn:aws:iam::ACCOUNT:role/<role_name>-{wallet}``; the driver fills in
its wallet. Documents here are pure data; ``TenantRoles`` applies them with admin keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from portable_creds.names import validate_wallet

from ..errormap import SDK_ERRORS, error_code, http_status, map_botocore_error, map_client_error
from . import policies as P

T = TypeVar("T")
TENANT_ROLE_POLICY = "agentkeys-tenant"
WALLET_PLACEHOLDER = "{wallet}"
WALLET_LEN = 42
ROLE_NAME_MAX = 64
"""IAM's and RGW's limit on role names; the tenant role name is ``<role_name>-<wallet>``."""
SUB_PREFIX = "agentkeys:agent:"
"""The broker's ``sub`` claim is ``agentkeys:agent:<wallet_lc>`` (agentKeys upstream §6)."""


def max_base_name() -> int:
    return ROLE_NAME_MAX - WALLET_LEN - 1


def role_name(d: P.Deployment, wallet: str) -> str:
    return f"{d.role_name}-{validate_wallet(wallet)}"


def role_arn(d: P.Deployment, wallet: str) -> str:
    return f"arn:aws:iam::{d.account_id}:role/{role_name(d, wallet)}"


def role_arn_template(d: P.Deployment) -> str:
    """What every tenant puts in its URL; the driver substitutes its own wallet."""
    return f"arn:aws:iam::{d.account_id}:role/{d.role_name}-{WALLET_PLACEHOLDER}"


def wallet_of(d: P.Deployment, name: str) -> str | None:
    """The wallet a role of this deployment belongs to, or ``None`` for any other role."""
    head = f"{d.role_name}-"
    if not name.startswith(head) or len(name) != len(head) + WALLET_LEN:
        return None
    try:
        return validate_wallet(name[len(head) :])
    except ValueError:
        return None


def trust_policy(d: P.Deployment, wallet: str) -> dict[str, Any]:
    """Only this wallet's tokens: audience, ``sub``, and exactly one wallet tag equal to it."""
    w = validate_wallet(wallet)
    tag = f"aws:RequestTag/{P.TAG_KEY}"
    condition: dict[str, Any] = {
        "StringEquals": {
            d.audience_key: d.audience,
            f"{d.provider_host}:sub": SUB_PREFIX + w,
            tag: w,
        },
        # Every value of the (possibly multi-valued) tag must be this wallet: refuses a token
        # whose tag claim lists other wallets too. StringEquals is case-sensitive, so an
        # upper-case wallet is refused as well.
        "ForAllValues:StringEquals": {tag: w},
    }
    if d.flavor == "aws":
        condition["Null"] = {tag: "false"}
    return {
        "Version": P.VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": d.provider_arn},
                "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"],
                "Condition": condition,
            }
        ],
    }


def permission_policy(d: P.Deployment, wallet: str) -> dict[str, Any]:
    """The wallet's prefix, written literally; no tag condition is needed (the role is the
    wallet's own), so nothing in a session's tags can widen it."""
    w = validate_wallet(wallet)
    return {"Version": P.VERSION, "Statement": P._tenant_statements(d, w, None)}


def render_role(d: P.Deployment, wallet: str) -> dict[str, Any]:
    """One tenant role in ``deployed()``'s shape."""
    return {
        "name": role_name(d, wallet),
        "arn": role_arn(d, wallet),
        "max_session_duration": d.max_session_duration,
        "trust_policy": trust_policy(d, wallet),
        "inline_policies": {TENANT_ROLE_POLICY: permission_policy(d, wallet)},
    }


def render_roles(d: P.Deployment, wallets: list[str]) -> dict[str, Any]:
    return {w: render_role(d, w) for w in sorted(validate_wallet(w) for w in wallets)}


# ---------------------------------------------------------------------- IAM operations
def _call(what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except ClientError as exc:
        raise map_client_error(exc, what=what) from None
    except SDK_ERRORS as exc:
        raise map_botocore_error(exc, what=what) from None


def _absent(exc: ClientError) -> bool:
    return error_code(exc) in ("NoSuchEntity", "404") or http_status(exc) == 404


def _conflict(exc: ClientError) -> bool:
    return error_code(exc) in ("DeleteConflict", "EntityAlreadyExists") or http_status(exc) == 409


class Raced(Exception):
    """Another writer changed the same role between two of our calls; settle again."""


def _raced_call(what: str, fn: Callable[[], T]) -> T:
    """A call on a role that another writer may be deleting or creating right now."""
    try:
        return fn()
    except ClientError as exc:
        if _absent(exc) or _conflict(exc):
            raise Raced(what) from None
        raise map_client_error(exc, what=what) from None
    except SDK_ERRORS as exc:
        raise map_botocore_error(exc, what=what) from None


class TenantRoles:
    """Create, read and delete tenant roles with the administrator's IAM client.

    Every operation is idempotent and checks the live state first, so re-running it (after a
    crash, or when a concurrent writer got there first) converges instead of failing.
    """

    def __init__(self, d: P.Deployment, iam: Any) -> None:
        self.d = d
        self.iam = iam

    def get(self, wallet: str) -> dict[str, Any] | None:
        name = role_name(self.d, wallet)
        try:
            got: dict[str, Any] = self.iam.get_role(RoleName=name)
        except ClientError as exc:
            if _absent(exc):
                return None
            raise map_client_error(exc, what=f"get role {name}") from None
        except SDK_ERRORS as exc:
            raise map_botocore_error(exc, what=f"get role {name}") from None
        return got

    def ensure(self, wallet: str) -> bool:
        """Role present with exactly the rendered documents; ``True`` if anything changed."""
        d = self.d
        name = role_name(d, wallet)
        trust = P.compact(trust_policy(d, wallet))
        changed = False
        if self.get(wallet) is None:
            try:
                self.iam.create_role(
                    RoleName=name,
                    AssumeRolePolicyDocument=trust,
                    MaxSessionDuration=d.max_session_duration,
                    Description=f"portable-creds tenant role of {validate_wallet(wallet)}",
                )
                changed = True
            except ClientError as exc:
                if error_code(exc) != "EntityAlreadyExists":
                    raise map_client_error(exc, what=f"create role {name}") from None
            except SDK_ERRORS as exc:
                raise map_botocore_error(exc, what=f"create role {name}") from None
        if not changed:
            _raced_call(
                f"update trust policy of {name}",
                lambda: self.iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust),
            )
        _raced_call(
            f"put role policy {TENANT_ROLE_POLICY} on {name}",
            lambda: self.iam.put_role_policy(
                RoleName=name,
                PolicyName=TENANT_ROLE_POLICY,
                PolicyDocument=P.compact(permission_policy(d, wallet)),
            ),
        )
        return changed

    def remove(self, wallet: str) -> bool:
        """Delete the wallet's role (its inline policies first); ``False`` if it was absent.

        Deleting the permission policy first revokes access even if the role deletion then
        fails: live sessions lose access on their next request (RGW re-reads the role).
        """
        name = role_name(self.d, wallet)
        if self.get(wallet) is None:
            return False
        for policy in self._policy_names(name):
            try:
                self.iam.delete_role_policy(RoleName=name, PolicyName=policy)
            except ClientError as exc:
                if not _absent(exc):
                    raise map_client_error(exc, what=f"delete policy {policy} of {name}") from None
            except SDK_ERRORS as exc:
                raise map_botocore_error(exc, what=f"delete policy {policy} of {name}") from None
        try:
            self.iam.delete_role(RoleName=name)
        except ClientError as exc:
            if _conflict(exc):  # a concurrent onboard put a policy back meanwhile
                raise Raced(f"delete role {name}") from None
            if not _absent(exc):
                raise map_client_error(exc, what=f"delete role {name}") from None
        except SDK_ERRORS as exc:
            raise map_botocore_error(exc, what=f"delete role {name}") from None
        return True

    def _policy_names(self, name: str) -> list[str]:
        names: list[str] = []
        marker: str | None = None
        while True:
            kwargs: dict[str, Any] = {"RoleName": name}
            if marker:
                kwargs["Marker"] = marker
            try:
                page: dict[str, Any] = self.iam.list_role_policies(**kwargs)
            except ClientError as exc:
                if _absent(exc):
                    return names
                raise map_client_error(exc, what=f"list policies of {name}") from None
            except SDK_ERRORS as exc:
                raise map_botocore_error(exc, what=f"list policies of {name}") from None
            names.extend(page.get("PolicyNames", []))
            marker = page.get("Marker") if page.get("IsTruncated") else None
            if not marker:
                return names

    def wallets(self) -> list[str]:
        """Wallets that have a role of this deployment (one ListRoles walk)."""
        found: list[str] = []
        marker: str | None = None
        while True:
            kwargs: dict[str, Any] = {}
            if marker:
                kwargs["Marker"] = marker
            try:
                page: dict[str, Any] = self.iam.list_roles(**kwargs)
            except ClientError as exc:
                if _absent(exc):  # RGW 16.2 answers 404 NoSuchEntity when there are no roles
                    return sorted(set(found))
                raise map_client_error(exc, what="list roles") from None
            except SDK_ERRORS as exc:
                raise map_botocore_error(exc, what="list roles") from None
            for role in page.get("Roles", []):
                w = wallet_of(self.d, str(role.get("RoleName", "")))
                if w is not None:
                    found.append(w)
            marker = page.get("Marker") if page.get("IsTruncated") else None
            if not marker:
                return sorted(set(found))

    def deployed(self, wallet: str, doc: Any) -> dict[str, Any] | None:
        """The live role in ``render_role``'s shape; ``doc`` decodes IAM's policy text."""
        got = self.get(wallet)
        if got is None:
            return None
        r = got["Role"]
        name = role_name(self.d, wallet)
        policies: dict[str, Any] = {}
        for policy in self._policy_names(name):
            try:
                raw = self.iam.get_role_policy(RoleName=name, PolicyName=policy)
            except ClientError as exc:
                if _absent(exc):
                    continue
                raise map_client_error(exc, what=f"get policy {policy} of {name}") from None
            policies[policy] = doc(raw["PolicyDocument"])
        return {
            "name": name,
            "arn": r.get("Arn"),
            "max_session_duration": int(r.get("MaxSessionDuration") or 3600),
            "trust_policy": doc(r["AssumeRolePolicyDocument"]),
            "inline_policies": policies,
        }
