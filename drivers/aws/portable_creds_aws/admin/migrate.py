"""``admin s3 migrate-strategy --from OLD``: move a live deployment to the configured strategy.

Order matters for tenants: everything the new strategy needs is granted *before* anything of
the old one is removed, so a tenant never loses access half-way (both grants are valid in
between; each only reaches the tenant's own prefix). Steps, each idempotent (re-run after a
crash and it continues):

1. the tenant set: the intent records if the deployment has them, else the old strategy's
   live grants (``per-tenant``: its role policies; ``role-per-tenant``: its roles) - and those
   are recorded, so from now on ``verify`` compares against the operator's intent;
2. ``apply`` the new strategy's shared documents, then onboard every tenant under it;
3. unless ``keep_old``: remove the old strategy's grants (tenant policies, shared role,
   tenant roles). With ``keep_old`` tenants can switch URLs first; run again without it to
   finish (``verify`` reports the leftovers as drift until then).

The intent records live under ``<prefix>/<role_name>``, not under the strategy, so they carry
over. Offboarded wallets stay offboarded: their markers carry over too, and a migration *to*
``tag-variable`` denies them.
"""

from __future__ import annotations

import attrs

from portable_creds.errors import ConfigurationError

from . import policies as P
from .provisioner import Provisioner
from .tenant_roles import TenantRoles


def migrate_strategy(
    new: Provisioner, old_strategy: P.Strategy, *, keep_old: bool = False
) -> list[str]:
    d = new.d
    if old_strategy not in P.STRATEGIES:
        raise ConfigurationError(f"--from must be one of {', '.join(P.STRATEGIES)}")
    if old_strategy == d.strategy:
        raise ConfigurationError(
            f"the deployment is configured with --strategy {d.strategy} already; pass the "
            "strategy to migrate *to* as --strategy and the current one as --from"
        )
    old = Provisioner(
        attrs.evolve(d, strategy=old_strategy), iam=new.iam, s3=new.s3, region=new.region
    )
    done: list[str] = []
    recorded = new.tenancy.intent.onboarded()
    if recorded or new.tenancy.intent.exists():
        wallets = recorded
    else:
        wallets = old.tenancy.live()
        done.append(f"recorded {len(wallets)} live tenant(s) of {old_strategy} as intended")
    done.extend(new.apply())
    for w in wallets:
        done.append(new.onboard(w))
    if d.strategy == "tag-variable":
        new.set_offboarded(new.tenancy.expected_denied())
    if keep_old:
        done.append(f"kept the {old_strategy} grants: run again without --keep-old to remove them")
        return done
    done.extend(_remove_old(old, old_strategy, wallets))
    return done


def _remove_old(old: Provisioner, strategy: str, wallets: list[str]) -> list[str]:
    done: list[str] = []
    if strategy == "role-per-tenant":
        roles = TenantRoles(old.d, old.iam)
        for w in roles.wallets():
            roles.remove(w)
            done.append(f"deleted tenant role of {w}")
        return done
    if not old.shared_role_exists():
        return done
    for name in old.role_policy_names():
        old.delete_role_policy(name)
    old.delete_shared_role()
    done.append(f"deleted shared role {old.d.role_name} ({strategy}, {len(wallets)} tenant(s))")
    return done
