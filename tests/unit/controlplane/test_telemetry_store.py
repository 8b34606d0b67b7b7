"""The control plane's telemetry store without sockets: histogram quantiles as Prometheus computes
them, increases over a window (with counter resets), bounded memory, and the stats rows."""

from __future__ import annotations

import json

import pytest

from loom.controlplane.telemetry.queries import deploy_name, edges, stats, top
from loom.controlplane.telemetry.rates import histogram_quantile, increase
from loom.controlplane.telemetry.report import HEAD_LABELS, ReportError, decode_body
from loom.controlplane.telemetry.store import TelemetryStore
from loom.proxy.telemetry import PeerInfo
from loom.proxy.telemetry.report import build_report
from loom.proxy.telemetry.standard import DURATION_BUCKETS, IstioMetrics

BOUNDS = list(DURATION_BUCKETS)
CLIENT = "spiffe://cluster.local/ns/default/sa/client"
SERVER = "spiffe://cluster.local/ns/default/sa/catalog"


def head(reporter: str = "destination", workload: str = "catalog-v1-0") -> list[str]:
    values = dict.fromkeys(HEAD_LABELS, "unknown")
    values.update(
        reporter=reporter,
        source_workload="client" if reporter == "source" else "unknown",
        source_workload_namespace="default",
        source_principal=CLIENT,
        destination_workload=workload,
        destination_workload_namespace="default",
        destination_principal=SERVER,
        destination_service="catalog.default.svc.cluster.local",
        destination_service_name="catalog",
        destination_service_namespace="default",
    )
    return [values[name] for name in HEAD_LABELS]


def report(start: str, started: float, ok: int, failed: int = 0, bucket: int = 5) -> dict[str, object]:
    """A push with ``ok`` 200s and ``failed`` 503s so far, all in duration bucket ``bucket``."""

    def cells(n: int) -> list[int]:
        out = [0] * (len(BOUNDS) + 1)
        out[bucket] = n
        return out

    requests = [[0, "mutual_tls", 200, "-", "", ok, ok * 30.0, cells(ok)]]
    if failed:
        requests.append([0, "mutual_tls", 503, "-", "", failed, failed * 30.0, cells(failed)])
    return {
        "v": 1,
        "start": start,
        "started": started,
        "time": 0,
        "labels": list(HEAD_LABELS),
        "buckets": BOUNDS,
        "heads": [head()],
        "requests": requests,
        "tcp": [],
        "tap": [],
    }


