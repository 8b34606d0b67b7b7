import random

import pytest

from loom.proxy.cluster.endpoint import EndpointState
from loom.proxy.cluster.lb import make_balancer
from loom.proxy.cluster.outlier import CONSECUTIVE_5XX, CONSECUTIVE_GATEWAY_ERRORS, OutlierDetector
from loom.snapshot.model import Endpoint, LbPolicy, OutlierDetection


def endpoints(n: int) -> list[EndpointState]:
    return [EndpointState(Endpoint(address=f"10.0.5.{i + 1}", port=80)) for i in range(n)]


def detector(**kw: object) -> OutlierDetector:
    cfg = {"max_ejection_percent": 100, **kw}
    return OutlierDetector(OutlierDetection(**cfg))


def fail(
    det: OutlierDetector,
    ep: EndpointState,
    eps: list[EndpointState],
    times: int,
    status: int | None = 500,
    now: float = 0.0,
) -> None:
    for _ in range(times):
        det.record(ep, status, now, eps)


# --- counting -------------------------------------------------------------------------------


def test_consecutive_5xx_ejects_at_the_threshold() -> None:
    det = detector(consecutive_5xx=5)
    eps = endpoints(4)
    fail(det, eps[0], eps, 4)
    assert eps[0].healthy
    det.record(eps[0], 500, 7.0, eps)
    assert not eps[0].healthy
    assert eps[0].ejected_at == 7.0
    assert eps[0].ejection_reason == CONSECUTIVE_5XX
    assert det.ejected(eps) == [eps[0]]
    assert det.ejections_total == 1


def test_a_success_resets_the_run() -> None:
    det = detector(consecutive_5xx=3, consecutive_gateway_errors=3)
    eps = endpoints(2)
    fail(det, eps[0], eps, 2, 503)
    det.record(eps[0], 200, 0.0, eps)
    assert (eps[0].consecutive_5xx, eps[0].consecutive_gateway_errors) == (0, 0)
    fail(det, eps[0], eps, 2, 503)
    det.record(eps[0], 404, 0.0, eps)  # a 4xx is the client's fault, not the endpoint's
    fail(det, eps[0], eps, 2, 503)
    assert eps[0].healthy


def test_other_5xx_extend_the_5xx_run_but_end_the_gateway_run() -> None:
    det = detector(consecutive_5xx=None, consecutive_gateway_errors=3)
    eps = endpoints(2)
    fail(det, eps[0], eps, 2, 502)
    det.record(eps[0], 500, 0.0, eps)
    assert eps[0].consecutive_gateway_errors == 0
    assert eps[0].consecutive_5xx == 3
    det.record(eps[0], 502, 0.0, eps)
    det.record(eps[0], 503, 0.0, eps)
    assert eps[0].healthy
    det.record(eps[0], 504, 0.0, eps)
    assert not eps[0].healthy
    assert eps[0].ejection_reason == CONSECUTIVE_GATEWAY_ERRORS


@pytest.mark.parametrize("field", ["consecutive_5xx", "consecutive_gateway_errors"])
def test_local_failures_count_as_5xx_and_gateway_errors(field: str) -> None:
    other = "consecutive_gateway_errors" if field == "consecutive_5xx" else "consecutive_5xx"
    det = detector(**{field: 3, other: None})
    eps = endpoints(2)
    fail(det, eps[0], eps, 3, None)
    assert not eps[0].healthy
    assert eps[0].ejection_reason == field


@pytest.mark.parametrize("threshold", [None, 0])
def test_a_zero_or_missing_threshold_disables_the_check(threshold: int | None) -> None:
    det = detector(consecutive_5xx=threshold, consecutive_gateway_errors=threshold)
    eps = endpoints(2)
    fail(det, eps[0], eps, 100, 503)
    assert eps[0].healthy


def test_reaching_the_threshold_restarts_the_run() -> None:
    det = detector(consecutive_5xx=3, max_ejection_percent=0)
    eps = endpoints(4)
    fail(det, eps[0], eps, 3)
    assert not eps[0].healthy
    fail(det, eps[1], eps, 3)  # blocked by the percentage, but the run starts over
    assert eps[1].healthy
    assert eps[1].consecutive_5xx == 0
    assert det.ejections_overflow == 1


def test_errors_from_an_already_ejected_endpoint_do_not_eject_it_again() -> None:
    det = detector(consecutive_5xx=2)
    eps = endpoints(3)
    fail(det, eps[0], eps, 2, now=1.0)
    fail(det, eps[0], eps, 6, now=2.0)
    assert eps[0].ejected_at == 1.0
    assert eps[0].ejections_total == 1
    assert eps[0].ejection_multiplier == 1


# --- limits ---------------------------------------------------------------------------------


def test_max_ejection_percent_caps_the_ejected_share() -> None:
    det = detector(consecutive_5xx=1, max_ejection_percent=50)
    eps = endpoints(4)
    for ep in eps:
        det.record(ep, 500, 0.0, eps)
    assert len(det.ejected(eps)) == 2
    assert det.ejections_overflow == 2


