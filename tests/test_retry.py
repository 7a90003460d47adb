"""The one retry policy: bounded count, capped exponential backoff, jitter, elapsed budget."""

from __future__ import annotations

import re
from pathlib import Path

from portable_creds.retry import RetryPolicy

REPO = Path(__file__).resolve().parents[1]


def _delays(policy: RetryPolicy) -> list[float]:
    budget = policy.start()
    out = []
    while (delay := budget.next_delay()) is not None:
        out.append(delay)
    return out


def test_bounded_count_and_capped_exponential() -> None:
    assert _delays(RetryPolicy(5, base=0.1, cap=0.5, rng=lambda: 1.0)) == [
        0.1, 0.2, 0.4, 0.5, 0.5,
    ]
    assert _delays(RetryPolicy(0)) == []


def test_jitter_keeps_half_and_randomises_the_rest() -> None:
    low = _delays(RetryPolicy(3, base=0.2, cap=10, rng=lambda: 0.0))
    assert low == [0.1, 0.2, 0.4]


def test_elapsed_budget_stops_before_overrunning() -> None:
    now = [0.0]
    policy = RetryPolicy(10, base=1.0, cap=1.0, max_elapsed=2.5, clock=lambda: now[0],
                         rng=lambda: 1.0)
    budget = policy.start()
    assert budget.next_delay() == 1.0
    now[0] = 1.0
    assert budget.next_delay() == 1.0
    now[0] = 2.0
    assert budget.next_delay() is None  # 2.0 + 1.0 > 2.5
    assert budget.attempts == 3


def test_no_hand_rolled_backoff_left() -> None:
    """The legacy client, the Tencent API client and the COS store use the policy."""
    for rel in ("portable_creds/legacy.py", "drivers/tencent/portable_creds_tencent/tcapi.py",
                "drivers/tencent/portable_creds_tencent/cos_store.py"):
        text = (REPO / rel).read_text()
        assert "RetryPolicy(" in text, rel
        assert not re.search(r"2\s*\*\*\s*attempt", text), rel
