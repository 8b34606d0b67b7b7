"""Istio's standard metrics: names, labels and values as Prometheus and its PromQL read them."""

from __future__ import annotations

import math
from collections import defaultdict

import pytest
from prometheus_client.parser import text_string_to_metric_families

from loom.proxy.telemetry import (
    DURATION_BUCKETS,
    REQUEST_LABELS,
    SIZE_BUCKETS,
    TCP_LABELS,
    MeshMetrics,
    PeerInfo,
    flags,
)

CATALOG = "catalog.shop.svc.cluster.local"
REVIEWS = "reviews.shop.svc.cluster.local"


def _series(metrics: MeshMetrics, dst: PeerInfo, service: str = CATALOG, **kwargs):
    return metrics.request_series(
        reporter="source", source=metrics.local_peer(), destination=dst, destination_service=service, **kwargs
    )


def test_family_names_and_types(metrics, catalog):
    metrics.record_request(_series(metrics, catalog), 200, flags.NONE, 12.0, 100, 2000)
    families = {f.name: f.type for f in text_string_to_metric_families(metrics.render().decode())}
    # The parser drops a counter's _total suffix from the family name.
    assert families["istio_requests"] == "counter"
    assert families["istio_request_duration_milliseconds"] == "histogram"
    assert families["istio_request_bytes"] == "histogram"
    assert families["istio_response_bytes"] == "histogram"


def test_request_labels_are_istios(metrics, catalog, parse):
    metrics.record_request(_series(metrics, catalog), 200, flags.NONE, 12.0, 100, 2000)
    samples = parse(metrics)
    (total,) = samples["istio_requests_total"]
    assert list(total.labels) == list(REQUEST_LABELS)
    assert total.labels == {
        "reporter": "source",
        "source_workload": "frontend-v1",
        "source_workload_namespace": "shop",
        "source_principal": "unknown",
        "source_app": "frontend",
        "source_version": "v1",
        "source_cluster": "unknown",
        "source_canonical_service": "frontend",
        "source_canonical_revision": "v1",
        "destination_workload": "catalog-v2",
        "destination_workload_namespace": "shop",
        "destination_principal": "unknown",
        "destination_app": "catalog",
        "destination_version": "v2",
        "destination_service": CATALOG,
        "destination_service_name": "catalog",
        "destination_service_namespace": "shop",
        "destination_canonical_service": "catalog",
        "destination_canonical_revision": "v2",
        "destination_cluster": "unknown",
        "request_protocol": "http",
        "response_code": "200",
        "grpc_response_status": "",
        "response_flags": "-",
        "connection_security_policy": "unknown",
    }
    for name in ("istio_request_duration_milliseconds", "istio_request_bytes", "istio_response_bytes"):
        for sample in samples[f"{name}_bucket"]:
            assert set(sample.labels) == {*REQUEST_LABELS, "le"}
        assert set(samples[f"{name}_sum"][0].labels) == set(REQUEST_LABELS)
        assert set(samples[f"{name}_count"][0].labels) == set(REQUEST_LABELS)


def test_inbound_mtls_series(metrics, catalog, parse):
    src = PeerInfo.from_labels(
        "catalog-v2", "shop", {"app": "catalog"}, principal="spiffe://cluster.local/ns/shop/sa/catalog"
    )
    series = metrics.request_series(
        reporter="destination",
        source=src,
        destination=metrics.local_peer(mtls=True),
        destination_service="frontend.shop.svc.cluster.local",
        connection_security_policy="mutual_tls",
    )
    metrics.record_request(series, 204, flags.NONE, 1.0, 0, 0)
    labels = parse(metrics)["istio_requests_total"][0].labels
    assert labels["reporter"] == "destination"
    assert labels["source_principal"] == "spiffe://cluster.local/ns/shop/sa/catalog"
    assert labels["destination_principal"] == "spiffe://cluster.local/ns/shop/sa/frontend"
    assert labels["connection_security_policy"] == "mutual_tls"
    assert labels["destination_service_name"] == "frontend"


def test_connection_security_policy_defaults_follow_the_reporter(metrics, catalog, parse):
    metrics.record_request(_series(metrics, catalog), 200, flags.NONE, 1.0, 0, 0)
    inbound = metrics.request_series(
        reporter="destination", source=catalog, destination=metrics.local_peer(), destination_service=CATALOG
    )
    metrics.record_request(inbound, 200, flags.NONE, 1.0, 0, 0)
    policy = {
        s.labels["reporter"]: s.labels["connection_security_policy"]
        for s in parse(metrics)["istio_requests_total"]
    }
    assert policy == {"source": "unknown", "destination": "none"}


