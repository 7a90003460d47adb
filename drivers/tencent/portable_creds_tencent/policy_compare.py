"""Comparing CAM/COS policy documents by meaning, not by bytes.

CAM and COS hand stored documents back normalised: a one-item list may come back as a plain
string, COS bucket policies come back with capitalised keys (``Statement``, ``Effect``, ...),
principals are rewritten (``*`` -> ``qcs::cam::anyone:anyone``, ``...:root`` ->
``...:uin/<owner>``). Comparing raw JSON would report drift forever and make ``apply`` rewrite
the same document on every run. Both sides are brought to one canonical form first: keys and
effects lower-cased, every value a set of strings, statements an unordered multiset.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

Canonical = tuple[str, ...]

_ROOT = re.compile(r"^qcs::cam::uin/(\d+):root$")
_ANYONE = "qcs::cam::anyone:anyone"


def _strings(value: Any) -> frozenset[str]:
    """A scalar or a list as a set of strings (booleans as ``true``/``false``)."""
    items = value if isinstance(value, list) else [value]
    out = set()
    for item in items:
        if isinstance(item, bool):
            out.add("true" if item else "false")
        else:
            out.add(str(item))
    return frozenset(out)


def _principal_name(name: str) -> str:
    if name == "*":
        return _ANYONE
    m = _ROOT.match(name)
    return f"qcs::cam::uin/{m.group(1)}:uin/{m.group(1)}" if m else name


def _principal(value: Any) -> dict[str, list[str]]:
    if value == "*":
        value = {"qcs": ["*"]}
    if not isinstance(value, Mapping):
        return {"?": sorted(_strings(value))}
    return {
        str(k).lower(): sorted({_principal_name(n) for n in _strings(v)}) for k, v in value.items()
    }


def _statement(st: Mapping[str, Any]) -> str:
    lowered = {str(k).lower(): v for k, v in st.items()}
    out: dict[str, Any] = {}
    for key, value in lowered.items():
        if key == "effect":
            out[key] = str(value).lower()
        elif key == "principal":
            out[key] = _principal(value)
        elif key == "condition" and isinstance(value, Mapping):
            out[key] = {
                str(op).lower(): {
                    str(k): sorted(_strings(v))
                    for k, v in (body.items() if isinstance(body, Mapping) else [])
                }
                for op, body in value.items()
            }
        elif key in ("action", "resource", "not_action", "not_resource"):
            out[key] = sorted(_strings(value))
        else:
            out[key] = value
    return json.dumps(out, sort_keys=True)


def canonical(document: str | Mapping[str, Any] | None) -> Canonical | None:
    """The canonical form of a policy (JSON text or dict); ``None`` for no policy.

    A document that is not a policy object canonicalises to its compact JSON, so it still
    compares unequal to every real policy rather than raising.
    """
    if document is None:
        return None
    doc: Any = document
    if isinstance(document, str):
        try:
            doc = json.loads(document)
        except ValueError:
            return ("<not JSON>", document)
    if not isinstance(doc, Mapping):
        return ("<not an object>", json.dumps(doc, sort_keys=True))
    lowered = {str(k).lower(): v for k, v in doc.items()}
    statements = lowered.get("statement")
    if isinstance(statements, Mapping):
        statements = [statements]
    if not isinstance(statements, list):
        statements = []
    version = str(lowered.get("version", ""))
    body = sorted(_statement(st) if isinstance(st, Mapping) else repr(st) for st in statements)
    return (f"version={version}", *body)


def same_policy(a: str | Mapping[str, Any] | None, b: str | Mapping[str, Any] | None) -> bool:
    """Whether two policy documents mean the same thing, whichever form each is in."""
    return canonical(a) == canonical(b)
