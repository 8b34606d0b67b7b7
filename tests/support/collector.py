"""Span receivers for tests: OTLP/HTTP (protobuf or JSON) and Zipkin JSON v2, aiohttp servers in the
test's loop. Received spans are normalised to dicts: trace_id, span_id, parent_id (hex), name, kind
(SERVER/CLIENT), service, start/end (ns), attributes, error."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

KINDS = {2: "SERVER", 3: "CLIENT"}


@dataclass
class Collector:
    spans: list[dict[str, Any]] = field(default_factory=list)
    posts: int = 0
    content_types: list[str] = field(default_factory=list)
    runner: web.AppRunner | None = None
    port: int = 0

    async def start(self) -> Collector:
        app = web.Application()
        app.router.add_post("/v1/traces", self.otlp)
        app.router.add_post("/api/v2/spans", self.zipkin)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    @property
    def otlp_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/traces"

    @property
    def zipkin_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v2/spans"

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        return [span for span in self.spans if span["trace_id"] == trace_id]

    async def otlp(self, request: web.Request) -> web.Response:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        self.posts += 1
        self.content_types.append(request.content_type)
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        for resource_spans in message.resource_spans:
            attrs = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        {
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_id": span.parent_span_id.hex() or None,
                            "name": span.name,
                            "kind": KINDS.get(span.kind, str(span.kind)),
                            "service": attrs.get("service.name"),
                            "start": span.start_time_unix_nano,
                            "end": span.end_time_unix_nano,
                            "attributes": {kv.key: kv.value.string_value for kv in span.attributes},
                            "error": span.status.code == 2,
                        }
                    )
        return web.Response(content_type="application/x-protobuf", body=b"")

    async def zipkin(self, request: web.Request) -> web.Response:
        self.posts += 1
        self.content_types.append(request.content_type)
        for span in json.loads(await request.read()):
            self.spans.append(
                {
                    "trace_id": span["traceId"],
                    "span_id": span["id"],
                    "parent_id": span.get("parentId"),
                    "name": span["name"],
                    "kind": span["kind"],
                    "service": span["localEndpoint"]["serviceName"],
                    "start": span["timestamp"] * 1000,
                    "end": (span["timestamp"] + span["duration"]) * 1000,
                    "attributes": span.get("tags", {}),
                    "error": span.get("tags", {}).get("error") == "true",
                }
            )
        return web.Response(status=202)
