import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from loom.proxy.cluster.endpoint import EndpointState
from loom.proxy.cluster.round_robin import MAX_SCHEDULE, RoundRobin, schedule
from loom.snapshot.model import Endpoint


def endpoints(weights: list[int]) -> list[EndpointState]:
    return [
        EndpointState(Endpoint(address=f"10.0.1.{i + 1}", port=80, weight=w)) for i, w in enumerate(weights)
    ]


def test_equal_weights_rotate_strictly() -> None:
    lb = RoundRobin(random.Random(3))
    eps = endpoints([1, 1, 1])
    lb.update(eps)
    picks = [lb.pick(None, None) for _ in range(9)]
    first = eps.index(picks[0])
    assert picks == [eps[(first + i) % 3] for i in range(9)]


@settings(max_examples=100, deadline=None)
@given(weights=st.lists(st.integers(1, 20), min_size=1, max_size=10), cycles=st.integers(1, 3))
def test_every_full_cycle_gives_exact_weight_proportions(weights: list[int], cycles: int) -> None:
    lb = RoundRobin(random.Random(0))
    eps = endpoints(weights)
    lb.update(eps)
    total = sum(weights)
    counts = Counter(lb.pick(None, None) for _ in range(total * cycles))
    # The gcd reduction makes the cycle shorter, never longer, so whole multiples stay exact.
    assert [counts[ep] for ep in eps] == [w * cycles for w in weights]


def test_heavy_endpoints_are_interleaved_not_picked_in_runs() -> None:
    assert schedule([5, 1, 1]).count(0) == 5
    order = schedule([2, 2, 1])
    assert order.count(0) == 2 and order.count(1) == 2 and order.count(2) == 1
    # Weight 1:1 alternates; 3:1 never puts all three picks of the heavy endpoint together
    # with the light one at the end of the cycle.
    assert schedule([1, 1]) == [0, 1]
    assert schedule([3, 1]) == [0, 0, 1, 0]


def test_schedule_is_reduced_by_the_common_divisor() -> None:
    assert schedule([100, 200]) == schedule([1, 2])
    assert schedule([]) == []


def test_huge_weight_sums_are_scaled_to_a_bounded_cycle() -> None:
    order = schedule([1_000_000, 999_999, 1])
    assert len(order) <= MAX_SCHEDULE + 3
    counts = Counter(order)
    assert counts[2] == 1  # every endpoint keeps at least one slot
    assert abs(counts[0] - counts[1]) <= 1


def test_a_retry_takes_a_different_endpoint_even_against_heavy_weights() -> None:
    lb = RoundRobin(random.Random(7))
    eps = endpoints([50, 1])
    lb.update(eps)
    for _ in range(200):
        assert lb.pick(None, eps[0]) is eps[1]
        assert lb.pick(None, eps[1]) is eps[0]


def test_fleet_members_start_at_different_places() -> None:
    eps = endpoints([1] * 10)
    firsts = set()
    for seed in range(20):
        lb = RoundRobin(random.Random(seed))
        lb.update(eps)
        firsts.add(lb.pick(None, None))
    assert len(firsts) > 3


def test_ejection_rebuilds_the_cycle_over_the_healthy_endpoints() -> None:
    lb = RoundRobin(random.Random(1))
    eps = endpoints([2, 1, 1])
    lb.update(eps)
    eps[0].healthy = False
    counts = Counter(lb.pick(None, None) for _ in range(100))
    assert counts == {eps[1]: 50, eps[2]: 50}
    eps[0].healthy = True
    counts = Counter(lb.pick(None, None) for _ in range(400))
    assert counts == {eps[0]: 200, eps[1]: 100, eps[2]: 100}
