"""No two modules of ours import each other, directly or through others.

The graph counts every import statement, also the ones inside functions (a lazy import still
ties the two modules' designs together); only imports under ``if TYPE_CHECKING:`` are left out
(annotations, never executed: the usual way to name a type without importing its module).
Cycles broken so far:
``audit`` <-> ``config`` (the sink grammar moved to ``audit_spec``), the AWS ``settings`` <->
``tokens`` (an unused helper), the Tencent ``driver`` <-> ``vendor_service`` (``build_vendor``
moved to ``vendor_factory``).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {
    "portable_creds": REPO / "portable_creds",
    "portable_creds_aws": REPO / "drivers" / "aws" / "portable_creds_aws",
    "portable_creds_tencent": REPO / "drivers" / "tencent" / "portable_creds_tencent",
    "portable_creds_conformance": REPO / "conformance" / "portable_creds_conformance",
    "portable_creds_sqlite": REPO / "examples" / "sqlite-driver" / "portable_creds_sqlite",
}


def _modules() -> dict[str, Path]:
    found = {}
    for package, root in PACKAGES.items():
        for path in root.rglob("*.py"):
            parts = [package, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        tree = ast.parse(path.read_text())
        type_only = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for stmt in node.body
            for inner in ast.walk(stmt)
        }
        for node in ast.walk(tree):
            if id(node) in type_only:
                continue
            if isinstance(node, ast.ImportFrom):
                base = (
                    ".".join([*here[: len(here) - node.level + 1], node.module or ""]).strip(".")
                    if node.level else node.module or ""
                )
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                           for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def _cycles(nodes: list[str], graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_sees_imports() -> None:
    graph = _graph(_modules())
    assert "portable_creds.errors" in graph["portable_creds.store"]
    assert "portable_creds.registry" in graph["portable_creds.opener"]
    assert "portable_creds_aws.settings" in graph["portable_creds_aws.tokens"]
    # type-only: portable_creds/__init__.py names CredentialStore under TYPE_CHECKING
    assert "portable_creds.store" not in graph["portable_creds"]


def test_no_import_cycles() -> None:
    mods = _modules()
    assert _cycles(sorted(mods), _graph(mods)) == []


def test_a_cycle_is_detected() -> None:
    assert _cycles(["a", "b", "c"], {"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]
