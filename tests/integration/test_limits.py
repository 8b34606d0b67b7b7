"""Timeouts (504 UT) and connection limits (503 UO), and the flags they leave in metrics."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.support.snapshots import cluster, route_to, sidecar


async def test_route_timeout_is_504_with_flag_ut(backend, proxy) -> None:
    slow = await backend("slow")
    doc = sidecar([route_to(("catalog", 1), timeout="300ms")], [cluster("catalog", [slow.port])])
    sidecar_proxy = await proxy(doc)

    async with aiohttp.ClientSession() as session:
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with session.get(sidecar_proxy.url("/delay/5")) as response:
            body = await response.text()
        elapsed = loop.time() - started

    assert response.status == 504
    assert "timeout" in body
    assert elapsed < 4.0  # answered at the route timeout, not when the backend finished
    metrics = await sidecar_proxy.metrics()
    assert 'response_code="504"' in metrics and 'response_flags="UT"' in metrics


async def test_connection_limit_overflow_is_503_with_flag_uo(backend, proxy) -> None:
    slow = await backend("slow")
    limits = {"max_connections": 1, "max_pending_requests": 1}
    doc = sidecar([route_to(("catalog", 1))], [cluster("catalog", [slow.port], limits=limits)])
    sidecar_proxy = await proxy(doc)

    connector = aiohttp.TCPConnector(limit=10)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def call() -> tuple[int, str]:
            async with session.get(sidecar_proxy.url("/delay/1")) as response:
                return response.status, await response.text()

        results = await asyncio.gather(*(call() for _ in range(4)))

    statuses = sorted(status for status, _ in results)
    # one in flight, one pending, the other two overflow
    assert statuses == [200, 200, 503, 503], results
    assert all("overflow" in body for status, body in results if status == 503)
    metrics = await sidecar_proxy.metrics()
    assert 'response_flags="UO"' in metrics