class Clock:
    def __init__(self, now: float = 10_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- histogram_quantile --------------------------------------------------------------------------


def test_quantile_interpolates_within_the_bucket_like_prometheus() -> None:
    bounds = [1.0, 2.0, 4.0]
    assert histogram_quantile(0.5, bounds, [10, 10, 0, 0]) == pytest.approx(1.0)
    assert histogram_quantile(0.75, bounds, [10, 10, 0, 0]) == pytest.approx(1.5)
    assert histogram_quantile(0.25, bounds, [10, 10, 0, 0]) == pytest.approx(0.5)  # from 0 in the first
    assert histogram_quantile(0.5, bounds, [0, 0, 4, 0]) == pytest.approx(3.0)


def test_quantile_in_the_inf_bucket_is_the_highest_finite_bound_and_empty_is_none() -> None:
    assert histogram_quantile(0.99, [1.0, 2.0], [1, 0, 99]) == 2.0
    assert histogram_quantile(0.5, [1.0, 2.0], [0, 0, 0]) is None


# --- increases and resets -------------------------------------------------------------------------


def test_a_restarted_proxy_adds_what_it_counted_since_and_never_goes_negative() -> None:
    clock = Clock()
    store = TelemetryStore(clock=clock, spacing=0)
    key = ("default", "catalog-v1-0")
    store.push(key, report("a", 1.0, ok=100))  # running long before the window
    clock.now += 10
    store.push(key, report("a", 1.0, ok=150))
    clock.now += 10
    store.push(key, report("b", clock.now - 5, ok=20))  # restarted: counters from zero
    clock.now += 10
    store.push(key, report("b", clock.now - 15, ok=30))
    reports = store.proxies[key].reports
    got = increase(reports, clock.now - 60, clock.now)
    assert got is not None
    (count, _sum, buckets), *_ = got.requests.values()
    assert count == 50 + 30  # 100 -> 150, then a reset, then 0 -> 30
    assert sum(buckets) == 80
    rows = stats(store, "svc", clock.now, 60)["rows"]
    assert rows[0]["requests"] == 80 and rows[0]["rps"] > 0


def test_a_process_started_inside_the_window_counts_from_zero() -> None:
    clock = Clock()
    store = TelemetryStore(clock=clock)
    key = ("default", "catalog-v1-0")
    store.push(key, report("a", clock.now - 2, ok=9, failed=1))
    row = stats(store, "svc", clock.now, 60)["rows"][0]
    assert row["requests"] == 10
    assert row["rps"] == pytest.approx(5.0)  # 10 requests in the 2 s it has run
    assert row["success_rate"] == pytest.approx(0.9)


def test_lower_counts_without_a_new_start_id_are_a_reset_too() -> None:
    clock = Clock()
    store = TelemetryStore(clock=clock, spacing=0)
    key = ("default", "catalog-v1-0")
    store.push(key, report("a", 1.0, ok=100))
    clock.now += 10
    store.push(key, report("a", 1.0, ok=5))
    got = increase(store.proxies[key].reports, clock.now - 60, clock.now)
    assert got is not None
    assert [v[0] for v in got.requests.values()] == [5]


def test_window_uses_the_report_nearest_its_start() -> None:
    clock = Clock()
    store = TelemetryStore(clock=clock, spacing=0)
    key = ("default", "catalog-v1-0")
    for i in range(10):  # 10 requests every 10 s
        store.push(key, report("a", 1.0, ok=10 * i))
        clock.now += 10
    clock.now -= 10
    row = stats(store, "svc", clock.now, 30)["rows"][0]
    assert row["requests"] == 30
    assert row["rps"] == pytest.approx(1.0)


# --- the rows ------------------------------------------------------------------------------------


def test_stats_rows_from_a_sidecars_own_report() -> None:
    metrics = IstioMetrics()
    series = metrics.request_series(
        reporter="destination",
        source=PeerInfo.from_principal(CLIENT),
        destination=PeerInfo(workload="catalog-v1-0", namespace="default", principal=SERVER),
        destination_service="catalog.default.svc.cluster.local",
        connection_security_policy="mutual_tls",
    )
    for _ in range(180):
        metrics.record_request(series, 200, "-", 30.0, 0, 10)
    for _ in range(20):
        metrics.record_request(series, 503, "-", 2.0, 0, 10)
    clock = Clock()
    store = TelemetryStore(clock=clock)
    wire = json.loads(json.dumps(build_report(metrics, "x", clock.now - 10, clock.now, [])))
    answer = store.push(("default", "catalog-v1-0"), wire)
    assert answer == {"interval": 5.0, "tap": False}
    row = stats(store, "svc", clock.now, 60)["rows"][0]
    assert (row["namespace"], row["name"], row["requests"]) == ("default", "catalog", 200)
    assert row["success_rate"] == pytest.approx(0.9)
    assert row["mtls_share"] == 1.0
    assert row["meshed"] == 1
    assert 25.0 <= row["p99_ms"] <= 50.0  # 30 ms is in the (25, 50] bucket
    assert stats(store, "deploy", clock.now, 60)["rows"][0]["name"] == "catalog-v1"
    assert edges(store, clock.now, 60)["edges"] == []  # the caller has a sidecar: its side reports


def test_services_without_sidecars_fall_back_to_the_callers_reports() -> None:
    clock = Clock()
    store = TelemetryStore(clock=clock)
    wire = report("a", clock.now - 10, ok=10)
    wire["heads"] = [head(reporter="source")]
    store.push(("default", "client"), wire)
    row = stats(store, "svc", clock.now, 60)["rows"][0]
    assert row["requests"] == 10 and row["meshed"] == 0
    (edge,) = edges(store, clock.now, 60)["edges"]
    assert edge["source"]["workload"] == "client" and edge["mtls"] is True


# --- bounds --------------------------------------------------------------------------------------


def test_reports_are_spaced_retained_and_forgotten() -> None:
    clock = Clock()
    store = TelemetryStore(clock=clock, spacing=5.0, retention=60.0)
    key = ("default", "catalog-v1-0")
    for i in range(600):  # a push every 0.5 s for 5 minutes
        store.push(key, report("a", 1.0, ok=i))
        clock.now += 0.5
    reports = store.proxies[key].reports
    assert len(reports) <= 14
    assert reports[-1].requests[next(iter(reports[-1].requests))][0] == 599  # the newest is kept
    store.prune(lambda k: False)
    assert store.proxies == {}


def test_bad_pushes_are_refused() -> None:
    store = TelemetryStore()
    with pytest.raises(ReportError):
        store.push(("default", "x"), {"labels": []})
    with pytest.raises(ReportError):
        decode_body(b"\x1f\x8bnot gzip")


def test_deploy_name_and_top() -> None:
    assert deploy_name("catalog-v1-0") == "catalog-v1"
    assert deploy_name("catalog-v1") == "catalog-v1"
    base = {
        "method": "GET",
        "path": "/a",
        "status": 200,
        "latency_ms": 3.0,
        "destination": "default/catalog-v1",
    }
    events = [
        {**base, "request_id": "1", "reporter": "destination", "source": "default/unknown"},
        {**base, "request_id": "1", "reporter": "source", "source": "default/client"},
        {**base, "request_id": "2", "reporter": "source", "source": "default/client", "status": 503},
    ]
    (row,) = top(events)["rows"]
    assert (row["source"], row["count"], row["success_rate"]) == ("default/client", 2, 0.5)


def test_old_reports_are_thinned_but_a_restart_keeps_its_counts() -> None:
    clock = Clock()
    store = TelemetryStore(clock=clock)
    key = ("default", "catalog-v1-0")
    for i in range(1800):  # a push every 0.5 s for 15 minutes; a restart after 5 minutes
        start, base = ("a", 0) if i < 600 else ("b", 600)
        store.push(key, report(start, 1.0 if start == "a" else 9_000.0, ok=i - base))
        clock.now += 0.5
    clock.now -= 0.5
    reports = store.proxies[key].reports
    assert len(reports) <= 60
    got = increase(reports, clock.now - 900, clock.now)
    assert got is not None
    # the window starts at the oldest report kept (ok=0): 599 from run "a", 1199 from run "b"
    assert [v[0] for v in got.requests.values()] == [599 + 1199]
    points = store_series(store, clock.now)
    assert len(points) == 90
    rates = [float(p["rps"]) for p in points]  # type: ignore[arg-type]
    assert all(0.0 <= r <= 2.2 for r in rates), rates
    assert sum(1 for r in rates if r == pytest.approx(2.0, rel=0.1)) >= 85, rates  # the first have no base


def store_series(store: TelemetryStore, now: float) -> list[dict[str, object]]:
    from loom.controlplane.telemetry.queries import series

    return series(store, now, "default", "catalog", 15, 10)["points"]
