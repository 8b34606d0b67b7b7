"""OTLP/HTTP: protobuf for collectors (``opentelemetry-proto``, imported only when a snapshot names an
OTLP collector, as it costs the sidecar memory), JSON (the standard library) for the control plane."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from loom.proxy.tracing.span import Span

PROTOBUF = b"application/x-protobuf"
JSON = b"application/json"
SCOPE = "loom"
STATUS_ERROR = 2


def encode_protobuf(spans: Sequence[Span], service_name: str) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Status

    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value=service_name))
    )
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = SCOPE
    for span in spans:
        out = scope_spans.spans.add()
        out.trace_id = bytes.fromhex(span.trace_id)
        out.span_id = bytes.fromhex(span.span_id)
        if span.parent_id:
            out.parent_span_id = bytes.fromhex(span.parent_id)
        out.name = span.name
        out.kind = span.kind  # type: ignore[assignment]
        out.start_time_unix_nano = span.start_ns
        out.end_time_unix_nano = span.end_ns
        out.attributes.extend(
            KeyValue(key=key, value=AnyValue(string_value=value)) for key, value in span.attributes.items()
        )
        if span.error:
            out.status.code = Status.STATUS_CODE_ERROR
    return request.SerializeToString()  # type: ignore[no-any-return]


def encode_json(spans: Sequence[Span], service_name: str) -> bytes:
    """OTLP/JSON: ids as hex, times as strings of nanoseconds (the OTLP/HTTP JSON mapping)."""
    items: list[dict[str, Any]] = []
    for span in spans:
        item: dict[str, Any] = {
            "traceId": span.trace_id,
            "spanId": span.span_id,
            "name": span.name,
            "kind": span.kind,
            "startTimeUnixNano": str(span.start_ns),
            "endTimeUnixNano": str(span.end_ns),
            "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in span.attributes.items()],
        }
        if span.parent_id:
            item["parentSpanId"] = span.parent_id
        if span.error:
            item["status"] = {"code": STATUS_ERROR}
        items.append(item)
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service_name}}]},
                "scopeSpans": [{"scope": {"name": SCOPE}, "spans": items}],
            }
        ]
    }
    return json.dumps(body, separators=(",", ":")).encode()
