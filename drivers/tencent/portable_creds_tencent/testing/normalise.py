"""How CAM and COS hand stored policy documents back: not byte for byte as they were sent.

CAM (GetRole, DescribeRoleList, GetPolicy) returns compact JSON with one-item lists collapsed
to their single string (the GetRole/DescribeRoleList documentation examples show
``"action":"name/sts:AssumeRole"``). COS GET Bucket policy returns ``Statement``, ``Effect``,
``Action``, ``Resource``, ``Principal``, ``Condition`` capitalised (``version`` stays lower case,
https://cloud.tencent.com/document/product/436/8276) and rewrites principals (``*`` ->
``qcs::cam::anyone:anyone``, ``...:root`` -> ``...:uin/<owner>``). The double answers in these
forms so that the provisioner's drift checks are exercised against them; exactly which fields
the real services collapse is undocumented, so the driver's comparison accepts either form.
"""

from __future__ import annotations

import json
import re
from typing import Any

_ROOT = re.compile(r"^qcs::cam::uin/(\d+):root$")
_COS_KEYS = {
    "statement": "Statement",
    "effect": "Effect",
    "action": "Action",
    "resource": "Resource",
    "principal": "Principal",
    "condition": "Condition",
}


def _collapse(value: Any) -> Any:
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def cam_stored_form(text: str) -> str:
    try:
        doc = json.loads(text)
    except ValueError:
        return text
    if not isinstance(doc, dict):
        return text
    statements = doc.get("statement")
    for st in statements if isinstance(statements, list) else []:
        if not isinstance(st, dict):
            continue
        for name in ("action", "resource"):
            if name in st:
                st[name] = _collapse(st[name])
        for body in (st.get("condition") or {}).values():
            if isinstance(body, dict):
                for key in list(body):
                    body[key] = _collapse(body[key])
    return json.dumps(doc, separators=(",", ":"))


def _principal_name(name: Any) -> Any:
    if name == "*":
        return "qcs::cam::anyone:anyone"
    if isinstance(name, str) and (m := _ROOT.match(name)):
        return f"qcs::cam::uin/{m.group(1)}:uin/{m.group(1)}"
    return name


def cos_stored_form(text: str) -> str:
    try:
        doc = json.loads(text)
    except ValueError:
        return text
    if not isinstance(doc, dict):
        return text
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key != "statement":
            out[key] = value
            continue
        statements = []
        for st in value if isinstance(value, list) else [value]:
            if not isinstance(st, dict):
                statements.append(st)
                continue
            new = {_COS_KEYS.get(k, k): v for k, v in st.items()}
            principal = new.get("Principal")
            if principal == "*":
                principal = {"qcs": ["*"]}
            if isinstance(principal, dict):
                new["Principal"] = {
                    k: [_principal_name(n) for n in (v if isinstance(v, list) else [v])]
                    for k, v in principal.items()
                }
            statements.append(new)
        out["Statement"] = statements
    return json.dumps(out)
