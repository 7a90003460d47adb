"""The test groups, what each needs from a driver, and the gate that says why one cannot run.

A group that cannot run must say why (capability not declared, withdrawn by the harness with a
label, no federation): the gate returns that sentence and the test is skipped with it, so the
report and the summary table carry it. Nothing is ever silently passed.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs
import pytest

from portable_creds.driver import Capabilities

MARKER = "conformance"


@attrs.frozen
class Group:
    name: str
    proves: str
    requires: tuple[str, ...] = ()
    """Capabilities every test of the group needs (see ``requirement_reason``)."""


GROUPS: tuple[Group, ...] = (
    Group("vectors", "the installed envelope implementation reproduces the format's vectors"),
    Group("roundtrip", "what goes in comes out, byte for byte, for every size and name shape"),
    Group("listing", "listing crosses page boundaries with nothing missing or duplicated"),
    Group("conditional", "create-only and if-match are atomic where declared, refused where not"),
    Group("teardown", "teardown removes all of the tenant's credentials and nothing else"),
    Group(
        "isolation-handle",
        "a tenant's handle cannot touch another tenant's objects (whichever layer refuses)",
    ),
    Group(
        "isolation-storage",
        "the storage service itself refuses cross-tenant access (AccessDenied)",
        ("server_side_isolation",),
    ),
    Group("isolation-crypto", "a blob moved to another tenant, service or path never opens"),
    Group("integrity", "every corruption of a stored blob is detected, with one error type"),
    Group(
        "credentials",
        "expired credentials refresh transparently; bad identity tokens are refused",
        ("federation",),
    ),
    Group("bad-input", "invalid names, traversal and oversize payloads fail early, write nothing"),
    Group("concurrency", "16 threads of mixed operations leave a consistent, readable state"),
    Group("outbox", "a failed remote put keeps the sealed secret locally; flush delivers it"),
    Group(
        "scoping",
        "scoped credentials are limited by the cloud, not by the client",
        ("scoped_credentials",),
    ),
)

GROUPS_BY_NAME: dict[str, Group] = {g.name: g for g in GROUPS}

_WHY: dict[str, str] = {
    "create_only": "the backend cannot do atomic create-only writes",
    "if_match": "the backend cannot do atomic compare-and-swap writes",
    "federation": "there is no identity service to test (static credentials)",
    "server_side_isolation": (
        "tenant scoping is not enforced by the storage service (the isolation-handle group "
        "covers the driver's own check)"
    ),
    "scoped_credentials": "scoped credentials are not enforced by the cloud",
}


def case(group: str, name: str, *, requires: tuple[str, ...] = ()) -> pytest.MarkDecorator:
    """Mark a test as conformance case ``<group>.<name>`` (its stable id, see the docs)."""
    if group not in GROUPS_BY_NAME:
        raise ValueError(f"unknown conformance group {group!r}")
    decorator: pytest.MarkDecorator = getattr(pytest.mark, MARKER)(
        group=group, name=name, requires=requires
    )
    return decorator


def declared(caps: Capabilities, capability: str) -> bool:
    """Whether ``capability`` is claimed: booleans as is, ``scoped_credentials`` == "cloud"."""
    if capability == "scoped_credentials":
        return caps.scoped_credentials == "cloud"
    value = getattr(caps, capability)
    return bool(value)


def apply_overrides(caps: Capabilities, overrides: Mapping[str, str]) -> Capabilities:
    """Withdraw overridden capabilities. Overrides can only turn claims off."""
    changes: dict[str, object] = {}
    for field in attrs.fields(Capabilities):
        if field.name not in overrides:
            continue
        if field.name == "scoped_credentials":
            changes[field.name] = "none"
        elif field.name == "max_object_size":
            continue  # a limit, not a claim; nothing to withdraw
        else:
            changes[field.name] = False
    return attrs.evolve(caps, **changes)  # type: ignore[arg-type]


def check_overrides(overrides: Mapping[str, str]) -> None:
    """Every override names a known capability or group and carries a non-empty label."""
    known = {f.name for f in attrs.fields(Capabilities)} | set(GROUPS_BY_NAME)
    for key, label in overrides.items():
        if key not in known:
            raise ValueError(
                f"harness override {key!r} is neither a capability nor a group "
                f"(known: {', '.join(sorted(known))})"
            )
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"harness override {key!r} needs a label saying why")


def requirement_reason(
    group: str,
    requires: tuple[str, ...],
    declared_caps: Capabilities,
    overrides: Mapping[str, str],
) -> str | None:
    """Why a test of ``group`` needing ``requires`` cannot run, or None if it can."""
    if group in overrides:
        return f"group withdrawn by the harness: {overrides[group]}"
    needed = GROUPS_BY_NAME[group].requires + tuple(requires)
    for capability in needed:
        if capability in overrides:
            return f"capability {capability} withdrawn by the harness: {overrides[capability]}"
        if not declared(declared_caps, capability):
            shown = (
                f"scoped_credentials={declared_caps.scoped_credentials!r} (needs 'cloud')"
                if capability == "scoped_credentials"
                else f"capability {capability} not declared"
            )
            return f"{shown}: {_WHY.get(capability, 'not supported by the driver')}"
    return None
