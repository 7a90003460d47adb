"""Onboard / offboard / list tenants for every strategy, correct under concurrent writers.

Each operation writes the operator's intent first (``intent.IntentRecords``: one S3 object
per wallet), then makes IAM match it, then re-reads the intent and repeats until IAM matches
what it read (``_settle``). Why this is enough, for writers in any number of threads or
processes: every writer re-reads the intent *after* its last IAM change; the writer whose IAM
change lands last therefore sees the final intent and, if IAM does not match it yet, changes
IAM again (so it was not the last), i.e. the last change always leaves IAM equal to the final
intent. Intent writes are single-object PUT/DELETEs, atomic on S3 and RGW.

* ``role-per-tenant``: the IAM state of one wallet is its own role, so settling one wallet
  never touches another's. Nothing is shared, nothing can be lost.
* ``per-tenant`` (shared role) and ``tag-variable``'s deny list (one shared document): RGW and
  IAM rewrite the whole role/document, so a concurrent writer can undo a change to another
  wallet. Settling therefore compares *every recorded wallet* with IAM, not only its own; the
  argument above then covers the other writers' wallets too. Wallets with no record at all
  (deployments older than the records) are left as they are, and ``verify`` reports them.
  With sharded revocation (``sharded``) the shared document is per shard, and settling
  covers the wallet's shard.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from portable_creds.errors import NotFound, PortableCredsError, RemoteUnavailable
from portable_creds.names import validate_wallet

from . import policies as P
from .intent import IntentRecords
from .tenant_roles import Raced, TenantRoles

if TYPE_CHECKING:
    from .provisioner import Provisioner

MAX_ROUNDS = 20
"""Settling rounds before giving up (only reached if writers keep flipping the same wallets)."""


class Tenancy:
    def __init__(self, prov: Provisioner) -> None:
        self.p = prov
        self.d = prov.d
        self.intent = IntentRecords(prov.d, prov.s3)
        self.roles = TenantRoles(prov.d, prov.iam)

    # ------------------------------------------------------------------ read
    def live(self) -> list[str]:
        """Wallets IAM currently lets in (for ``tag-variable``: everyone not denied, so the
        recorded onboarded set minus the deny list)."""
        if self.d.strategy == "role-per-tenant":
            return self.roles.wallets()
        if self.d.strategy == "per-tenant":
            return self.p.policy_tenants()
        denied = set(self.p.offboarded())
        return [w for w in self.intent.onboarded() if w not in denied]

    def tenants(self) -> list[str]:
        """The intended tenant set (records); falls back to IAM for unrecorded deployments."""
        recorded = self.intent.onboarded()
        if recorded or self.intent.exists():
            return recorded
        return self.live()

    def expected_denied(self, denied: list[str] | None = None) -> list[str]:
        """``tag-variable``: the deny list the records call for (unrecorded entries kept);
        ``denied`` is the live deny list if the caller has already read it."""
        on = set(self.intent.onboarded())
        live = self.p.offboarded() if denied is None else denied
        return sorted((set(live) | set(self.intent.offboarded())) - on)

    # ------------------------------------------------------------------ write
    def onboard(self, wallet: str) -> str:
        w = validate_wallet(wallet)
        if self.d.revocation == "sharded":
            self._require_shard_role(w)
        elif self.d.strategy != "role-per-tenant" and not self.p.shared_role_exists():
            raise NotFound(f"role {self.d.role_name} does not exist: run `apply` first")
        self.intent.mark_onboarded(w)
        self._settle(w)
        if self.d.strategy == "role-per-tenant":
            return f"onboarded {w}: role {self.roles_name(w)}"
        if self.d.strategy == "per-tenant":
            return f"onboarded {w}: role policy {P.tenant_policy_name(w)}"
        return f"onboarded {w}: covered by {P.ISOLATION_POLICY} (no longer denied)"

    def offboard(self, wallet: str) -> str:
        w = validate_wallet(wallet)
        if not self.intent.is_onboarded(w) and not self._has_access(w):
            raise NotFound(f"{w} is not onboarded")
        self.intent.mark_offboarded(w)
        self._settle(w)
        if self.d.strategy == "role-per-tenant":
            return f"offboarded {w}: role {self.roles_name(w)} deleted"
        if self.d.strategy == "per-tenant":
            return f"offboarded {w}: role policy {P.tenant_policy_name(w)} removed"
        if self.d.revocation == "sharded":
            return f"offboarded {w}: denied on shard role {self.d.role_name}-{w[2:4]}"
        return f"offboarded {w}: denied by {P.OFFBOARDED_POLICY}"

    def _require_shard_role(self, w: str) -> None:
        from .revocation import shard_of, shard_role_name

        name = shard_role_name(self.d, shard_of(w))
        if not self.p.sharded.role_exists(name):
            raise NotFound(f"role {name} does not exist: run `apply` first")

    def roles_name(self, w: str) -> str:
        from .tenant_roles import role_name

        return role_name(self.d, w)

    def _has_access(self, w: str) -> bool:
        if self.d.strategy == "role-per-tenant":
            return self.roles.get(w) is not None
        if self.d.strategy == "per-tenant":
            return self.p.role_policy(P.tenant_policy_name(w)) is not None
        if self.d.revocation == "sharded":
            return not self.p.sharded.is_denied(w)
        return w not in self.p.offboarded()

    def _settle(self, w: str) -> None:
        """Make IAM match the recorded intent; repeat until a re-read finds nothing to do."""
        last: PortableCredsError | None = None
        for _ in range(MAX_ROUNDS):
            if self.d.strategy == "role-per-tenant":
                want = self.intent.is_onboarded(w)
                try:
                    if want:
                        self.roles.ensure(w)
                    else:
                        self.roles.remove(w)
                except Raced:
                    continue  # another writer is changing this wallet's role: look again
                if self.intent.is_onboarded(w) == want:
                    return
            else:
                try:
                    if not self._settle_shared(w):
                        return
                except PortableCredsError as exc:
                    # RGW answers a delete of a policy another writer just removed with an
                    # unparseable body: look again (the last such error is raised below).
                    last = exc
        if last is not None:
            raise last
        raise RemoteUnavailable(
            f"the tenant set kept changing under concurrent writers for {w}; run the command "
            "again (the recorded intent is kept and `verify` shows any difference)"
        )

    def _settle_shared(self, wallet: str) -> bool:
        """One round for the shared-document strategies; ``True`` if IAM had to change.
        With sharded revocation only the wallet's shard is shared, so only it is settled."""
        on = set(self.intent.onboarded())
        off = set(self.intent.offboarded()) - on
        if self.d.revocation == "sharded":
            from .revocation import shard_of

            return bool(self.p.sharded.settle_shard(shard_of(wallet), on, off))
        if self.d.strategy == "per-tenant":
            have = set(self.p.policy_tenants())
            changed = False
            for w in sorted(on - have):
                self.p.put_tenant_policy(w)
                changed = True
            for w in sorted(off & have):
                self.p.delete_tenant_policy(w)
                changed = True
            return changed
        denied = set(self.p.offboarded())
        want = (denied | off) - on
        if want == denied:
            return False
        if self.d.flavor == "aws":
            from .revocation import check_single_role

            check_single_role(self.d, sorted(want))
        self.p.set_offboarded(sorted(want))
        return True
