import random
from collections import Counter

import pytest

from loom.proxy.cluster.endpoint import EndpointState
from loom.proxy.cluster.weighted_random import WeightedRandom
from loom.snapshot.model import Endpoint


def endpoints(weights: list[int]) -> list[EndpointState]:
    return [
        EndpointState(Endpoint(address=f"10.0.2.{i + 1}", port=80, weight=w)) for i, w in enumerate(weights)
    ]


@pytest.mark.parametrize("weights", [[1, 1, 1, 1], [1, 2, 3, 4], [10, 1], [7]])
def test_picks_follow_the_weights(weights: list[int]) -> None:
    lb = WeightedRandom(random.Random(42))
    eps = endpoints(weights)
    lb.update(eps)
    n = 40_000
    counts = Counter(lb.pick(None, None) for _ in range(n))
    total = sum(weights)
    for ep, w in zip(eps, weights, strict=True):
        assert counts[ep] / n == pytest.approx(w / total, abs=0.01)


def test_avoid_redistributes_by_the_other_weights() -> None:
    lb = WeightedRandom(random.Random(5))
    eps = endpoints([1, 2, 3, 4])
    lb.update(eps)
    n = 40_000
    for avoid in eps:
        counts = Counter(lb.pick(None, avoid) for _ in range(n))
        assert avoid not in counts
        rest = sum(ep.weight for ep in eps if ep is not avoid)
        for ep in eps:
            if ep is not avoid:
                assert counts[ep] / n == pytest.approx(ep.weight / rest, abs=0.012)


def test_the_same_seed_gives_the_same_picks() -> None:
    eps = endpoints([1, 2, 3])
    a, b = WeightedRandom(random.Random(9)), WeightedRandom(random.Random(9))
    a.update(eps)
    b.update(eps)
    assert [a.pick(None, None) for _ in range(50)] == [b.pick(None, None) for _ in range(50)]
