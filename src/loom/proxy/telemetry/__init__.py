"""The proxy's telemetry: Istio's standard metrics, the proxy's own counters, the access log."""

from loom.proxy.telemetry import flags
from loom.proxy.telemetry.access_format import AccessLogEntry, format_json, format_text
from loom.proxy.telemetry.access_log import AccessLogger
from loom.proxy.telemetry.exposition import CONTENT_TYPE
from loom.proxy.telemetry.metrics import MeshMetrics
from loom.proxy.telemetry.peers import PeerInfo, service_name_and_namespace, spiffe_id
from loom.proxy.telemetry.registry import Counter, CounterChild, Gauge, GaugeChild
from loom.proxy.telemetry.standard import (
    DURATION_BUCKETS,
    MUTUAL_TLS,
    PLAINTEXT,
    REPORTER_DESTINATION,
    REPORTER_SOURCE,
    REQUEST_LABELS,
    SIZE_BUCKETS,
    TCP_LABELS,
    SeriesHandle,
    TcpSeriesHandle,
)

__all__ = [
    "CONTENT_TYPE",
    "DURATION_BUCKETS",
    "MUTUAL_TLS",
    "PLAINTEXT",
    "REPORTER_DESTINATION",
    "REPORTER_SOURCE",
    "REQUEST_LABELS",
    "SIZE_BUCKETS",
    "TCP_LABELS",
    "AccessLogEntry",
    "AccessLogger",
    "Counter",
    "CounterChild",
    "Gauge",
    "GaugeChild",
    "MeshMetrics",
    "PeerInfo",
    "SeriesHandle",
    "TcpSeriesHandle",
    "flags",
    "format_json",
    "format_text",
    "service_name_and_namespace",
    "spiffe_id",
]
