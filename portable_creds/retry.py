"""One retry policy for the loops the SDKs do not cover: capped exponential backoff with jitter.

Used by the legacy HTTP client, the Tencent API client and the COS store (botocore retries the
S3/STS requests itself, ``standard`` mode). Each loop keeps its own notion of what is retryable
and what else to do between attempts (refresh credentials, rebuild a request); the budget says
how long to wait and when to give up, the same way everywhere. Jitter ("equal jitter": half
fixed, half random) keeps clients that failed together from retrying in lockstep.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import attrs


@attrs.frozen
class RetryPolicy:
    """At most ``retries`` retries; the n-th waits ``min(cap, base * 2**(n-1))``, jittered to
    50-100 % of that; never past ``max_elapsed`` seconds since the first attempt (if set)."""

    retries: int
    base: float = 0.1
    cap: float = 1.0
    max_elapsed: float | None = None
    clock: Callable[[], float] = time.monotonic
    rng: Callable[[], float] = random.random

    def start(self) -> RetryBudget:
        """A fresh budget for one logical operation."""
        return RetryBudget(self)


class RetryBudget:
    """The state of one operation's retries: ask ``next_delay()`` after each retryable failure."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.retried = 0
        self.started = policy.clock()

    @property
    def attempts(self) -> int:
        """Attempts made so far, counting the one that just failed."""
        return self.retried + 1

    def elapsed(self) -> float:
        return self.policy.clock() - self.started

    def next_delay(self) -> float | None:
        """Seconds to wait before the next attempt, or ``None``: the budget is spent, give up."""
        p = self.policy
        if self.retried >= p.retries:
            return None
        delay: float = min(p.cap, p.base * 2.0**self.retried) * (0.5 + p.rng() / 2)
        if p.max_elapsed is not None and self.elapsed() + delay > p.max_elapsed:
            return None
        self.retried += 1
        return delay
