"""HTTP/1.1 through the outbound listener: request forms, name resolution, framing and headers.

Real ``loom proxy`` processes, real backends and real clients (curl, httpx, aiohttp, raw sockets).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shutil
import time

import aiohttp
import httpx
import psutil
import pytest

from tests.support.backend import echo
from tests.support.features import feature_backends, pattern_digest, pattern_stream
from tests.support.prom import total
from tests.support.proxy import wait_until
from tests.support.rawhttp import RawConnection, request
from tests.support.snapshots import Doc, cluster, endpoint, route_to, sidecar

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
async def features():
    async with feature_backends() as make:
        yield make


def mesh_doc(catalog_port: int, orders_port: int) -> Doc:
    """No catch-all host: ``catalog`` in this proxy's namespace on service port 8080, ``orders``
    in namespace ``shop`` on any port."""
    orders = {
        "name": "orders",
        "service": "orders.shop.svc.cluster.local",
        "endpoints": [endpoint(orders_port, "v1", app="orders", namespace="shop")],
    }
    doc = sidecar([route_to(("catalog", 1))], [cluster("catalog", [catalog_port]), orders])
    doc["route_configs"][0]["virtual_hosts"] = [
        {
            "name": "catalog",
            "domains": ["catalog.default.svc.cluster.local"],
            "port": 8080,
            "routes": [route_to(("catalog", 1))],
        },
        {
            "name": "orders",
            "domains": ["orders.shop.svc.cluster.local"],
            "routes": [route_to(("orders", 1))],
        },
    ]
    return doc


# --- request forms and name resolution ------------------------------------------------------


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
async def test_curl_forward_proxy_absolute_form(backend, proxy) -> None:
    catalog, orders = await backend("catalog"), await backend("orders")
    sidecar_proxy = await proxy(mesh_doc(catalog.port, orders.port))

    curl = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--max-time", "10", "-x", sidecar_proxy.url(""),
        "-w", "\n%{http_code}", "http://catalog:8080/echo/books?page=2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await curl.communicate()

    assert curl.returncode == 0, err
    body, _, code = out.decode().rpartition("\n")
    assert code == "200"
    seen = json.loads(body)
    assert seen["backend"] == "catalog"
    assert seen["path"] == "/echo/books" and seen["query"] == "page=2"
    assert seen["headers"]["Host"] == "catalog:8080"
    assert "Proxy-Connection" not in seen["headers"]


async def test_httpx_proxy_and_origin_form_reach_the_same_service(backend, proxy) -> None:
    catalog, orders = await backend("catalog"), await backend("orders")
    sidecar_proxy = await proxy(mesh_doc(catalog.port, orders.port))

    async with httpx.AsyncClient(proxy=sidecar_proxy.url(""), timeout=10) as client:
        absolute = await client.get("http://orders.shop/echo/list")
    async with httpx.AsyncClient(timeout=10) as client:
        origin = await client.get(sidecar_proxy.url("/echo/list"), headers={"Host": "orders.shop.svc"})

    for response in (absolute, origin):
        assert response.status_code == 200, response.text
        assert response.json()["backend"] == "orders"
        assert response.json()["path"] == "/echo/list"
    assert absolute.json()["headers"]["Host"] == "orders.shop"
    assert origin.json()["headers"]["Host"] == "orders.shop.svc"
    assert orders.requests == 2 and catalog.requests == 0


async def test_kubernetes_names_resolve_through_the_snapshot(backend, proxy) -> None:
    catalog, orders = await backend("catalog"), await backend("orders")
    sidecar_proxy = await proxy(mesh_doc(catalog.port, orders.port))
    expectations = {
        "catalog": "catalog",
        "catalog:8080": "catalog",
        "catalog.default": "catalog",
        "catalog.default:8080": "catalog",
        "catalog.default.svc": "catalog",
        "catalog.default.svc:8080": "catalog",
        "catalog.default.svc.cluster.local": "catalog",
        "catalog.default.svc.cluster.local:8080": "catalog",
        "orders.shop": "orders",
        "orders.shop.svc:9000": "orders",
        "orders.shop.svc.cluster.local": "orders",
        # not this proxy's namespace: the bare name does not resolve
        "orders": None,
        # the catalog virtual host answers on its service port only
        "catalog:9999": None,
        "catalog.other": None,
        "unknown.example.com": None,
    }

    got: dict[str, str | None] = {}
    async with aiohttp.ClientSession() as session:
        for host in expectations:
            async with session.get(sidecar_proxy.url("/"), headers={"Host": host}) as response:
                body = (await response.text()).strip()
                got[host] = body if response.status == 200 else None
                if response.status != 200:
                    assert response.status == 404, (host, response.status, body)

    assert got == expectations
    misses = sum(1 for v in expectations.values() if v is None)
    metrics = await sidecar_proxy.metrics()
    assert total(metrics, "istio_requests_total", response_code="404", response_flags="NR") == misses


async def test_unknown_host_is_404_with_flag_nr(backend, proxy) -> None:
    catalog, orders = await backend("catalog"), await backend("orders")
    sidecar_proxy = await proxy(mesh_doc(catalog.port, orders.port))

    async with httpx.AsyncClient(proxy=sidecar_proxy.url(""), timeout=10) as client:
        response = await client.get("http://nowhere.example/x")

    assert response.status_code == 404
    assert "no route" in response.text
    metrics = await sidecar_proxy.metrics()
    assert total(metrics, "istio_requests_total", response_code="404", response_flags="NR") == 1
    assert catalog.requests == 0 and orders.requests == 0


# --- connections and bodies -----------------------------------------------------------------


async def test_keep_alive_is_reused_on_both_sides(features, proxy) -> None:
    server = await features("v1")
    sidecar_proxy = await proxy(sidecar([route_to(("catalog", 1))], [cluster("catalog", [server.port])]))
    opened = 0

    async def on_create(*_: object) -> None:
        nonlocal opened
        opened += 1

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(on_create)
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector, trace_configs=[trace]) as session:
        for _ in range(30):
            async with session.get(sidecar_proxy.url("/books")) as response:
                assert response.status == 200
                assert await response.text() == "v1"

    assert server.requests == 30
    assert opened == 1, "the proxy closed the client's keep-alive connection"
    assert len(server.peers) == 1, f"the proxy opened {len(server.peers)} upstream connections"


async def test_chunked_upload_and_download_stream_without_buffering(features, proxy) -> None:
    server = await features("v1")
    sidecar_proxy = await proxy(sidecar([route_to(("catalog", 1))], [cluster("catalog", [server.port])]))
    size = 48 * 1024 * 1024
    process = psutil.Process(sidecar_proxy.pid)
    baseline = process.memory_info().rss
    peak = baseline
    done = asyncio.Event()

    async def sample_rss() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample_rss())
    timeout = aiohttp.ClientTimeout(total=60)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            # Each side is slow to start reading: the proxy must hold the sender back, not buffer.
            upload = sidecar_proxy.url("/upload?pause=0.5")
            async with session.post(upload, data=pattern_stream(size)) as response:
                uploaded = await response.json()
            digest = hashlib.sha256()
            received = 0
            async with session.get(sidecar_proxy.url(f"/download/{size}")) as response:
                assert response.status == 200
                assert response.headers.get("Transfer-Encoding") == "chunked"
                await asyncio.sleep(0.5)
                async for piece in response.content.iter_any():
                    digest.update(piece)
                    received += len(piece)
    finally:
        done.set()
        await sampler

    expected = pattern_digest(size)
    assert uploaded["transfer_encoding"] == "chunked"
    assert uploaded["bytes"] == size and uploaded["sha256"] == expected
    assert received == size and digest.hexdigest() == expected
    growth = peak - baseline
    assert growth < size // 4, f"proxy RSS grew by {growth / 2**20:.1f} MiB for a {size / 2**20:.0f} MiB body"


async def test_content_length_body_arrives_intact(features, proxy) -> None:
    server = await features("v1")
    sidecar_proxy = await proxy(sidecar([route_to(("catalog", 1))], [cluster("catalog", [server.port])]))
    body = bytes(range(256)) * 4096 + b"tail"

    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.put(sidecar_proxy.url("/upload"), content=body)

    assert response.status_code == 200
    seen = response.json()
    assert seen["content_length"] == str(len(body)) and seen["transfer_encoding"] is None
    assert seen["bytes"] == len(body) and seen["sha256"] == hashlib.sha256(body).hexdigest()


async def test_expect_100_continue(features, proxy) -> None:
    server = await features("v1")
    sidecar_proxy = await proxy(sidecar([route_to(("catalog", 1))], [cluster("catalog", [server.port])]))
    body = b"x" * 100_000
    conn = await RawConnection.open(sidecar_proxy.port())
    try:
        head = request(
            "POST", "/upload", headers=[("Expect", "100-continue"), ("Content-Length", str(len(body)))]
        )
        await conn.send(head)
        interim = await conn.read_response()
        assert interim.status == 100
        await conn.send(body)
        final = await conn.read_response()
    finally:
        await conn.close()

    assert final.status == 200
    seen = json.loads(final.body)
    assert seen["bytes"] == len(body) and seen["sha256"] == hashlib.sha256(body).hexdigest()
    assert "Expect" not in server.seen_headers[0]


async def test_websocket_upgrade_is_tunnelled(features, proxy) -> None:
    server = await features("ws-backend")
    sidecar_proxy = await proxy(sidecar([route_to(("catalog", 1))], [cluster("catalog", [server.port])]))

    async with aiohttp.ClientSession() as session, session.ws_connect(sidecar_proxy.url("/ws")) as ws:
        replies = []
        for i in range(5):
            await ws.send_str(f"hello {i}")
            replies.append(await ws.receive_str(timeout=5))
        await ws.send_bytes(b"\x00\x01binary\xff")
        flipped = await ws.receive_bytes(timeout=5)
        await ws.close()

    assert replies == [f"ws-backend:hello {i}" for i in range(5)]
    assert flipped == b"\x00\x01binary\xff"[::-1]
    assert server.seen_headers[0]["Upgrade"].lower() == "websocket"
    metrics = await sidecar_proxy.metrics()
    assert total(metrics, "istio_requests_total", response_code="101") == 1

    async def tunnel_closed() -> bool:
        listeners = await sidecar_proxy.admin_json("/listeners")
        return next(item for item in listeners if item["name"] == "outbound")["connections"] == 0

    await wait_until(tunnel_closed, 5.0, "the tunnel to close once both sides closed")


# --- headers ----------------------------------------------------------------------------------


async def test_hop_by_hop_headers_are_not_forwarded(backend, proxy) -> None:
    server = await backend("v1")
    sidecar_proxy = await proxy(sidecar([route_to(("catalog", 1))], [cluster("catalog", [server.port])]))
    conn = await RawConnection.open(sidecar_proxy.port())
    try:
        await conn.send(
            request(
                "GET",
                "/echo",
                headers=[
                    ("Connection", "keep-alive, X-Hop-Secret"),
                    ("X-Hop-Secret", "do-not-forward"),
                    ("Keep-Alive", "timeout=5"),
                    ("Proxy-Connection", "keep-alive"),
                    ("TE", "trailers"),
                    ("X-End-To-End", "kept"),
                ],
            )
        )
        response = await conn.read_response()
    finally:
        await conn.close()

    assert response.status == 200
    seen = {k.lower(): v for k, v in echo(response.body)["headers"].items()}  # type: ignore[union-attr]
    assert seen["x-end-to-end"] == "kept"
    for name in ("x-hop-secret", "keep-alive", "proxy-connection", "te"):
        assert name not in seen, f"{name} reached the backend"
    assert seen.get("connection", "keep-alive").lower() == "keep-alive"


async def test_forwarded_headers_and_request_id(backend, proxy) -> None:
    server = await backend("v1")
    sidecar_proxy = await proxy(sidecar([route_to(("catalog", 1))], [cluster("catalog", [server.port])]))

    async def seen(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> dict[str, str]:
        response = await client.get(sidecar_proxy.url("/echo"), headers=headers)
        return {k.lower(): v for k, v in response.json()["headers"].items()}

    async with httpx.AsyncClient(timeout=10) as client:
        plain = await seen(client)
        plain2 = await seen(client)
        chained = await seen(client, {"X-Forwarded-For": "203.0.113.9", "X-Request-Id": "my-request-42"})

    assert plain["x-forwarded-for"] == "127.0.0.1"
    assert plain["x-forwarded-proto"] == "http"
    assert UUID.fullmatch(plain["x-request-id"]) and UUID.fullmatch(plain2["x-request-id"])
    assert plain["x-request-id"] != plain2["x-request-id"]
    assert chained["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert chained["x-request-id"] == "my-request-42"


# --- bodiless responses and pipelining --------------------------------------------------------


async def test_head_204_and_304_have_no_body(features, proxy) -> None:
    server = await features("v1")
    sidecar_proxy = await proxy(sidecar([route_to(("catalog", 1))], [cluster("catalog", [server.port])]))
    conn = await RawConnection.open(sidecar_proxy.port())
    try:
        # Each bodiless reply is followed by a request on the same connection: a stray body byte
        # would corrupt the next status line.
        await conn.send(request("HEAD", "/plain"))
        head = await conn.read_response(head_request=True)
        await conn.send(request("HEAD", "/download/5000"))
        chunked_head = await conn.read_response(head_request=True)
        await conn.send(request("GET", "/after-head"))
        after_head = await conn.read_response()
        await conn.send(request("GET", "/nocontent"))
        no_content = await conn.read_response()
        await conn.send(request("GET", "/notmodified", headers=[("If-None-Match", '"v1"')]))
        not_modified = await conn.read_response()
        await conn.send(request("GET", "/last"))
        last = await conn.read_response()
        await conn.send(request("GET", "/really-last", headers=[("Connection", "close")]))
        closing = await conn.read_response()
        assert await conn.at_eof(), "bytes left over after the last response"
    finally:
        await conn.close()

    assert head.status == 200 and head.header("content-length") == "2"  # len(b"v1"), never sent
    assert chunked_head.status == 200
    assert after_head.status == 200 and after_head.body == b"v1"
    assert no_content.status == 204 and no_content.header("transfer-encoding") is None
    assert not_modified.status == 304 and not_modified.header("etag") == '"v1"'
    assert not_modified.header("transfer-encoding") is None
    assert (last.status, last.body) == (200, b"v1")
    assert (closing.status, closing.body) == (200, b"v1")
    assert server.requests == 7


async def test_pipelined_requests_are_answered_in_order(features, proxy) -> None:
    server = await features("v1")
    sidecar_proxy = await proxy(sidecar([route_to(("catalog", 1))], [cluster("catalog", [server.port])]))
    conn = await RawConnection.open(sidecar_proxy.port())
    try:
        started = time.monotonic()
        await conn.send(
            request("GET", "/delay/0.3")
            + request("GET", "/echo?n=2")
            + request("POST", "/echo?n=3", body=b"third")
            + request("GET", "/echo?n=4")
        )
        responses = [await conn.read_response() for _ in range(4)]
        elapsed = time.monotonic() - started
    finally:
        await conn.close()

    assert [r.status for r in responses] == [200, 200, 200, 200]
    assert responses[0].body == b"v1"
    later = [echo(r.body) for r in responses[1:]]
    assert [e["query"] for e in later] == ["n=2", "n=3", "n=4"]
    assert later[1]["method"] == "POST" and later[1]["body"] == "third"
    assert elapsed >= 0.3
