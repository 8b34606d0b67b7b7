from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loom.proxy.cluster.budget import BUCKETS, RetryBudget
from loom.snapshot.model import RetryBudget as RetryBudgetConfig


def budget(**kw: float) -> RetryBudget:
    return RetryBudget(RetryBudgetConfig(**kw))


def test_100_rps_of_failing_requests_for_30_seconds() -> None:
    b = budget(percent=20.0, min_retries_per_second=10.0, window=10.0)
    width = 10.0 / BUCKETS
    requests: Counter[int] = Counter()
    retries: Counter[int] = Counter()
    attempts = allowed = 0
    for i in range(3000):
        now = i / 100.0
        bucket = int(now // width)
        b.deposit(now)
        requests[bucket] += 1
        # Every request fails and asks for a retry.
        attempts += 1
        if b.try_withdraw(now):
            allowed += 1
            retries[bucket] += 1
    # 10/s plus 20% of 100/s: 30 retries a second, 900 in 30 s, never more.
    assert 0.9 * 900 <= allowed <= 900
    assert b.exhausted_total == attempts - allowed
    # No window of the budget's buckets ever holds more retries than it allowed.
    for end in range(max(requests) + 1):
        span = range(end - BUCKETS + 1, end + 1)
        in_window = sum(retries[k] for k in span)
        assert in_window <= 100 + 0.2 * sum(requests[k] for k in span)


def test_the_minimum_allows_retries_without_any_traffic() -> None:
    b = budget(percent=20.0, min_retries_per_second=2.0, window=10.0)
    assert [b.try_withdraw(1.0) for _ in range(21)] == [True] * 20 + [False]
    assert b.exhausted_total == 1


def test_the_percentage_allows_one_retry_per_five_requests() -> None:
    b = budget(percent=20.0, min_retries_per_second=0.0, window=10.0)
    assert not b.try_withdraw(0.0)
    for _ in range(4):
        b.deposit(0.0)
    assert not b.try_withdraw(0.0)
    b.deposit(0.0)
    assert b.try_withdraw(0.0)
    assert not b.try_withdraw(0.0)
    for _ in range(15):
        b.deposit(0.0)
    assert [b.try_withdraw(0.0) for _ in range(4)] == [True, True, True, False]
    assert (b.requests, b.retries) == (20, 4)


def test_old_traffic_leaves_the_window() -> None:
    b = budget(percent=0.0, min_retries_per_second=1.0, window=10.0)
    assert sum(b.try_withdraw(0.5) for _ in range(20)) == 10
    assert not b.try_withdraw(9.9)
    # After a full window the earliest bucket is gone.
    assert b.try_withdraw(10.0)
    assert b.retries == 1
    b2 = budget(percent=0.0, min_retries_per_second=1.0, window=10.0)
    assert sum(b2.try_withdraw(0.0) for _ in range(20)) == 10
    assert sum(b2.try_withdraw(1e6) for _ in range(20)) == 10  # a long pause clears everything


def test_a_clock_stepping_back_counts_in_the_newest_bucket() -> None:
    b = budget(percent=0.0, min_retries_per_second=1.0, window=10.0)
    assert sum(b.try_withdraw(50.0) for _ in range(5)) == 5
    assert sum(b.try_withdraw(10.0) for _ in range(10)) == 5
    assert b.retries == 10


def test_a_zero_window_is_clamped() -> None:
    b = budget(percent=100.0, min_retries_per_second=0.0, window=0.0)
    b.deposit(1.0)
    assert b.try_withdraw(1.0)
    assert not b.try_withdraw(1.0)


class Model:
    """The budget's rule, computed the slow way from every event's bucket."""

    def __init__(self, percent: float, min_rps: float, window: float) -> None:
        self.percent, self.min_rps, self.window = percent, min_rps, window
        self.width = window / BUCKETS
        self.events: list[tuple[int, str]] = []
        self.newest = -(1 << 62)

    def _window(self, now: float) -> tuple[int, int]:
        self.newest = max(self.newest, int(now // self.width))
        low = self.newest - BUCKETS + 1
        requests = sum(1 for b, kind in self.events if kind == "req" and b >= low)
        retries = sum(1 for b, kind in self.events if kind == "retry" and b >= low)
        return requests, retries

    def deposit(self, now: float) -> None:
        self._window(now)
        self.events.append((self.newest, "req"))

    def try_withdraw(self, now: float) -> bool:
        requests, retries = self._window(now)
        if retries + 1 <= self.min_rps * self.window + self.percent * requests / 100 + 1e-9:
            self.events.append((self.newest, "retry"))
            return True
        return False


@settings(max_examples=80, deadline=None)
@given(
    percent=st.sampled_from([0.0, 10.0, 20.0, 50.0, 100.0]),
    min_rps=st.sampled_from([0.0, 0.5, 1.0, 3.0]),
    steps=st.lists(st.tuples(st.booleans(), st.floats(0.0, 3.0)), max_size=300),
)
def test_the_budget_agrees_with_a_brute_force_model(
    percent: float, min_rps: float, steps: list[tuple[bool, float]]
) -> None:
    b = budget(percent=percent, min_retries_per_second=min_rps, window=10.0)
    model = Model(percent, min_rps, 10.0)
    now = 0.0
    for is_retry, dt in steps:
        now += dt
        if is_retry:
            assert b.try_withdraw(now) == model.try_withdraw(now)
        else:
            b.deposit(now)
            model.deposit(now)


@pytest.mark.parametrize("window", [1.0, 10.0, 60.0])
def test_each_call_is_constant_time_storage(window: float) -> None:
    b = budget(window=window)
    for i in range(10_000):
        b.deposit(i * 0.37)
        b.try_withdraw(i * 0.37)
    assert len(b._requests) == len(b._retries) == BUCKETS
