"""Retry budgets: retries may add at most a fixed share to the request rate.

Within the last ``window`` seconds, retries may number at most
``min_retries_per_second × window + percent % × requests``. A budget, unlike a fixed
attempt count, cannot turn an outage into a retry storm: when everything fails, the load
on the upstream grows by ``percent`` plus a trickle, not by a factor of the attempts.

Counts are kept in ten rolling buckets across the window, so each call is O(1) and the
window slides in steps of a tenth of it.
"""

from __future__ import annotations

from loom.snapshot.model import RetryBudget as RetryBudgetConfig

BUCKETS = 10
MIN_WINDOW_S = 0.001
_EPSILON = 1e-9


class RetryBudget:
    __slots__ = (
        "_head",
        "_min_retries",
        "_percent",
        "_requests",
        "_requests_total",
        "_retries",
        "_retries_total",
        "_slot",
        "_width",
        "exhausted_total",
    )

    def __init__(self, cfg: RetryBudgetConfig) -> None:
        window = max(cfg.window, MIN_WINDOW_S)
        self._width = window / BUCKETS
        self._min_retries = cfg.min_retries_per_second * window
        self._percent = cfg.percent
        self._requests = [0] * BUCKETS
        self._retries = [0] * BUCKETS
        self._requests_total = 0
        self._retries_total = 0
        self._head = -(1 << 62)
        """The number of the newest bucket (time // width); far past before the first call."""
        self._slot = 0
        self.exhausted_total = 0
        """Retries refused because the budget was spent."""

    def deposit(self, now: float) -> None:
        """Count an original request (not a retry)."""
        self._advance(now)
        self._requests[self._slot] += 1
        self._requests_total += 1

    def try_withdraw(self, now: float) -> bool:
        """Ask to send one retry; counts it when allowed."""
        self._advance(now)
        if self._retries_total + 1 > self.allowance() + _EPSILON:
            self.exhausted_total += 1
            return False
        self._retries[self._slot] += 1
        self._retries_total += 1
        return True

    def allowance(self) -> float:
        """Retries the current window allows in all."""
        return self._min_retries + self._percent * self._requests_total / 100.0

    @property
    def requests(self) -> int:
        return self._requests_total

    @property
    def retries(self) -> int:
        return self._retries_total

    def _advance(self, now: float) -> None:
        bucket = int(now // self._width)
        head = self._head
        if bucket <= head:
            # Same bucket, or a clock that stepped back: count in the newest bucket.
            return
        steps = bucket - head
        if steps > BUCKETS:
            steps = BUCKETS
        requests, retries = self._requests, self._retries
        slot = self._slot
        for _ in range(steps):
            slot = slot + 1 if slot + 1 < BUCKETS else 0
            self._requests_total -= requests[slot]
            self._retries_total -= retries[slot]
            requests[slot] = 0
            retries[slot] = 0
        self._head = bucket
        self._slot = slot
