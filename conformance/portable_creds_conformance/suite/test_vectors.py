"""vectors: the installed implementation reproduces the format's known-answer vectors.

Known-answer vectors pin the exact bytes of envelope v1 (docs/format.md), so a driver run also
proves that the library it runs with is format-compatible with every other implementation; the
negative vectors must each fail with exactly the named error. The vectors ship in this package
(``data/vectors.json``); the checks are ``portable_creds.vectors``'.
"""

from __future__ import annotations

import pytest

from portable_creds import vectors

from ..groups import case
from ..run import ConformanceRun

CATEGORIES = [pytest.param(name, id=name.replace("_", "-")) for name in vectors.CHECKS]


@case("vectors", "known-answer")
@pytest.mark.parametrize("category", CATEGORIES)
def test_known_answer(pc: ConformanceRun, category: str) -> None:
    doc = vectors.load_vectors()
    cases = doc.get(category, [])
    assert cases, f"the vectors file has no {category!r} vectors"
    check = vectors.CHECKS[category]
    failures = []
    for vector in cases:
        try:
            check(vector)
        except Exception as exc:  # collect every mismatch, not just the first
            failures.append(f"{vector.get('name')}: {type(exc).__name__}: {exc}")
    assert not failures, f"{len(failures)}/{len(cases)} vectors failed: {failures[:5]}"


@case("vectors", "stored-verbatim")
def test_stored_verbatim(pc: ConformanceRun) -> None:
    """The driver stores and returns vector blobs byte for byte (binary-safe, no re-encoding)."""
    doc = vectors.load_vectors()
    for vector in doc["envelope"]:
        blob = bytes.fromhex(vector["blob"])
        key = f"{pc.run_root}/vectors/{vector['name'].replace('/', '_')}.enc"
        pc.admin.put(key, blob)
        stored = pc.admin.get(key)
        assert stored.data == blob, f"vector {vector['name']} came back changed"
        assert pc.admin.head(key).size == len(blob)