def test_series_handles_are_interned(metrics, catalog):
    first = _series(metrics, catalog)
    assert (
        _series(metrics, PeerInfo.from_labels("catalog-v2", "shop", {"app": "catalog", "version": "v2"}))
        is first
    )
    assert _series(metrics, catalog, service=REVIEWS) is not first
    assert _series(metrics, catalog, request_protocol="grpc") is not first


def test_unknown_reporter_is_refused(metrics, catalog):
    with pytest.raises(ValueError, match="reporter"):
        metrics.request_series(
            reporter="client", source=catalog, destination=catalog, destination_service=CATALOG
        )


def test_counts_per_code_and_flags(metrics, catalog, parse):
    series = _series(metrics, catalog)
    for _ in range(7):
        metrics.record_request(series, 200, flags.NONE, 3.0, 10, 10)
    for _ in range(2):
        metrics.record_request(series, 503, flags.NO_HEALTHY_UPSTREAM, 0.2, 10, 19)
    metrics.record_request(
        series,
        503,
        flags.join([flags.UPSTREAM_RETRY_LIMIT_EXCEEDED, flags.UPSTREAM_CONNECTION_FAILURE]),
        9.0,
        10,
        19,
    )
    counts = {
        (s.labels["response_code"], s.labels["response_flags"]): s.value
        for s in parse(metrics)["istio_requests_total"]
    }
    assert counts == {("200", "-"): 7, ("503", "UH"): 2, ("503", "UF,URX"): 1}


def test_success_rate_by_destination_service_name(metrics, catalog, parse):
    """sum(rate(istio_requests_total{response_code!~"5.*"})) by (destination_service_name) / sum(...)"""
    reviews = PeerInfo.from_labels("reviews-v1", "shop", {"app": "reviews"})
    to_catalog, to_reviews = _series(metrics, catalog), _series(metrics, reviews, service=REVIEWS)
    for i in range(100):
        metrics.record_request(to_catalog, 500 if i % 10 == 0 else 200, flags.NONE, 5.0, 0, 0)
        metrics.record_request(to_reviews, 404 if i % 4 == 0 else 200, flags.NONE, 5.0, 0, 0)
    ok: dict[str, float] = defaultdict(float)
    total: dict[str, float] = defaultdict(float)
    for sample in parse(metrics)["istio_requests_total"]:
        name = sample.labels["destination_service_name"]
        total[name] += sample.value
        if not sample.labels["response_code"].startswith("5"):
            ok[name] += sample.value
    assert {name: ok[name] / total[name] for name in total} == {"catalog": 0.9, "reviews": 1.0}


def _quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' histogram_quantile over cumulative (le, count) pairs."""
    buckets = sorted(buckets)
    rank = q * buckets[-1][1]
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    raise AssertionError("unreachable")


def test_p99_latency_by_destination_service_name(metrics, catalog, parse):
    """histogram_quantile(0.99, sum(rate(..._bucket)) by (destination_service_name, le))"""
    series = _series(metrics, catalog)
    for i in range(1000):
        # Two response codes: the query sums their series per le.
        metrics.record_request(series, 200 if i % 2 else 503, flags.NONE, 30.0 if i < 985 else 400.0, 0, 0)
    summed: dict[tuple[str, float], float] = defaultdict(float)
    for sample in parse(metrics)["istio_request_duration_milliseconds_bucket"]:
        summed[(sample.labels["destination_service_name"], float(sample.labels["le"]))] += sample.value
    buckets = [(le, count) for (name, le), count in summed.items() if name == "catalog"]
    assert 250 < _quantile(0.99, buckets) <= 500
    assert 25 < _quantile(0.5, buckets) <= 50


def test_histogram_buckets_are_cumulative_with_sum_and_count(metrics, catalog, parse):
    series = _series(metrics, catalog)
    durations = [0.2, 0.5, 0.7, 5.0, 5.5, 99.9, 4_000_000.0]
    for d in durations:
        metrics.record_request(series, 200, flags.NONE, d, 0, 0)
    samples = parse(metrics)
    buckets = {float(s.labels["le"]): s.value for s in samples["istio_request_duration_milliseconds_bucket"]}
    assert list(buckets) == [*DURATION_BUCKETS, math.inf]
    assert buckets[0.5] == 2  # le is inclusive
    assert buckets[1] == 3
    assert buckets[5] == 4
    assert buckets[10] == 5
    assert buckets[100] == 6
    assert buckets[3600000] == 6
    assert buckets[math.inf] == 7
    counts = list(buckets.values())
    assert counts == sorted(counts)
    assert samples["istio_request_duration_milliseconds_sum"][0].value == pytest.approx(sum(durations))
    assert samples["istio_request_duration_milliseconds_count"][0].value == 7