def test_at_least_one_endpoint_may_always_be_ejected() -> None:
    det = detector(consecutive_5xx=1, max_ejection_percent=10)
    eps = endpoints(3)  # one of three is 33%, over 10%
    for ep in eps:
        det.record(ep, 500, 0.0, eps)
    assert det.ejected(eps) == [eps[0]]
    det0 = detector(consecutive_5xx=1, max_ejection_percent=0)
    eps = endpoints(2)
    for ep in eps:
        det0.record(ep, 500, 0.0, eps)
    assert len(det0.ejected(eps)) == 1


def test_ten_percent_of_twenty_endpoints_is_two() -> None:
    det = detector(consecutive_5xx=1, max_ejection_percent=10)
    eps = endpoints(20)
    for ep in eps:
        det.record(ep, 500, 0.0, eps)
    assert len(det.ejected(eps)) == 2


def test_all_endpoints_may_be_ejected_at_100_percent() -> None:
    det = detector(consecutive_5xx=1, max_ejection_percent=100)
    eps = endpoints(3)
    for ep in eps:
        det.record(ep, 500, 0.0, eps)
    assert len(det.ejected(eps)) == 3


# --- time -----------------------------------------------------------------------------------


def test_the_sweep_returns_an_endpoint_after_the_base_ejection_time() -> None:
    det = detector(consecutive_5xx=2, consecutive_gateway_errors=5, base_ejection_time=30.0, interval=10.0)
    eps = endpoints(3)
    fail(det, eps[0], eps, 1, 503, now=100.0)
    fail(det, eps[0], eps, 1, 500, now=100.0)
    assert not eps[0].healthy
    det.tick(110.0, eps)
    det.tick(129.9, eps)
    assert not eps[0].healthy
    det.tick(130.0, eps)
    assert eps[0].healthy
    assert eps[0].ejected_at is None
    assert eps[0].ejection_reason is None
    assert eps[0].unejected_at == 130.0
    assert (eps[0].consecutive_5xx, eps[0].consecutive_gateway_errors) == (0, 0)
    assert det.ejected(eps) == []


def test_repeated_ejections_last_longer_and_the_multiplier_decays_while_healthy() -> None:
    det = detector(consecutive_5xx=1, base_ejection_time=30.0, interval=10.0)
    eps = endpoints(2)
    ep = eps[0]
    det.record(ep, 500, 0.0, eps)
    det.tick(30.0, eps)
    assert ep.healthy
    det.record(ep, 500, 35.0, eps)
    assert ep.ejection_multiplier == 2
    assert det.ejection_duration(ep) == 60.0
    det.tick(94.0, eps)
    assert not ep.healthy
    det.tick(95.0, eps)
    assert ep.healthy
    det.tick(100.0, eps)  # healthy for less than an interval
    assert ep.ejection_multiplier == 2
    det.tick(105.0, eps)
    assert ep.ejection_multiplier == 1
    det.tick(115.0, eps)
    assert ep.ejection_multiplier == 0
    det.tick(125.0, eps)
    assert ep.ejection_multiplier == 0
    det.record(ep, 500, 130.0, eps)
    assert det.ejection_duration(ep) == 30.0
    assert ep.ejections_total == 3


def test_ejection_time_is_capped_at_the_maximum() -> None:
    det = detector(consecutive_5xx=1, base_ejection_time=100.0, interval=1.0)
    eps = endpoints(2)
    ep = eps[0]
    now = 0.0
    for _ in range(6):
        det.record(ep, 500, now, eps)
        now += det.ejection_duration(ep)
        det.tick(now, eps)
        assert ep.healthy
    assert det.ejection_duration(ep) == 300.0
    assert ep.ejection_multiplier == 3  # stops where the cap takes over
    assert ep.ejections_total == 6


def test_describe_shows_why_and_since_when() -> None:
    det = detector(consecutive_gateway_errors=2, consecutive_5xx=None)
    eps = endpoints(2)
    fail(det, eps[1], eps, 2, 502, now=42.0)
    view = eps[1].describe()
    assert view["healthy"] is False
    assert view["ejection_reason"] == "consecutive_gateway_errors"
    assert view["ejected_at"] == 42.0
    assert view["ejections_total"] == 1


def test_the_balancer_skips_an_ejected_endpoint_until_the_sweep_returns_it() -> None:
    det = detector(consecutive_5xx=3, base_ejection_time=30.0)
    eps = endpoints(3)
    lb = make_balancer(LbPolicy.ROUND_ROBIN, None, random.Random(1))
    lb.update(eps)
    fail(det, eps[2], eps, 3, now=0.0)
    assert eps[2] not in {lb.pick(None, None) for _ in range(30)}
    det.tick(30.0, eps)
    assert eps[2] in {lb.pick(None, None) for _ in range(30)}
