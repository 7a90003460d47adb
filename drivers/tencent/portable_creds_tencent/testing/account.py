"""The double's state: one Tencent account (owner UIN + APPID), its CAM objects, STS sessions
and COS buckets. Everything is guarded by one lock; the HTTP layers only read and mutate it
through these methods.

Two clocks: signature freshness (COS ``q-sign-time``, TC3 ``X-TC-Timestamp``) is checked against
the wall clock, because the official SDKs stamp requests with it; credential and OIDC token
expiry are checked against ``now()``, which tests move forward with ``advance()`` instead of
sleeping.
"""

from __future__ import annotations

import secrets
import string
import threading
import time
from collections.abc import Sequence
from typing import Literal

import attrs

from .cam_eval import Statement, parse_policy

_ALNUM = string.ascii_letters + string.digits


def _rand(n: int, alphabet: str = _ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def new_request_id() -> str:
    return f"{_rand(8).lower()}-{_rand(4).lower()}-{_rand(4).lower()}-{_rand(12).lower()}"


@attrs.frozen(repr=False)
class AccessKey:
    """A permanent API key of the root account or of a CAM user."""

    secret_id: str
    secret_key: str
    uin: str

    def __repr__(self) -> str:
        return f"AccessKey(secret_id={self.secret_id!r}, uin={self.uin!r}, secret_key=<hidden>)"


@attrs.define
class User:
    uin: str
    name: str
    policy_ids: list[int] = attrs.Factory(list)


@attrs.define
class Policy:
    policy_id: int
    name: str
    document: str
    description: str = ""


@attrs.define
class Role:
    role_id: str
    name: str
    trust_document: str
    session_duration: int
    description: str = ""
    policy_ids: list[int] = attrs.Factory(list)
    add_time: str = ""


@attrs.define
class OidcConfig:
    name: str
    identity_url: str
    identity_key: str
    client_ids: list[str]
    description: str = ""


@attrs.define(repr=False)
class Session:
    """Temporary credentials issued by STS."""

    secret_id: str
    secret_key: str
    token: str
    expires_at: int
    role: Role
    session_name: str
    session_policy: tuple[Statement, ...] | None
    session_policy_text: str | None
    tags: tuple[tuple[str, str], ...]
    via: Literal["AssumeRole", "AssumeRoleWithWebIdentity"]

    def __repr__(self) -> str:
        return f"Session(role={self.role.name!r}, session={self.session_name!r}, via={self.via})"


@attrs.define
class CosObject:
    data: bytes
    etag: str
    last_modified: float
    content_type: str
    meta: dict[str, str]
    tags: list[tuple[str, str]] = attrs.Factory(list)


@attrs.define
class Bucket:
    name: str
    objects: dict[str, CosObject] = attrs.Factory(dict)
    policy: str | None = None
    lifecycle: bytes | None = None
    logging: bytes | None = None
    tagging: bytes | None = None
    versioning: str | None = None
    """``Enabled``/``Suspended`` once versioning was ever turned on, else None."""


Principal = Literal["root", "user", "session", "anonymous"]


@attrs.frozen
class Caller:
    """Who a verified request came from."""

    kind: Principal
    uin: str
    user: User | None = None
    session: Session | None = None

    def principal_names(self, owner: str) -> list[str]:
        """The names a policy ``principal`` may use for this caller."""
        names = ["qcs::cam::anyone:anyone"]
        if self.kind == "root":
            names += [f"qcs::cam::uin/{owner}:uin/{owner}", f"qcs::cam::uin/{owner}:root"]
        elif self.kind == "user":
            names += [f"qcs::cam::uin/{owner}:uin/{self.uin}", f"qcs::cam::uin/{owner}:root"]
        elif self.kind == "session" and self.session is not None:
            names += [
                f"qcs::cam::uin/{owner}:roleName/{self.session.role.name}",
                f"qcs::cam::uin/{owner}:roleId/{self.session.role.role_id}",
                f"qcs::sts:{owner}:assumed-role/{self.session.role.role_id}/"
                f"{self.session.session_name}",
            ]
        return names


class Account:
    """One Tencent account as seen by the double."""

    def __init__(self, owner_uin: str, appid: str, region: str) -> None:
        self.owner_uin = owner_uin
        self.appid = appid
        self.region = region
        self.lock = threading.RLock()
        self._offset = 0.0
        self.root_key = AccessKey("AKID" + _rand(32), _rand(32), owner_uin)
        self.keys: dict[str, AccessKey] = {self.root_key.secret_id: self.root_key}
        self.users: dict[str, User] = {}
        self.policies: dict[int, Policy] = {}
        self.roles: dict[str, Role] = {}
        self.oidc: dict[str, OidcConfig] = {}
        self.sessions: dict[str, Session] = {}
        self.buckets: dict[str, Bucket] = {}
        self.issued: list[Session] = []
        self._next_policy = 100000
        self._next_uin = int(owner_uin) + 1

    # clocks -------------------------------------------------------------------------------
    def now(self) -> float:
        """Credential/token clock (wall clock plus whatever tests advanced it by)."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        with self.lock:
            self._offset += seconds

    # identities ---------------------------------------------------------------------------
    def add_user(self, name: str) -> AccessKey:
        with self.lock:
            uin = str(self._next_uin)
            self._next_uin += 1
            self.users[uin] = User(uin=uin, name=name)
            key = AccessKey("AKID" + _rand(32), _rand(32), uin)
            self.keys[key.secret_id] = key
            return key

    def user_by_name(self, name: str) -> User | None:
        return next((u for u in self.users.values() if u.name == name), None)

    def identity_statements(self, caller: Caller) -> list[Statement] | None:
        """Identity policies of ``caller``; ``None`` for root (implicitly allowed)."""
        if caller.kind == "root":
            return None
        ids: Sequence[int] = ()
        if caller.kind == "user" and caller.user is not None:
            ids = caller.user.policy_ids
        elif caller.kind == "session" and caller.session is not None:
            ids = caller.session.role.policy_ids
        out: list[Statement] = []
        for pid in ids:
            pol = self.policies.get(pid)
            if pol is not None:
                out.extend(parse_policy(pol.document))
        return out

    # CAM objects --------------------------------------------------------------------------
    def create_policy(self, name: str, document: str, description: str = "") -> Policy:
        parse_policy(document)
        with self.lock:
            self._next_policy += 1
            pol = Policy(self._next_policy, name, document, description)
            self.policies[pol.policy_id] = pol
            return pol

    def policy_by_name(self, name: str) -> Policy | None:
        return next((p for p in self.policies.values() if p.name == name), None)

    def role_by_name(self, name: str) -> Role | None:
        return self.roles.get(name)

    def role_by_id(self, role_id: str) -> Role | None:
        return next((r for r in self.roles.values() if r.role_id == role_id), None)

    def role_arn(self, role: Role) -> str:
        return f"qcs::cam::uin/{self.owner_uin}:roleName/{role.name}"

    def issue_session(
        self,
        role: Role,
        *,
        session_name: str,
        duration: int,
        policy_text: str | None,
        tags: tuple[tuple[str, str], ...],
        via: Literal["AssumeRole", "AssumeRoleWithWebIdentity"],
    ) -> Session:
        with self.lock:
            sess = Session(
                secret_id="AKID" + _rand(32),
                secret_key=_rand(32),
                token=_rand(96),
                expires_at=int(self.now()) + duration,
                role=role,
                session_name=session_name,
                session_policy=parse_policy(policy_text) if policy_text else None,
                session_policy_text=policy_text,
                tags=tags,
                via=via,
            )
            self.sessions[sess.secret_id] = sess
            self.issued.append(sess)
            return sess

    # COS ----------------------------------------------------------------------------------
    def full_bucket_name(self, name: str) -> str:
        return name if name.endswith(f"-{self.appid}") else f"{name}-{self.appid}"

    def create_bucket(self, name: str) -> Bucket:
        full = self.full_bucket_name(name)
        with self.lock:
            bucket = self.buckets.setdefault(full, Bucket(full))
            return bucket

    def cos_resource(self, bucket: str, key: str | None) -> str:
        base = f"qcs::cos:{self.region}:uid/{self.appid}:{bucket}/"
        return base if key is None else base + key
