"""CAM policy evaluation as the double applies it.

The rules implemented (and therefore the only ones our tests can vouch for):
explicit deny anywhere wins; otherwise an identity-policy allow or a resource-policy allow that
names the caller grants the request; a session policy (``AssumeRole`` ``Policy``) then limits
whatever was granted (intersection). Actions are matched case-sensitively with ``*`` wildcards,
resources with ``*`` wildcards that may span ``/``. Conditions use CAM's operator names, with the
``_if_exist`` suffix and the ``for_any_value:`` / ``for_all_value:`` qualifiers.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

Context = Mapping[str, str | Sequence[str]]


class PolicyError(ValueError):
    """A policy document the double cannot parse (CAM would reject it too)."""


@attrs.frozen
class Statement:
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    principals: tuple[str, ...] | None
    conditions: tuple[tuple[str, str, tuple[str, ...]], ...]


def _as_tuple(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise PolicyError(f"policy field {what!r} must be a string or a list of strings")


def _cond_values(value: Any) -> tuple[str, ...]:
    if isinstance(value, bool):
        return ("true" if value else "false",)
    if isinstance(value, int | float):
        return (str(value),)
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        out: list[str] = []
        for v in value:
            out.extend(_cond_values(v))
        return tuple(out)
    raise PolicyError("condition values must be strings, numbers, booleans or lists of them")


def parse_policy(document: str | Mapping[str, Any]) -> tuple[Statement, ...]:
    """Parse a CAM policy (version 2.0). Raises ``PolicyError`` on malformed input."""
    if isinstance(document, str):
        try:
            doc = json.loads(document)
        except ValueError as exc:
            raise PolicyError(f"policy is not JSON: {exc}") from None
    else:
        doc = dict(document)
    if not isinstance(doc, dict) or doc.get("version") != "2.0":
        raise PolicyError('policy must be an object with "version": "2.0"')
    raw = doc.get("statement")
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise PolicyError('policy needs a non-empty "statement" list')
    out: list[Statement] = []
    for st in raw:
        if not isinstance(st, dict):
            raise PolicyError("each statement must be an object")
        effect = st.get("effect")
        if effect not in ("allow", "deny"):
            raise PolicyError('statement "effect" must be "allow" or "deny"')
        actions = _as_tuple(st.get("action"), "action")
        resources = _as_tuple(st.get("resource", "*"), "resource")
        principals: tuple[str, ...] | None = None
        if "principal" in st:
            p = st["principal"]
            if p == "*":
                principals = ("*",)
            elif isinstance(p, dict):
                vals: list[str] = []
                for v in p.values():
                    vals.extend(_as_tuple(v, "principal"))
                principals = tuple(vals)
            else:
                raise PolicyError('"principal" must be "*" or an object')
        conds: list[tuple[str, str, tuple[str, ...]]] = []
        for op, body in (st.get("condition") or {}).items():
            if not isinstance(body, dict):
                raise PolicyError(f"condition {op!r} must map keys to values")
            for key, value in body.items():
                conds.append((op, key, _cond_values(value)))
        out.append(Statement(effect, actions, resources, principals, tuple(conds)))
    return tuple(out)


def _glob(pattern: str, value: str, *, case: bool = True) -> bool:
    regex = "^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$"
    return re.match(regex, value, 0 if case else re.IGNORECASE) is not None


def _truthy(v: str) -> str:
    return v.strip().lower()


def _num(v: str) -> float | None:
    try:
        return float(v)
    except ValueError:
        return None


def _ip_in(value: str, cidr: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


def _single(op: str, ctx_value: str, policy_value: str) -> bool:
    if op == "string_equal":
        return ctx_value == policy_value
    if op == "string_not_equal":
        return ctx_value != policy_value
    if op == "string_equal_ignore_case":
        return ctx_value.lower() == policy_value.lower()
    if op == "string_like":
        return _glob(policy_value, ctx_value)
    if op == "string_not_like":
        return not _glob(policy_value, ctx_value)
    if op == "bool_equal":
        return _truthy(ctx_value) == _truthy(policy_value)
    if op == "ip_equal":
        return _ip_in(ctx_value, policy_value)
    if op == "ip_not_equal":
        return not _ip_in(ctx_value, policy_value)
    if op.startswith("numeric_"):
        a, b = _num(ctx_value), _num(policy_value)
        if a is None or b is None:
            return False
        return {
            "numeric_equal": a == b,
            "numeric_not_equal": a != b,
            "numeric_less_than": a < b,
            "numeric_less_than_equal": a <= b,
            "numeric_greater_than": a > b,
            "numeric_greater_than_equal": a >= b,
        }.get(op, False)
    raise PolicyError(f"condition operator {op!r} is not supported by the double")


_NEGATED = {"string_not_equal", "string_not_like", "ip_not_equal", "numeric_not_equal"}


def condition_holds(op: str, key: str, values: tuple[str, ...], context: Context) -> bool:
    """One condition entry. Multiple policy values are OR-ed (AND for negated operators)."""
    qualifier = ""
    if ":" in op and op.split(":", 1)[0] in ("for_any_value", "for_all_value"):
        qualifier, op = op.split(":", 1)
    if_exist = op.endswith("_if_exist")
    if if_exist:
        op = op[: -len("_if_exist")]
    present = key in context
    if op == "null_equal":
        want_null = _truthy(values[0]) == "true" if values else True
        return (not present) == want_null
    if not present:
        if if_exist:
            return True
        return op in _NEGATED and not qualifier
    raw = context[key]
    ctx_values = [raw] if isinstance(raw, str) else list(raw)
    negated = op in _NEGATED

    def match_one(cv: str) -> bool:
        results = [_single(op, cv, pv) for pv in values]
        return all(results) if negated else any(results)

    if qualifier == "for_all_value":
        return all(match_one(cv) for cv in ctx_values)
    return any(match_one(cv) for cv in ctx_values)


def statement_matches(
    st: Statement,
    action: str,
    resource: str,
    context: Context,
    principal: Iterable[str] | None = None,
) -> bool:
    if not any(_glob(a, action) for a in st.actions):
        return False
    if not any(r == "*" or _glob(r, resource) for r in st.resources):
        return False
    if st.principals is not None:
        if principal is None:
            return False
        names = list(principal)
        if not any(p == "*" or p in names for p in st.principals):
            return False
    return all(condition_holds(op, key, vals, context) for op, key, vals in st.conditions)


@attrs.frozen
class Decision:
    allowed: bool
    reason: str


def evaluate(
    action: str,
    resource: str,
    context: Context,
    *,
    identity: Sequence[Statement] | None,
    session: Sequence[Statement] | None = None,
    resource_policy: Sequence[Statement] = (),
    principal_names: Sequence[str] = (),
) -> Decision:
    """Decide one request.

    ``identity=None`` means the account's root identity (allowed unless explicitly denied).
    """
    root = identity is None
    ident = list(identity or ())
    sess = list(session or ())
    res = list(resource_policy)
    for st in (*ident, *sess):
        if st.effect == "deny" and statement_matches(st, action, resource, context):
            return Decision(False, "explicit deny in an identity or session policy")
    for st in res:
        if st.effect == "deny" and statement_matches(
            st, action, resource, context, principal_names
        ):
            return Decision(False, "explicit deny in the resource policy")
    granted = root or any(
        st.effect == "allow" and statement_matches(st, action, resource, context) for st in ident
    )
    if not granted:
        granted = any(
            st.effect == "allow"
            and statement_matches(st, action, resource, context, principal_names)
            for st in res
        )
    if not granted:
        return Decision(False, "no policy allows this action on this resource")
    if session is not None and not any(
        st.effect == "allow" and statement_matches(st, action, resource, context) for st in sess
    ):
        return Decision(
            False, "the session policy does not allow it (role policy ∩ session policy)"
        )
    return Decision(True, "allowed")
