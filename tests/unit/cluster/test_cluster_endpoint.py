import math

import pytest

from loom.proxy.cluster.endpoint import DEFAULT_RTT_S, EWMA_TAU_S, HEALTH_EPOCH, EndpointState
from loom.snapshot.model import Endpoint


def make(**kw: object) -> EndpointState:
    return EndpointState(Endpoint(address="10.0.0.1", port=8080, **kw))


def test_fields_come_from_the_snapshot_endpoint() -> None:
    ep = make(
        weight=3, labels={"version": "v2"}, workload="reviews-v2", namespace="shop", service_account="rv"
    )
    assert ep.key == ("10.0.0.1", 8080)
    assert (ep.address, ep.port, ep.weight) == ("10.0.0.1", 8080, 3)
    assert ep.labels == {"version": "v2"}
    assert (ep.workload, ep.namespace, ep.service_account) == ("reviews-v2", "shop", "rv")
    assert ep.active == 0
    assert ep.healthy is True
    assert ep.ewma == DEFAULT_RTT_S


def test_active_counts_requests_in_flight_and_never_goes_negative() -> None:
    ep = make()
    ep.start_request()
    ep.start_request()
    assert ep.active == 2
    ep.finish_request(0.01, 1.0)
    ep.finish_request(0.01, 1.0)
    ep.finish_request(0.01, 1.0)
    assert ep.active == 0


def test_a_slower_sample_replaces_the_estimate_at_once() -> None:
    ep = make()
    ep.start_request()
    ep.finish_request(0.5, 100.0)
    assert ep.ewma == 0.5
    ep.start_request()
    ep.finish_request(0.9, 100.001)
    assert ep.ewma == 0.9


def test_a_faster_sample_blends_in_by_elapsed_time() -> None:
    ep = make()
    ep.finish_request(0.200, 100.0)
    ep.finish_request(0.010, 110.0)
    decay = math.exp(-10.0 / EWMA_TAU_S)
    assert ep.ewma == pytest.approx(0.200 * decay + 0.010 * (1 - decay))
    assert ep.ewma_at == 110.0


def test_samples_close_together_barely_move_the_estimate() -> None:
    ep = make()
    ep.finish_request(0.200, 100.0)
    ep.finish_request(0.001, 100.001)
    assert ep.ewma == pytest.approx(0.200, rel=1e-3)


def test_the_first_fast_sample_starts_from_the_default_rtt() -> None:
    ep = make()
    ep.finish_request(0.002, 50.0)
    # The default stands for the time before the request began: 2 ms of it is nearly all weight.
    assert DEFAULT_RTT_S * 0.99 < ep.ewma < DEFAULT_RTT_S


def test_the_estimate_decays_towards_zero_while_idle() -> None:
    ep = make()
    assert ep.latency_at(1e9) == DEFAULT_RTT_S  # no sample yet: the default holds
    ep.finish_request(1.0, 100.0)
    assert ep.latency_at(100.0) == 1.0
    assert ep.latency_at(99.0) == 1.0
    assert ep.latency_at(100.0 + EWMA_TAU_S) == pytest.approx(math.exp(-1))
    assert ep.latency_at(100.0 + 10 * EWMA_TAU_S) < 1e-4
    assert ep.ewma == 1.0  # reading does not change the state


def test_health_changes_bump_the_epoch_only_on_change() -> None:
    ep = make()
    before = HEALTH_EPOCH.value
    ep.healthy = True
    assert HEALTH_EPOCH.value == before
    ep.healthy = False
    assert HEALTH_EPOCH.value == before + 1
    ep.healthy = False
    assert HEALTH_EPOCH.value == before + 1
    ep.healthy = True
    assert HEALTH_EPOCH.value == before + 2


def test_describe_is_plain_data_for_the_admin_view() -> None:
    ep = make(weight=2, labels={"a": "b"})
    ep.start_request()
    ep.finish_request(0.0125, 10.0)
    ep.start_request()
    view = ep.describe()
    assert view["address"] == "10.0.0.1"
    assert view["port"] == 8080
    assert view["weight"] == 2
    assert view["labels"] == {"a": "b"}
    assert view["active"] == 1
    assert view["healthy"] is True
    assert view["ewma_ms"] == pytest.approx(30.0, abs=0.1)
    assert view["ejections_total"] == 0
    assert view["ejection_reason"] is None
    assert view["ejected_at"] is None
    view["labels"]["a"] = "changed"
    assert ep.labels == {"a": "b"}


def test_state_has_no_instance_dict() -> None:
    with pytest.raises(AttributeError):
        make().__dict__  # noqa: B018
