"""One wheelhouse per test session, shared by every packaging test."""

from __future__ import annotations

import pytest

from .wheelhouse import REPO, Wheelhouse


@pytest.fixture(scope="session")
def house(tmp_path_factory: pytest.TempPathFactory) -> Wheelhouse:
    root = tmp_path_factory.mktemp("wheelhouse")
    assert not root.resolve().is_relative_to(REPO)
    h = Wheelhouse(root)
    h.build()
    return h
