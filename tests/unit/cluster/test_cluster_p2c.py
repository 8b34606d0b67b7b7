import random
from collections import Counter

import pytest

from loom.proxy.cluster.endpoint import DEFAULT_RTT_S, EndpointState
from loom.proxy.cluster.p2c import LeastRequest, PeakEwma
from loom.snapshot.model import Endpoint


def endpoints(weights: list[int]) -> list[EndpointState]:
    return [
        EndpointState(Endpoint(address=f"10.0.3.{i + 1}", port=80, weight=w)) for i, w in enumerate(weights)
    ]


def measured(ep: EndpointState, latency_s: float, now: float) -> None:
    """Give ``ep`` a settled latency estimate."""
    ep.ewma = latency_s
    ep.ewma_at = now


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- least request ------------------------------------------------------------------------


def test_least_request_with_two_endpoints_always_takes_the_less_busy() -> None:
    lb = LeastRequest(random.Random(1))
    a, b = endpoints([1, 1])
    lb.update([a, b])
    a.active, b.active = 3, 1
    assert {lb.pick(None, None) for _ in range(100)} == {b}
    a.active, b.active = 0, 5
    assert {lb.pick(None, None) for _ in range(100)} == {a}


def test_least_request_picks_the_idle_endpoint_whenever_it_is_sampled() -> None:
    lb = LeastRequest(random.Random(2))
    eps = endpoints([1, 1, 1, 1])
    lb.update(eps)
    for ep in eps[1:]:
        ep.active = 10
    n = 20_000
    counts = Counter(lb.pick(None, None) for _ in range(n))
    # The idle endpoint is in 3 of the 6 possible pairs.
    assert counts[eps[0]] / n == pytest.approx(0.5, abs=0.015)


def test_least_request_never_picks_the_busiest_of_several() -> None:
    lb = LeastRequest(random.Random(3))
    eps = endpoints([1, 1, 1])
    lb.update(eps)
    eps[0].active, eps[1].active, eps[2].active = 0, 1, 2
    assert eps[2] not in {lb.pick(None, None) for _ in range(500)}


def test_least_request_weighs_load_by_endpoint_weight() -> None:
    lb = LeastRequest(random.Random(4))
    light, heavy = endpoints([1, 2])
    lb.update([light, heavy])
    light.active, heavy.active = 1, 2  # cost 2/1 vs 3/2
    assert lb.pick(None, None) is heavy
    light.active, heavy.active = 1, 4  # cost 2/1 vs 5/2
    assert lb.pick(None, None) is light


def test_least_request_balances_a_steady_load() -> None:
    lb = LeastRequest(random.Random(5))
    eps = endpoints([1] * 5)
    lb.update(eps)
    for _ in range(1000):
        ep = lb.pick(None, None)
        assert ep is not None
        ep.start_request()
    assert max(ep.active for ep in eps) - min(ep.active for ep in eps) <= 2


# --- peak EWMA ------------------------------------------------------------------------------


def test_unmeasured_endpoints_start_at_the_default_rtt() -> None:
    clock = Clock()
    lb = PeakEwma(random.Random(1), clock)
    a, b = endpoints([1, 1])
    lb.update([a, b])
    b.finish_request(DEFAULT_RTT_S * 2, clock.now)
    assert lb.pick(None, None) is a
    b.finish_request(DEFAULT_RTT_S / 3, clock.now)  # a faster sample only blends in
    assert lb.pick(None, None) is a


def test_peak_ewma_prefers_the_faster_endpoint() -> None:
    clock = Clock()
    lb = PeakEwma(random.Random(2), clock)
    fast, slow = endpoints([1, 1])
    lb.update([fast, slow])
    measured(fast, 0.010, clock.now)
    measured(slow, 0.100, clock.now)
    assert {lb.pick(None, None) for _ in range(50)} == {fast}


def test_peak_ewma_trades_latency_against_requests_in_flight() -> None:
    clock = Clock()
    lb = PeakEwma(random.Random(3), clock)
    fast, slow = endpoints([1, 1])
    lb.update([fast, slow])
    measured(fast, 0.010, clock.now)
    measured(slow, 0.050, clock.now)
    fast.active = 9  # cost 0.010 × 10 = 0.1 against 0.050 × 1
    assert lb.pick(None, None) is slow
    fast.active = 3  # cost 0.04
    assert lb.pick(None, None) is fast


def test_one_slow_response_makes_an_endpoint_expensive_at_once() -> None:
    clock = Clock()
    lb = PeakEwma(random.Random(4), clock)
    a, b = endpoints([1, 1])
    lb.update([a, b])
    for _ in range(20):
        a.finish_request(0.005, clock.now)
        b.finish_request(0.006, clock.now)
        clock.now += 0.1
    assert lb.pick(None, None) is a
    a.finish_request(2.0, clock.now)
    assert lb.pick(None, None) is b


def test_a_slow_endpoint_is_tried_again_once_its_estimate_decays() -> None:
    clock = Clock()
    lb = PeakEwma(random.Random(5), clock)
    a, b = endpoints([1, 1])
    lb.update([a, b])
    a.finish_request(1.0, clock.now)
    b.finish_request(0.010, clock.now)
    assert lb.pick(None, None) is b
    clock.now += 60.0
    b.finish_request(0.010, clock.now)
    # 60 s idle: a's estimate is 1 s × e^-6 ≈ 2.5 ms, cheaper than b's fresh 10 ms.
    assert lb.pick(None, None) is a


def test_peak_ewma_sends_little_traffic_to_a_slow_endpoint() -> None:
    clock = Clock()
    lb = PeakEwma(random.Random(6), clock)
    eps = endpoints([1, 1, 1, 1])
    lb.update(eps)
    latency = {eps[0]: 0.200, eps[1]: 0.010, eps[2]: 0.012, eps[3]: 0.011}
    counts: Counter[EndpointState] = Counter()
    for _ in range(4000):
        ep = lb.pick(None, None)
        assert ep is not None
        counts[ep] += 1
        ep.start_request()
        clock.now += 0.005
        ep.finish_request(latency[ep], clock.now)
    assert counts[eps[0]] < 0.02 * 4000
    # With nothing in flight the cost is the latency alone: each fast endpoint wins the
    # pairs where it is the faster one (3, 2 and 1 of the 6 pairs).
    assert counts[eps[1]] > counts[eps[3]] > counts[eps[2]] > 0.1 * 4000


def test_peak_ewma_weighs_cost_by_endpoint_weight() -> None:
    clock = Clock()
    lb = PeakEwma(random.Random(7), clock)
    light, heavy = endpoints([1, 4])
    lb.update([light, heavy])
    measured(light, 0.010, clock.now)
    measured(heavy, 0.030, clock.now)  # 0.030 / 4 < 0.010 / 1
    assert lb.pick(None, None) is heavy
