"""``tag-variable`` with ``revocation=sharded``: the layout of ``revocation`` made live in IAM.

256 shard roles ``<role_name>-<xx>`` (trust limited to wallets ``0x<xx>*``, the shared
tag-variable isolation policy inline) and, per shard, customer managed policies
``<role_name>-<xx>-offboarded-<n>`` that Deny ``s3:*`` to the offboarded wallets' session tag.

Why stable packing (a wallet, once placed, stays in its policy until it is un-denied) instead
of ``revocation.plan``'s sorted greedy packing: rewriting policies one by one while wallets
*move* between them would open a window in which a moving wallet is in neither, i.e. not
revoked. With stable packing a write only ever adds a wallet to one document or removes it
from the one it is in; capacity is the same (each policy fills to 6,144 characters).

Concurrency: a settle touches one shard only (the wallet's), comparing every recorded wallet
of that shard with the shard's live deny set; writers of other shards share no document. Two
writers of the same shard may overwrite each other's policy version; each re-reads after its
writes (``tenancy._settle``), so the last one restores what the other lost. Racing creates
(``EntityAlreadyExists``) or version-limit errors (``LimitExceeded``, 5 versions per policy)
are ``PortableCredsError`` and ``_settle`` simply goes round again.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from portable_creds.errors import ConfigurationError
from portable_creds.names import validate_wallet

from . import policies as P
from . import revocation as R

if TYPE_CHECKING:
    from .provisioner import Provisioner

TAG_CONDITION = f"aws:PrincipalTag/{P.TAG_KEY}"


def shards() -> list[str]:
    return [f"{i:0{R.SHARD_DIGITS}x}" for i in range(R.SHARDS)]


def policy_name(d: P.Deployment, shard: str, n: int) -> str:
    return f"{R.shard_role_name(d, shard)}-offboarded-{n}"


def policy_arn(d: P.Deployment, name: str) -> str:
    return f"arn:aws:iam::{d.account_id}:policy/{name}"


def _wallets_of(doc: Any) -> list[str]:
    """The denied wallets in one deny document (IAM may return a one-item list as a string)."""
    got = doc["Statement"][0]["Condition"]["StringEquals"][TAG_CONDITION]
    return [got] if isinstance(got, str) else list(got)


def pack(current: dict[int, list[str]], want: Iterable[str]) -> dict[int, list[str]]:
    """The new content of every policy index: kept wallets stay where they are, removed ones
    leave, new ones go to the first policy with room (then a new index). Raises past the
    documented per-role quota instead of dropping a revocation."""
    want_set = set(want)
    out = {n: sorted(w for w in ws if w in want_set) for n, ws in current.items()}
    placed = {w for ws in out.values() for w in ws}
    for w in sorted(want_set - placed):
        cost = len(w) + 3
        for n in range(R.MANAGED_POLICIES_PER_ROLE):
            ws = out.setdefault(n, [])
            if R.size(R.deny_policy(ws)) + cost <= R.MANAGED_POLICY_CHARS:
                ws.append(w)
                ws.sort()
                break
        else:
            raise ConfigurationError(
                f"shard {w[2:4]} would need more than {R.MANAGED_POLICIES_PER_ROLE} deny "
                f"policies ({R.MANAGED_POLICY_CHARS} characters each) attached to its role, "
                "IAM's default quota: raise 'Managed policies per role' (up to 20) first"
            )
    return out


class ShardedRevocation:
    """Apply, read and settle the sharded layout with the administrator's IAM client."""

    def __init__(self, prov: Provisioner) -> None:
        self.p = prov
        self.d = prov.d
        self.iam = prov.iam

    # ------------------------------------------------------------------ apply / verify
    def apply(self) -> list[str]:
        from .calls import _call, _maybe

        d = self.d
        done: list[str] = []
        isolation = P.compact(P.isolation_policy(d))
        for shard in shards():
            name = R.shard_role_name(d, shard)
            trust = P.compact(R.shard_trust_policy(d, shard))
            if _maybe("get role", functools.partial(self.iam.get_role, RoleName=name)) is None:
                _call(
                    f"create role {name}",
                    functools.partial(
                        self.iam.create_role,
                        RoleName=name,
                        AssumeRolePolicyDocument=trust,
                        MaxSessionDuration=d.max_session_duration,
                        Description=f"portable-creds data role, wallets 0x{shard}*",
                    ),
                )
                done.append(f"created role {name}")
            else:
                _call(
                    f"update trust policy {name}",
                    functools.partial(
                        self.iam.update_assume_role_policy, RoleName=name, PolicyDocument=trust
                    ),
                )
            _call(
                f"put role policy {name}",
                functools.partial(
                    self.iam.put_role_policy,
                    RoleName=name,
                    PolicyName=P.ISOLATION_POLICY,
                    PolicyDocument=isolation,
                ),
            )
        done.append(f"{R.SHARDS} shard roles {d.role_name}-00..ff: trust and isolation policy")
        return done

    def role_exists(self, name: str) -> bool:
        from .calls import _maybe

        return _maybe("get role", functools.partial(self.iam.get_role, RoleName=name)) is not None

    def rendered_roles(self) -> dict[str, Any]:
        d = self.d
        return {
            R.shard_role_name(d, s): {
                "max_session_duration": d.max_session_duration,
                "trust_policy": R.shard_trust_policy(d, s),
                "inline_policies": {P.ISOLATION_POLICY: P.isolation_policy(d)},
            }
            for s in shards()
        }

    def deployed_roles(self) -> dict[str, Any]:
        from .calls import _doc, _maybe

        out: dict[str, Any] = {}
        for s in shards():
            name = R.shard_role_name(self.d, s)
            role = _maybe("get role", functools.partial(self.iam.get_role, RoleName=name))
            if role is None:
                out[name] = None
                continue
            r = role["Role"]
            out[name] = {
                "max_session_duration": int(r.get("MaxSessionDuration") or 3600),
                "trust_policy": _doc(r["AssumeRolePolicyDocument"]),
                "inline_policies": {n: self._inline(name, n) for n in self._inline_names(name)},
            }
        return out

    def _inline_names(self, role: str) -> list[str]:
        from .calls import _call

        def names() -> list[str]:
            pages = self.iam.get_paginator("list_role_policies").paginate(RoleName=role)
            return [str(n) for page in pages for n in page.get("PolicyNames", [])]

        return _call(f"list role policies {role}", names)

    def _inline(self, role: str, name: str) -> Any:
        from .calls import _call, _doc

        got = _call(
            f"get role policy {name}",
            functools.partial(self.iam.get_role_policy, RoleName=role, PolicyName=name),
        )
        return _doc(got["PolicyDocument"])

    def misplaced(self, by_shard: dict[str, list[str]] | None = None) -> list[str]:
        """Denies in a shard other than the wallet's (never written by us: they revoke
        nothing, since that wallet can only assume its own shard)."""
        scanned = self.scan() if by_shard is None else by_shard
        return sorted(w for s, ws in scanned.items() for w in ws if R.shard_of(w) != s)

    def scan(self) -> dict[str, list[str]]:
        """Shard -> denied wallets, every shard (one read of each shard's deny policies)."""
        return {s: self.shard_denied(s) for s in shards()}

    # ------------------------------------------------------------------ read
    def layout(self, shard: str) -> dict[int, tuple[str, list[str]]]:
        """Policy index -> (ARN, denied wallets) of one shard's attached deny policies."""
        from .calls import _call, _doc, _maybe

        role = R.shard_role_name(self.d, shard)
        prefix = f"{role}-offboarded-"
        out: dict[int, tuple[str, list[str]]] = {}
        attached = _maybe(
            f"list attached policies {role}",
            functools.partial(self.iam.list_attached_role_policies, RoleName=role),
        )
        if attached is None:
            return out
        items = list(attached.get("AttachedPolicies", []))
        while attached.get("IsTruncated"):
            attached = _call(
                f"list attached policies {role}",
                functools.partial(
                    self.iam.list_attached_role_policies, RoleName=role, Marker=attached["Marker"]
                ),
            )
            items.extend(attached.get("AttachedPolicies", []))
        for item in items:
            name = str(item["PolicyName"])
            if not name.startswith(prefix) or not name[len(prefix) :].isdigit():
                continue
            arn = str(item["PolicyArn"])
            pol = _call(f"get policy {name}", functools.partial(self.iam.get_policy, PolicyArn=arn))
            ver = _call(
                f"get policy version {name}",
                functools.partial(
                    self.iam.get_policy_version,
                    PolicyArn=arn,
                    VersionId=pol["Policy"]["DefaultVersionId"],
                ),
            )
            doc = _doc(ver["PolicyVersion"]["Document"])
            out[int(name[len(prefix) :])] = (arn, _wallets_of(doc))
        return out

    def shard_denied(self, shard: str) -> list[str]:
        return sorted(w for _, ws in self.layout(shard).values() for w in ws)

    def denied(self) -> list[str]:
        """Every denied wallet, all shards (``verify``: one read per shard)."""
        return sorted(w for ws in self.scan().values() for w in ws)

    def is_denied(self, wallet: str) -> bool:
        w = validate_wallet(wallet)
        return w in self.shard_denied(R.shard_of(w))

    # ------------------------------------------------------------------ write
    def settle_shard(self, shard: str, on: set[str], off: set[str]) -> bool:
        """One round for one shard: deny exactly (live | recorded offboarded) - onboarded of
        this shard. ``True`` if IAM had to change."""
        live = self.layout(shard)
        have = {w for _, ws in live.values() for w in ws}
        mine_off = {w for w in off if R.shard_of(w) == shard}
        want = (have | mine_off) - on
        if want == have:
            return False
        new = pack({n: ws for n, (_, ws) in live.items()}, want)
        # Adds before removals, so a wallet is never out of every document mid-way.
        order = sorted(new, key=lambda n: not (set(new[n]) - set(live.get(n, ("", []))[1])))
        for n in order:
            ws = new[n]
            if n in live and sorted(live[n][1]) == ws:
                continue
            if n in live and not ws:
                self._delete(live[n][0], R.shard_role_name(self.d, shard))
            elif n in live:
                self._new_version(live[n][0], ws)
            elif ws:
                self._create(shard, n, ws)
        return True

    def _create(self, shard: str, n: int, wallets: list[str]) -> None:
        from .calls import _call, _maybe

        name = policy_name(self.d, shard, n)
        arn = policy_arn(self.d, name)
        doc = P.compact(R.deny_policy(wallets))
        exists = _maybe("get policy", functools.partial(self.iam.get_policy, PolicyArn=arn))
        if exists is None:
            _call(
                f"create policy {name}",
                functools.partial(
                    self.iam.create_policy,
                    PolicyName=name,
                    PolicyDocument=doc,
                    Description="portable-creds: offboarded wallets of one shard (Deny)",
                ),
            )
        else:  # left unattached by an interrupted run or a racing writer: reuse it
            self._new_version(arn, wallets)
        _call(
            f"attach policy {name}",
            functools.partial(
                self.iam.attach_role_policy,
                RoleName=R.shard_role_name(self.d, shard),
                PolicyArn=arn,
            ),
        )

    def _new_version(self, arn: str, wallets: list[str]) -> None:
        """Replace a policy's document; IAM keeps at most 5 versions, so drop old ones."""
        from .calls import _call

        versions = _call(
            "list policy versions", functools.partial(self.iam.list_policy_versions, PolicyArn=arn)
        )
        for v in versions.get("Versions", []):
            if not v.get("IsDefaultVersion"):
                _call(
                    "delete policy version",
                    functools.partial(
                        self.iam.delete_policy_version, PolicyArn=arn, VersionId=v["VersionId"]
                    ),
                )
        _call(
            "create policy version",
            functools.partial(
                self.iam.create_policy_version,
                PolicyArn=arn,
                PolicyDocument=P.compact(R.deny_policy(wallets)),
                SetAsDefault=True,
            ),
        )

    def _delete(self, arn: str, role: str) -> None:
        from .calls import _maybe

        _maybe(
            "detach policy",
            functools.partial(self.iam.detach_role_policy, RoleName=role, PolicyArn=arn),
        )
        versions = _maybe(
            "list policy versions", functools.partial(self.iam.list_policy_versions, PolicyArn=arn)
        )
        for v in (versions or {}).get("Versions", []):
            if not v.get("IsDefaultVersion"):
                _maybe(
                    "delete policy version",
                    functools.partial(
                        self.iam.delete_policy_version, PolicyArn=arn, VersionId=v["VersionId"]
                    ),
                )
        _maybe("delete policy", functools.partial(self.iam.delete_policy, PolicyArn=arn))
