"""Distributed tracing through real sidecars: client sidecar (outbound) → server sidecar (inbound) →
backend, spans exported to a receiver started by the test (OTLP protobuf and Zipkin JSON)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.backend import Backend, echo
from tests.support.collector import Collector
from tests.support.mesh import free_port
from tests.support.prom import total
from tests.support.proxy import ProxyProcess, wait_until
from tests.support.snapshots import Doc, cluster, endpoint, route_to, sidecar

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def tracing(collectors: list[Doc], sampling: float = 100.0) -> Doc:
    return {"tracing": {"sampling": sampling, "collectors": collectors, "flush_interval": "100ms"}}


def server_doc(backend_port: int, telemetry: Doc) -> Doc:
    doc = sidecar([route_to(("inbound", 1))], [], direction="inbound", telemetry=telemetry)
    doc["node"] = {"workload": "catalog-v1", "namespace": "default", "labels": {"app": "catalog"}}
    doc["clusters"] = [
        {
            "name": "inbound",
            "service": "catalog.default.svc.cluster.local",
            "endpoints": [endpoint(backend_port)],
        }
    ]
    return doc


def client_doc(server_port: int, telemetry: Doc) -> Doc:
    return sidecar([route_to(("catalog", 1))], [cluster("catalog", [server_port])], telemetry=telemetry)


Pair = Callable[[Doc], Any]


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    started = await Backend("catalog").start()
    yield started
    await started.stop()


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    started = await Collector().start()
    yield started
    await started.stop()


@pytest.fixture
async def pair(tmp_path: Path, backend: Backend) -> AsyncIterator[Pair]:
    """``await pair(telemetry)`` → (client proxy, server proxy), both with ``telemetry``."""
    started: list[ProxyProcess] = []

    async def start(telemetry: Doc) -> tuple[ProxyProcess, ProxyProcess]:
        server = await ProxyProcess(tmp_path, server_doc(backend.port, telemetry), "server").start()
        started.append(server)
        client = await ProxyProcess(tmp_path, client_doc(server.port("inbound"), telemetry), "client").start()
        started.append(client)
        return client, server

    yield start
    for process in started:
        await process.stop()


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers or {}) as response:
        body = await response.read()
        if response.status != 200:
            return response.status, {}
        seen = echo(body)
        seen["headers"] = {k.lower(): v for k, v in seen["headers"].items()}  # type: ignore[union-attr]
        return response.status, seen


async def one_trace(collector: Collector, count: int = 2) -> list[dict[str, Any]]:
    await wait_until(lambda: len(collector.spans) >= count, 10.0, f"{count} spans")
    return collector.spans


def check_pair(
    spans: list[dict[str, Any]], trace_id: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    client = next(s for s in spans if s["kind"] == "CLIENT")
    server = next(s for s in spans if s["kind"] == "SERVER")
    assert client["trace_id"] == server["trace_id"]
    if trace_id is not None:
        assert client["trace_id"] == trace_id
    assert server["parent_id"] == client["span_id"]
    slack = 2_000_000  # 2 ms: each process converts its monotonic clock to wall time itself
    assert client["start"] - slack <= server["start"] <= server["end"] <= client["end"] + slack
    return client, server


async def test_otlp_client_and_server_spans(pair: Pair, collector: Collector, backend: Backend) -> None:
    client, _ = await pair(tracing([{"protocol": "otlp", "url": collector.otlp_url}]))
    status, seen = await get(client.url("/echo?x=1"), {"Host": "catalog"})
    assert status == 200
    spans = await one_trace(collector)
    assert len(spans) == 2 and set(collector.content_types) == {"application/x-protobuf"}
    out, inbound = check_pair(spans)
    assert out["parent_id"] is None  # the trace started at the client's sidecar
    # The app sees W3C headers carrying the server span as parent, and the request id.
    assert seen["headers"]["traceparent"] == f"00-{inbound['trace_id']}-{inbound['span_id']}-01"
    assert inbound["attributes"]["guid:x-request-id"] == seen["headers"]["x-request-id"]
    assert out["attributes"]["guid:x-request-id"] == seen["headers"]["x-request-id"]
    assert out["service"] == "client.default" and inbound["service"] == "catalog.default"
    assert out["name"] == "catalog.default.svc.cluster.local:80/*"
    assert inbound["name"] == f"catalog.default.svc.cluster.local:{backend.port}/*"
    for span in (out, inbound):
        attrs = span["attributes"]
        assert attrs["http.method"] == "GET" and attrs["http.status_code"] == "200"
        assert attrs["http.url"] == "http://catalog/echo?x=1"
        assert attrs["response_flags"] == "-" and not span["error"]
        assert attrs["peer.address"] == "127.0.0.1"
    assert out["attributes"]["istio.canonical_service"] == "client"
    assert inbound["attributes"]["istio.canonical_service"] == "catalog"
    assert inbound["attributes"]["istio.namespace"] == "default"
    assert out["attributes"]["upstream_cluster"] == "catalog"
    assert inbound["attributes"]["upstream_cluster"] == "inbound"
    # A 5xx is an error span on both sides.
    collector.spans.clear()
    status, _ = await get(client.url("/status/503"), {"Host": "catalog"})
    assert status == 503
    spans = await one_trace(collector)
    out, inbound = check_pair(spans)
    assert out["error"] and inbound["error"]
    assert out["attributes"]["http.status_code"] == "503"
    assert total(await client.metrics(), "loom_tracing_spans_exported_total") >= 1


async def test_zipkin_json(pair: Pair, collector: Collector) -> None:
    client, _ = await pair(tracing([{"protocol": "zipkin", "url": collector.zipkin_url}]))
    status, _ = await get(client.url("/echo"), {"Host": "catalog"})
    assert status == 200
    spans = await one_trace(collector)
    assert set(collector.content_types) == {"application/json"}
    out, inbound = check_pair(spans)
    assert out["attributes"]["http.status_code"] == "200"
    assert inbound["service"] == "catalog.default"


async def test_incoming_w3c_and_b3_are_continued(pair: Pair, collector: Collector) -> None:
    client, _ = await pair(tracing([{"protocol": "otlp", "url": collector.otlp_url}], sampling=0))
    # W3C, sampled upstream: continued although this mesh samples 0%.
    _, seen = await get(client.url("/echo"), {"Host": "catalog", "traceparent": f"00-{TRACE}-{PARENT}-01"})
    out, inbound = check_pair(await one_trace(collector), TRACE)
    assert out["parent_id"] == PARENT
    assert seen["headers"]["traceparent"].startswith(f"00-{TRACE}-{inbound['span_id']}-01")
    # B3 multi-header, 64-bit trace id: continued and forwarded in B3 too.
    collector.spans.clear()
    headers = {"Host": "catalog", "X-B3-TraceId": PARENT, "X-B3-SpanId": "a" * 16, "X-B3-Sampled": "1"}
    _, seen = await get(client.url("/echo"), headers)
    out, inbound = check_pair(await one_trace(collector), "0" * 16 + PARENT)
    assert out["parent_id"] == "a" * 16
    assert seen["headers"]["x-b3-traceid"] == PARENT
    assert seen["headers"]["x-b3-spanid"] == inbound["span_id"]
    assert seen["headers"]["x-b3-parentspanid"] == out["span_id"]
    # B3 single header.
    collector.spans.clear()
    _, seen = await get(client.url("/echo"), {"Host": "catalog", "b3": f"{TRACE}-{'b' * 16}-1"})
    out, inbound = check_pair(await one_trace(collector), TRACE)
    assert out["parent_id"] == "b" * 16
    assert seen["headers"]["b3"] == f"{TRACE}-{inbound['span_id']}-1-{out['span_id']}"


async def test_not_sampled_upstream_is_honoured(pair: Pair, collector: Collector) -> None:
    client, _ = await pair(tracing([{"protocol": "otlp", "url": collector.otlp_url}], sampling=100))
    not_sampled = f"00-{TRACE}-{PARENT}-00"
    _, seen = await get(client.url("/echo"), {"Host": "catalog", "traceparent": not_sampled})
    assert seen["headers"]["traceparent"] == not_sampled  # passed on untouched
    _, seen = await get(client.url("/echo"), {"Host": "catalog", "X-B3-Sampled": "0"})
    # A marker request, sampled: once its spans arrive, the earlier ones would have too.
    _, seen = await get(client.url("/echo"), {"Host": "catalog"})
    await one_trace(collector)
    await asyncio.sleep(0)  # let nothing else in
    assert {s["trace_id"] for s in collector.spans} == {seen["headers"]["traceparent"].split("-")[1]}


async def test_sampling_zero_exports_nothing(pair: Pair, collector: Collector) -> None:
    client, _ = await pair(tracing([{"protocol": "otlp", "url": collector.otlp_url}], sampling=0))
    for _ in range(20):
        _, seen = await get(client.url("/echo"), {"Host": "catalog"})
        assert seen["headers"]["traceparent"].endswith("-00")  # the decision travels
    # Sampled spans from another request would show up within a flush interval; none do.
    _, seen = await get(client.url("/echo"), {"Host": "catalog", "traceparent": f"00-{TRACE}-{PARENT}-01"})
    await one_trace(collector)
    assert {s["trace_id"] for s in collector.spans} == {TRACE}


async def test_dead_collector_drops_and_requests_succeed(pair: Pair) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1/traces"
    client, _ = await pair(tracing([{"protocol": "otlp", "url": dead}]))
    for _ in range(30):
        status, _ = await get(client.url("/echo"), {"Host": "catalog"})
        assert status == 200

    async def dropped() -> bool:
        return total(await client.metrics(), "loom_tracing_spans_dropped_total") >= 30

    await wait_until(dropped, 10.0, "the client's 30 spans to be counted as dropped")
    assert total(await client.metrics(), "loom_tracing_spans_exported_total") == 0
