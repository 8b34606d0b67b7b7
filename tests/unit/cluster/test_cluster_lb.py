"""Behaviour every balancer shares: health, panic mode, avoid, and the factory."""

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loom.proxy.cluster.consistent_hash import ConsistentHashBalancer
from loom.proxy.cluster.endpoint import EndpointState
from loom.proxy.cluster.lb import make_balancer
from loom.proxy.cluster.p2c import LeastRequest, PeakEwma
from loom.proxy.cluster.round_robin import RoundRobin
from loom.proxy.cluster.weighted_random import WeightedRandom
from loom.snapshot.model import ConsistentHash, Endpoint, LbPolicy

HASH = ConsistentHash(header="x-user", ring_size=64)


def endpoints(weights: list[int]) -> list[EndpointState]:
    return [
        EndpointState(Endpoint(address=f"10.0.0.{i + 1}", port=80, weight=w)) for i, w in enumerate(weights)
    ]


def balancer(policy: LbPolicy, seed: int = 1):
    return make_balancer(policy, HASH if policy is LbPolicy.CONSISTENT_HASH else None, random.Random(seed))


ALL_POLICIES = list(LbPolicy)


@pytest.mark.parametrize(
    ("policy", "kind"),
    [
        (LbPolicy.PEAK_EWMA, PeakEwma),
        (LbPolicy.ROUND_ROBIN, RoundRobin),
        (LbPolicy.LEAST_REQUEST, LeastRequest),
        (LbPolicy.RANDOM, WeightedRandom),
        (LbPolicy.CONSISTENT_HASH, ConsistentHashBalancer),
    ],
)
def test_factory_builds_each_policy(policy: LbPolicy, kind: type) -> None:
    assert isinstance(balancer(policy), kind)


def test_factory_accepts_the_policy_as_text_and_needs_hash_config() -> None:
    assert isinstance(make_balancer("ROUND_ROBIN", None), RoundRobin)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="consistent_hash"):
        make_balancer(LbPolicy.CONSISTENT_HASH, None)


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_no_endpoints_gives_none(policy: LbPolicy) -> None:
    lb = balancer(policy)
    assert lb.pick(b"k", None) is None
    lb.update([])
    assert lb.pick(None, None) is None


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_a_single_endpoint_is_always_chosen_even_when_avoided(policy: LbPolicy) -> None:
    lb = balancer(policy)
    [only] = endpoints([1])
    lb.update([only])
    assert lb.endpoints == (only,)
    for key in (None, b"a", b"b"):
        assert lb.pick(key, None) is only
        assert lb.pick(key, only) is only


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_unhealthy_endpoints_are_not_picked(policy: LbPolicy) -> None:
    lb = balancer(policy)
    eps = endpoints([1, 1, 1, 1])
    lb.update(eps)
    eps[1].healthy = False
    eps[3].healthy = False
    seen = Counter(lb.pick(f"user-{i}".encode() if i % 2 else None, None) for i in range(2000))
    assert set(seen) == {eps[0], eps[2]}
    eps[1].healthy = True  # noticed without update()
    seen = Counter(lb.pick(f"user-{i}".encode() if i % 2 else None, None) for i in range(2000))
    assert eps[1] in seen
    assert eps[3] not in seen


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_panic_mode_uses_all_endpoints_when_none_is_healthy(policy: LbPolicy) -> None:
    lb = balancer(policy)
    eps = endpoints([1, 1, 1])
    lb.update(eps)
    assert not lb.panic
    for ep in eps:
        ep.healthy = False
    assert lb.panic
    seen = Counter(lb.pick(f"user-{i}".encode() if i % 2 else None, None) for i in range(3000))
    assert set(seen) == set(eps)
    eps[2].healthy = True
    assert not lb.panic
    assert {lb.pick(f"u{i}".encode(), None) for i in range(100)} == {eps[2]}


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_avoid_steers_a_retry_elsewhere(policy: LbPolicy) -> None:
    lb = balancer(policy)
    eps = endpoints([5, 1, 1])
    lb.update(eps)
    for i in range(500):
        key = f"user-{i}".encode() if i % 2 else None
        first = lb.pick(key, None)
        assert first is not None
        retry = lb.pick(key, first)
        assert retry is not None
        assert retry is not first


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_avoid_is_ignored_when_it_is_the_only_healthy_endpoint(policy: LbPolicy) -> None:
    lb = balancer(policy)
    eps = endpoints([1, 1, 1])
    lb.update(eps)
    eps[0].healthy = False
    eps[1].healthy = False
    assert lb.pick(b"k", eps[2]) is eps[2]
    # An unhealthy avoid changes nothing either.
    assert lb.pick(b"k", eps[0]) is eps[2]


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_avoid_in_panic_mode_still_prefers_another_endpoint(policy: LbPolicy) -> None:
    lb = balancer(policy)
    eps = endpoints([1, 1])
    lb.update(eps)
    for ep in eps:
        ep.healthy = False
    for i in range(50):
        assert lb.pick(f"k{i}".encode(), eps[0]) is eps[1]


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_update_replaces_the_endpoint_set(policy: LbPolicy) -> None:
    lb = balancer(policy)
    old = endpoints([1, 1])
    lb.update(old)
    new = endpoints([1, 2, 3])
    lb.update(new)
    picked = {lb.pick(f"k{i}".encode(), None) for i in range(500)}
    assert picked <= set(new)
    assert len(picked) > 1


@settings(max_examples=60, deadline=None)
@given(
    policy=st.sampled_from(ALL_POLICIES),
    weights=st.lists(st.integers(1, 6), min_size=1, max_size=8),
    health=st.lists(st.booleans(), min_size=8, max_size=8),
    avoid_at=st.integers(0, 7),
    seed=st.integers(0, 2**32),
)
def test_picks_follow_the_rules_for_any_endpoint_set(
    policy: LbPolicy, weights: list[int], health: list[bool], avoid_at: int, seed: int
) -> None:
    lb = balancer(policy, seed)
    eps = endpoints(weights)
    lb.update(eps)
    for ep, ok in zip(eps, health, strict=False):
        ep.healthy = ok
    avoid = eps[avoid_at % len(eps)]
    healthy = [ep for ep in eps if ep.healthy]
    candidates = healthy or eps
    rng = random.Random(seed)
    for _ in range(30):
        key = rng.randbytes(4) if rng.random() < 0.7 else None
        picked = lb.pick(key, None)
        assert picked in candidates
        retry = lb.pick(key, avoid)
        assert retry in candidates
        if len(candidates) > 1:
            assert retry is not avoid