def test_size_histograms(metrics, catalog, parse):
    series = _series(metrics, catalog)
    metrics.record_request(series, 200, flags.NONE, 1.0, 0, 1)
    metrics.record_request(series, 200, flags.NONE, 1.0, 2500, 1_000_000)
    samples = parse(metrics)
    request = {float(s.labels["le"]): s.value for s in samples["istio_request_bytes_bucket"]}
    response = {float(s.labels["le"]): s.value for s in samples["istio_response_bytes_bucket"]}
    assert list(request) == [*SIZE_BUCKETS, math.inf]
    assert request[0.5] == 1 and request[1000] == 1 and request[2500] == 2
    assert response[0.5] == 0 and response[1] == 1 and response[600000] == 1 and response[1800000] == 2
    assert samples["istio_request_bytes_sum"][0].value == 2500
    assert samples["istio_response_bytes_sum"][0].value == 1_000_001
    assert samples["istio_response_bytes_count"][0].value == 2


def test_bucket_bounds_print_like_envoy(metrics, catalog):
    metrics.record_request(_series(metrics, catalog), 200, flags.NONE, 1.0, 0, 0)
    text = metrics.render().decode()
    for le in ('le="0.5"', 'le="1"', 'le="300000"', 'le="3.6e+06"', 'le="+Inf"'):
        assert le in text


def test_grpc_series(metrics, catalog, parse):
    series = _series(metrics, catalog, request_protocol="grpc")
    metrics.record_request(series, 200, flags.NONE, 1.0, 5, 7, grpc_status="0")
    metrics.record_request(series, 200, flags.NONE, 1.0, 5, 7, grpc_status="14")
    statuses = {
        s.labels["grpc_response_status"]: s.value
        for s in parse(metrics)["istio_requests_total"]
        if s.labels["request_protocol"] == "grpc"
    }
    assert statuses == {"0": 1, "14": 1}


def test_label_values_are_escaped(metrics, parse):
    odd = PeerInfo(workload='we"ird\\name\nx', namespace="shop")
    series = _series(metrics, odd, service='svc"x')
    metrics.record_request(series, 200, 'A"B', 1.0, 0, 0)
    labels = parse(metrics)["istio_requests_total"][0].labels
    assert labels["destination_workload"] == 'we"ird\\name\nx'
    assert labels["destination_service"] == 'svc"x'
    assert labels["response_flags"] == 'A"B'


def test_external_service_names(metrics, catalog, parse):
    metrics.record_request(_series(metrics, catalog, service="api.example.com"), 200, flags.NONE, 1.0, 0, 0)
    metrics.record_request(_series(metrics, PeerInfo(), service=""), 502, flags.NONE, 1.0, 0, 0)
    names = {
        (
            s.labels["destination_service"],
            s.labels["destination_service_name"],
            s.labels["destination_service_namespace"],
        )
        for s in parse(metrics)["istio_requests_total"]
    }
    assert names == {("api.example.com", "api.example.com", "shop"), ("unknown", "unknown", "unknown")}


def test_nothing_recorded_renders_no_istio_families(metrics, catalog):
    _series(metrics, catalog)
    assert b"istio_" not in metrics.render()


def test_tcp_metrics(metrics, catalog, parse):
    series = metrics.tcp_series(
        reporter="source", source=metrics.local_peer(), destination=catalog, destination_service=CATALOG
    )
    assert (
        metrics.tcp_series(
            reporter="source", source=metrics.local_peer(), destination=catalog, destination_service=CATALOG
        )
        is series
    )
    metrics.record_tcp_open(series)
    metrics.record_tcp_open(series)
    metrics.record_tcp_bytes(series, sent=100, received=40)
    metrics.record_tcp_bytes(series, sent=1, received=2)
    metrics.record_tcp_close(series)
    samples = parse(metrics)
    values = {
        name: samples[name][0].value
        for name in (
            "istio_tcp_connections_opened_total",
            "istio_tcp_connections_closed_total",
            "istio_tcp_sent_bytes_total",
            "istio_tcp_received_bytes_total",
        )
    }
    assert values == {
        "istio_tcp_connections_opened_total": 2,
        "istio_tcp_connections_closed_total": 1,
        "istio_tcp_sent_bytes_total": 101,
        "istio_tcp_received_bytes_total": 42,
    }
    labels = samples["istio_tcp_sent_bytes_total"][0].labels
    assert list(labels) == list(TCP_LABELS)
    assert labels["request_protocol"] == "tcp"
    assert labels["response_flags"] == "-"
    assert "response_code" not in labels
