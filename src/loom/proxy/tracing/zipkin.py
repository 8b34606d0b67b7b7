"""Zipkin JSON v2 (``POST /api/v2/spans``), with the standard library's json."""

from __future__ import annotations

import json
from collections.abc import Sequence

from loom.proxy.tracing.span import SERVER, Span

CONTENT_TYPE = b"application/json"


def encode(spans: Sequence[Span], service_name: str) -> bytes:
    endpoint = {"serviceName": service_name}
    out = []
    for span in spans:
        item: dict[str, object] = {
            "traceId": span.trace_id,
            "id": span.span_id,
            "name": span.name,
            "kind": "SERVER" if span.kind == SERVER else "CLIENT",
            "timestamp": span.start_ns // 1000,
            "duration": max(1, (span.end_ns - span.start_ns) // 1000),
            "localEndpoint": endpoint,
            "tags": span.attributes,
        }
        if span.parent_id:
            item["parentId"] = span.parent_id
        peer = span.attributes.get("peer.address")
        if peer:
            item["remoteEndpoint"] = {"ipv6" if ":" in peer else "ipv4": peer}
        out.append(item)
    return json.dumps(out, separators=(",", ":")).encode()
