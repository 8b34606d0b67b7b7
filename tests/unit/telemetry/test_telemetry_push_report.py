"""What a sidecar pushes to the control plane: the compact report of its istio_* series, and tap
events (kept only while tapping)."""

from __future__ import annotations

import json

from loom.proxy.telemetry import PeerInfo
from loom.proxy.telemetry.report import build_report
from loom.proxy.telemetry.standard import DURATION_BUCKETS, HEAD_LABELS, IstioMetrics
from loom.proxy.telemetry.tap import TapRecorder, trace_id


def test_report_sends_each_label_set_once_with_per_bucket_counts() -> None:
    metrics = IstioMetrics()
    series = metrics.request_series(
        reporter="source",
        source=PeerInfo(workload="client", namespace="default"),
        destination=PeerInfo(workload="catalog-v1", namespace="default"),
        destination_service="catalog.default.svc.cluster.local",
    )
    metrics.record_request(series, 200, "-", 3.0, 0, 10)
    metrics.record_request(series, 200, "-", 30.0, 0, 10)
    metrics.record_request(series, 503, "UF", 0.2, 0, 0)
    tcp = metrics.tcp_series(
        reporter="destination", source=PeerInfo(), destination=PeerInfo(), destination_service="db"
    )
    metrics.record_tcp_open(tcp)
    report = json.loads(json.dumps(build_report(metrics, "id", 1.0, 2.0, [])))
    assert report["labels"] == list(HEAD_LABELS)
    assert report["buckets"] == list(DURATION_BUCKETS)
    assert len(report["heads"]) == 2
    by_code = {row[2]: row for row in report["requests"]}
    h, policy, _code, flags, grpc, count, total, buckets = by_code[200]
    assert report["heads"][h][HEAD_LABELS.index("destination_service_name")] == "catalog"
    assert (policy, flags, grpc, count, total) == ("unknown", "-", "", 2, 33.0)
    assert buckets == [0, 0, 1, 0, 0, 1]  # (1, 5] and (25, 50]; trailing zeros dropped
    assert by_code[503][7] == [1]
    assert report["tcp"][0][3:] == [1, 0, 0, 0]


def test_tap_records_only_while_active_and_hands_events_over_once() -> None:
    tap = TapRecorder(size=2)
    tap.set_active(True)
    tap.events.extend([{"n": 1}, {"n": 2}, {"n": 3}])
    assert tap.take() == [{"n": 2}, {"n": 3}]  # bounded: the oldest went
    assert tap.take() == []
    tap.events.append({"n": 4})
    tap.set_active(False)
    assert not tap.events


def test_trace_id_from_traceparent_or_b3() -> None:
    parent = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert trace_id({b"traceparent": parent}) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_id({b"x-b3-traceid": b"abc"}) == "abc"
    assert trace_id({}) == ""
