"""Recent traces, kept by the control plane: the spans sidecars send (OTLP/HTTP) and ``loom trace``.

POST /v1/traces              OTLP/HTTP, JSON (what sidecars send) or protobuf; a workload client
                             certificate is needed (401 without one)
GET  /v1/traces?limit=N&service=S
                             the latest traces, newest first: trace id, root service and operation,
                             start, duration, span count, error
GET  /v1/traces/{trace_id}   one trace's spans, by start time

The store is bounded: the last ``max_traces`` traces and ``max_spans`` spans (the oldest traces go
first), all in memory — a window on recent requests, not a tracing backend.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from loom.controlplane.auth import peer_identity, unauthorized

MAX_TRACES = 1000
MAX_SPANS = 50_000
MAX_BODY = 8 * 1024 * 1024
KINDS = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


@dataclass
class StoredSpan:
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str
    service: str
    start_ns: int
    end_ns: int
    attributes: dict[str, str] = field(default_factory=dict)
    error: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_id": self.parent_id,
            "name": self.name,
            "kind": self.kind,
            "service": self.service,
            "start_unix_nano": self.start_ns,
            "end_unix_nano": self.end_ns,
            "duration_ms": round((self.end_ns - self.start_ns) / 1e6, 3),
            "error": self.error,
            "attributes": self.attributes,
        }


class TraceStore:
    def __init__(self, max_traces: int = MAX_TRACES, max_spans: int = MAX_SPANS) -> None:
        self.max_traces = max_traces
        self.max_spans = max_spans
        self.traces: OrderedDict[str, list[StoredSpan]] = OrderedDict()
        """Trace id → spans, least recently started trace first."""
        self.span_count = 0

    def add(self, spans: list[StoredSpan]) -> None:
        for span in spans:
            found = self.traces.get(span.trace_id)
            if found is None:
                found = self.traces[span.trace_id] = []
            found.append(span)
            self.span_count += 1
        while self.traces and (len(self.traces) > self.max_traces or self.span_count > self.max_spans):
            _, dropped = self.traces.popitem(last=False)
            self.span_count -= len(dropped)

    def trace(self, trace_id: str) -> list[StoredSpan] | None:
        spans = self.traces.get(trace_id.lower())
        return sorted(spans, key=lambda s: (s.start_ns, s.kind != "CLIENT")) if spans else None

    def summaries(self, limit: int, service: str | None = None) -> list[dict[str, Any]]:
        out = []
        for trace_id in reversed(self.traces):
            spans = self.traces[trace_id]
            if service is not None and not any(_matches(s.service, service) for s in spans):
                continue
            out.append(summary(trace_id, spans))
            if len(out) >= limit:
                break
        return out


def _matches(name: str, wanted: str) -> bool:
    return name == wanted or name.split(".", 1)[0] == wanted


def summary(trace_id: str, spans: list[StoredSpan]) -> dict[str, Any]:
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if s.parent_id is None or s.parent_id not in ids]
    root = min(roots or spans, key=lambda s: s.start_ns)
    start = min(s.start_ns for s in spans)
    end = max(s.end_ns for s in spans)
    return {
        "trace_id": trace_id,
        "root_service": root.service,
        "root_operation": root.name,
        "start_unix_nano": start,
        "duration_ms": round((end - start) / 1e6, 3),
        "spans": len(spans),
        "error": any(s.error for s in spans),
    }


# --- decoding OTLP -------------------------------------------------------------------------------


def decode(body: bytes, content_type: str) -> list[StoredSpan]:
    """The spans of an OTLP ``ExportTraceServiceRequest``, JSON or protobuf; ValueError if neither."""
    if "json" in content_type:
        return _from_json(json.loads(body))
    return _from_protobuf(body)


def _from_json(data: dict[str, Any]) -> list[StoredSpan]:
    out = []
    for resource_spans in data.get("resourceSpans", ()):
        attrs = _json_attributes(resource_spans.get("resource", {}).get("attributes", ()))
        service = attrs.get("service.name", "unknown")
        for scope_spans in resource_spans.get("scopeSpans", ()):
            for span in scope_spans.get("spans", ()):
                out.append(
                    StoredSpan(
                        trace_id=str(span["traceId"]).lower(),
                        span_id=str(span["spanId"]).lower(),
                        parent_id=str(span.get("parentSpanId") or "").lower() or None,
                        name=str(span.get("name", "")),
                        kind=KINDS.get(int(span.get("kind", 0)), "UNSPECIFIED"),
                        service=service,
                        start_ns=int(span.get("startTimeUnixNano", 0)),
                        end_ns=int(span.get("endTimeUnixNano", 0)),
                        attributes=_json_attributes(span.get("attributes", ())),
                        error=int(span.get("status", {}).get("code", 0)) == 2,
                    )
                )
    return out


def _json_attributes(items: Any) -> dict[str, str]:
    out = {}
    for item in items:
        value = item.get("value", {})
        out[str(item["key"])] = str(next(iter(value.values()), "")) if isinstance(value, dict) else str(value)
    return out


def _from_protobuf(body: bytes) -> list[StoredSpan]:
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    message = ExportTraceServiceRequest()
    try:
        message.ParseFromString(body)
    except DecodeError as exc:
        raise ValueError(f"not an OTLP ExportTraceServiceRequest: {exc}") from None
    out = []
    for resource_spans in message.resource_spans:
        attrs = {kv.key: _pb_value(kv.value) for kv in resource_spans.resource.attributes}
        service = attrs.get("service.name", "unknown")
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                out.append(
                    StoredSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex() or None,
                        name=span.name,
                        kind=KINDS.get(span.kind, "UNSPECIFIED"),
                        service=service,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        attributes={kv.key: _pb_value(kv.value) for kv in span.attributes},
                        error=span.status.code == 2,
                    )
                )
    return out


def _pb_value(value: Any) -> str:
    which = value.WhichOneof("value")
    return str(getattr(value, which)) if which else ""


# --- the routes -----------------------------------------------------------------------------------


def add_trace_routes(app: web.Application, store: TraceStore | None = None) -> TraceStore:
    store = store if store is not None else TraceStore()

    async def receive(request: web.Request) -> web.Response:
        if peer_identity(request) is None:
            return unauthorized("a workload client certificate is needed to send spans")
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _error(413, "too many spans in one request")
        try:
            spans = decode(await request.read(), request.content_type)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return _error(400, f"invalid OTLP trace export: {exc}")
        store.add(spans)
        return web.json_response({"partialSuccess": {}})

    async def listing(request: web.Request) -> web.Response:
        try:
            limit = max(1, min(int(request.query.get("limit", "20")), MAX_TRACES))
        except ValueError:
            return _error(400, "limit takes a number")
        return web.json_response(store.summaries(limit, request.query.get("service") or None))

    async def one(request: web.Request) -> web.Response:
        trace_id = request.match_info["trace_id"]
        spans = store.trace(trace_id)
        if spans is None:
            return _error(404, f"no trace {trace_id} (the control plane keeps the last {store.max_traces})")
        return web.json_response(
            {**summary(trace_id.lower(), spans), "span_list": [s.to_json() for s in spans]}
        )

    app.router.add_post("/v1/traces", receive)
    app.router.add_get("/v1/traces", listing)
    app.router.add_get("/v1/traces/{trace_id}", one)
    return store


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
