"""Route actions through a real proxy: header operations, rewrites, redirects, direct responses,
fault injection, mirroring, retries and load balancing."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest

from tests.support.backend import echo
from tests.support.features import feature_backends
from tests.support.load import run_load
from tests.support.prom import total
from tests.support.proxy import wait_until
from tests.support.snapshots import cluster, route_to, sidecar


@pytest.fixture
async def features():
    async with feature_backends() as make:
        yield make


async def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound once, then released)."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return port


# --- headers, rewrites and local answers ----------------------------------------------------


async def test_request_and_response_header_operations(features, proxy) -> None:
    server = await features("v1")
    route = {
        **route_to(("catalog", 1)),
        "request_headers": {
            "set": {"x-env": "prod"},
            "add": {"x-tag": "added"},
            "remove": ["x-drop-me"],
        },
        "response_headers": {"set": {"x-served-by": "loom"}, "remove": ["x-backend-secret"]},
    }
    sidecar_proxy = await proxy(sidecar([route], [cluster("catalog", [server.port])]))

    async with aiohttp.ClientSession() as session:
        headers = [("x-env", "dev"), ("x-tag", "mine"), ("x-drop-me", "1"), ("x-keep", "yes")]
        async with session.get(sidecar_proxy.url("/headers"), headers=headers) as response:
            body = await response.json()
            got = response.headers

    seen = {k.lower(): v for k, v in body["headers"].items()}
    assert seen["x-env"] == "prod"
    assert seen["x-tag"] == "mine,added"
    assert "x-drop-me" not in seen and seen["x-keep"] == "yes"
    assert got["x-served-by"] == "loom"
    assert "x-backend-secret" not in got and got["x-backend"] == "v1"


async def test_uri_prefix_and_authority_rewrite(backend, proxy) -> None:
    server = await backend("v1")
    rewrite = {
        "matches": [{"path": {"prefix": "/old/"}}],
        **route_to(("catalog", 1), rewrite={"uri_prefix": "/echo/", "authority": "books.internal:9090"}),
    }
    sidecar_proxy = await proxy(
        sidecar([rewrite, route_to(("catalog", 1))], [cluster("catalog", [server.port])])
    )

    async with httpx.AsyncClient(timeout=10) as client:
        rewritten = await client.get(sidecar_proxy.url("/old/shelf/7?sort=asc"), headers={"Host": "catalog"})
        untouched = await client.get(sidecar_proxy.url("/echo/shelf"), headers={"Host": "catalog"})

    assert rewritten.status_code == 200
    seen = rewritten.json()
    assert seen["path"] == "/echo/shelf/7" and seen["query"] == "sort=asc"
    assert seen["headers"]["Host"] == "books.internal:9090"
    assert untouched.json()["path"] == "/echo/shelf"
    assert untouched.json()["headers"]["Host"] == "catalog"


async def test_redirect_and_direct_response(backend, proxy) -> None:
    server = await backend("v1")
    redirect = {
        "matches": [{"path": {"prefix": "/moved"}}],
        "redirect": {"uri": "/new-home", "authority": "shop.example.com", "code": 302},
    }
    to_https = {"matches": [{"path": {"prefix": "/secure"}}], "redirect": {"scheme": "https"}}
    direct = {
        "matches": [{"path": {"exact": "/teapot"}}],
        "direct_response": {"status": 418, "body": "short and stout\n"},
    }
    doc = sidecar([redirect, to_https, direct, route_to(("catalog", 1))], [cluster("catalog", [server.port])])
    sidecar_proxy = await proxy(doc)

    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:
        moved = await client.get(sidecar_proxy.url("/moved/item?id=3"), headers={"Host": "catalog"})
        secure = await client.get(sidecar_proxy.url("/secure/login"), headers={"Host": "catalog"})
        teapot = await client.get(sidecar_proxy.url("/teapot"), headers={"Host": "catalog"})

    assert moved.status_code == 302
    assert moved.headers["location"] == "http://shop.example.com/new-home?id=3"
    assert secure.status_code == 301
    assert secure.headers["location"] == "https://catalog/secure/login"
    assert teapot.status_code == 418 and teapot.text == "short and stout\n"
    assert server.requests == 0


# --- fault injection --------------------------------------------------------------------------


async def test_fault_abort_all_requests(backend, proxy) -> None:
    server = await backend("v1")
    route = {**route_to(("catalog", 1)), "fault": {"abort": {"http_status": 503, "percentage": 100}}}
    sidecar_proxy = await proxy(sidecar([route], [cluster("catalog", [server.port])]))

    result = await run_load(sidecar_proxy.url("/"), 50, concurrency=5)

    assert result.statuses == {503: 50}, result
    assert server.requests == 0
    metrics = await sidecar_proxy.metrics()
    assert total(metrics, "istio_requests_total", response_code="503", response_flags="FI") == 50


async def test_fault_abort_half_of_the_requests(backend, proxy) -> None:
    server = await backend("v1")
    route = {**route_to(("catalog", 1)), "fault": {"abort": {"http_status": 500, "percentage": 50}}}
    sidecar_proxy = await proxy(sidecar([route], [cluster("catalog", [server.port])]))

    result = await run_load(sidecar_proxy.url("/"), 400, concurrency=16)

    assert result.total == 400 and not result.errors
    aborted = result.statuses[500]
    # Binomial(400, 0.5): standard deviation 10; ±60 is six of them.
    assert 140 <= aborted <= 260, result.statuses
    assert result.statuses[200] == 400 - aborted == server.requests


async def test_fault_fixed_delay(backend, proxy) -> None:
    server = await backend("v1")
    delay = 0.3
    route = {**route_to(("catalog", 1)), "fault": {"delay": {"fixed": f"{int(delay * 1000)}ms"}}}
    sidecar_proxy = await proxy(sidecar([route], [cluster("catalog", [server.port])]))

    async with aiohttp.ClientSession() as session:
        durations = []
        for _ in range(2):
            started = time.monotonic()
            async with session.get(sidecar_proxy.url("/")) as response:
                assert response.status == 200 and await response.text() == "v1"
            durations.append(time.monotonic() - started)

    assert min(durations) >= delay, durations
    assert max(durations) < delay + 2.0, durations
    metrics = await sidecar_proxy.metrics()
    assert total(metrics, "istio_requests_total", response_code="200", response_flags="DI") == 2


# --- mirroring --------------------------------------------------------------------------------


async def test_mirror_sends_copies_with_shadow_host(features, proxy) -> None:
    primary, shadow = await features("primary"), await features("shadow")
    route = route_to(("catalog", 1), mirror={"cluster": "catalog-shadow"})
    doc = sidecar([route], [cluster("catalog", [primary.port]), cluster("catalog-shadow", [shadow.port])])
    sidecar_proxy = await proxy(doc)

    async with httpx.AsyncClient(proxy=sidecar_proxy.url(""), timeout=10) as client:
        responses = [await client.get(f"http://catalog/echo/{i}") for i in range(20)]

    assert [r.json()["backend"] for r in responses] == ["primary"] * 20
    await wait_until(lambda: shadow.requests == 20, 5.0, "the mirror to receive 20 copies")
    assert primary.requests == 20
    assert {h["Host"] for h in shadow.seen_headers} == {"catalog-shadow"}
    assert {h["Host"] for h in primary.seen_headers} == {"catalog"}


@pytest.mark.parametrize("mirror_state", ["down", "slow"])
async def test_broken_mirror_does_not_affect_the_primary(features, proxy, mirror_state: str) -> None:
    primary = await features("primary")
    mirror_delay = 1.0
    if mirror_state == "slow":
        mirror_port = (await features("shadow", delay=mirror_delay)).port
    else:
        mirror_port = await closed_port()
    route = route_to(("catalog", 1), mirror={"cluster": "catalog-shadow"})
    doc = sidecar([route], [cluster("catalog", [primary.port]), cluster("catalog-shadow", [mirror_port])])
    sidecar_proxy = await proxy(doc)

    durations = []
    async with aiohttp.ClientSession() as session:
        for _ in range(20):
            started = time.monotonic()
            async with session.get(sidecar_proxy.url("/")) as response:
                assert response.status == 200
                assert await response.text() == "primary"
            durations.append(time.monotonic() - started)

    assert primary.requests == 20
    # Each answer comes far sooner than the mirror could have answered.
    assert max(durations) < mirror_delay / 2, durations


# --- retries ----------------------------------------------------------------------------------


async def test_retry_on_5xx_prefers_the_other_endpoint(backend, proxy) -> None:
    good, bad = await backend("good"), await backend("bad")
    bad.force_status = 503
    retry = {"attempts": 1, "retry_on": ["5xx"]}
    # RANDOM picks each endpoint independently: only the retry's steering away from the endpoint
    # that just failed makes every request succeed with a single retry.
    doc = sidecar(
        [route_to(("catalog", 1), retry=retry)],
        [cluster("catalog", [good.port, bad.port], lb_policy="RANDOM")],
    )
    sidecar_proxy = await proxy(doc)

    result = await run_load(sidecar_proxy.url("/"), 200, concurrency=8)

    assert result.statuses == {200: 200}, result
    assert result.bodies == {"good": 200}
    assert bad.requests >= 50, "the failing endpoint should have been tried first about half the time"
    assert good.requests == 200


async def test_retry_with_two_attempts_against_a_503_endpoint(backend, proxy) -> None:
    good, bad = await backend("good"), await backend("bad")
    bad.force_status = 503
    retry = {"attempts": 2, "retry_on": ["5xx"]}
    doc = sidecar(
        [route_to(("catalog", 1), retry=retry)],
        [cluster("catalog", [good.port, bad.port], lb_policy="ROUND_ROBIN")],
    )
    sidecar_proxy = await proxy(doc)

    result = await run_load(sidecar_proxy.url("/"), 100, concurrency=4)

    assert result.statuses == {200: 100}, result
    assert good.requests == 100
    # Tried first for some requests, and never twice for one: each retry went to the other endpoint.
    assert 0 < bad.requests <= 100, bad.requests
    metrics = await sidecar_proxy.metrics()
    assert total(metrics, "istio_requests_total", response_code="503") == 0

    # A streamed (chunked) request body is replayed whole on the retry.
    async def body() -> AsyncIterator[bytes]:
        for i in range(3):
            yield b"part-%d;" % i
            await asyncio.sleep(0.005)

    retried_before = bad.requests
    async with aiohttp.ClientSession() as session:
        for _ in range(6):
            async with session.post(sidecar_proxy.url("/echo"), data=body()) as response:
                assert response.status == 200
                assert echo(await response.read())["body"] == "part-0;part-1;part-2;"
    assert bad.requests > retried_before


async def test_per_try_timeout_retries_onto_a_healthy_endpoint(features, proxy) -> None:
    fast, slow = await features("fast"), await features("slow", delay=1.0)
    retry = {"attempts": 2, "per_try_timeout": "150ms", "retry_on": ["5xx"]}
    doc = sidecar(
        [route_to(("catalog", 1), retry=retry)],
        [cluster("catalog", [fast.port, slow.port], lb_policy="ROUND_ROBIN")],
    )
    sidecar_proxy = await proxy(doc)

    durations = []
    async with aiohttp.ClientSession() as session:
        for _ in range(8):
            started = time.monotonic()
            async with session.get(sidecar_proxy.url("/")) as response:
                assert response.status == 200
                assert await response.text() == "fast"
            durations.append(time.monotonic() - started)

    assert slow.arrivals >= 2, "no try ever went to the slow endpoint"
    assert max(durations) < 0.7, durations


# --- load balancing ---------------------------------------------------------------------------


async def test_round_robin_spreads_evenly(backend, proxy) -> None:
    servers = [await backend(f"e{i}") for i in range(3)]
    doc = sidecar(
        [route_to(("catalog", 1))],
        [cluster("catalog", [s.port for s in servers], lb_policy="ROUND_ROBIN")],
    )
    sidecar_proxy = await proxy(doc)

    result = await run_load(sidecar_proxy.url("/"), 300, concurrency=6)

    assert result.ok == 300, result
    counts = sorted(result.bodies.values())
    assert set(result.bodies) == {"e0", "e1", "e2"}
    assert counts[-1] - counts[0] <= 3, result.bodies


async def test_consistent_hash_by_header_keeps_affinity(backend, proxy) -> None:
    servers = [await backend(f"e{i}") for i in range(3)]
    doc = sidecar(
        [route_to(("catalog", 1))],
        [
            cluster(
                "catalog",
                [s.port for s in servers],
                lb_policy="CONSISTENT_HASH",
                consistent_hash={"header": "x-user"},
            )
        ],
    )
    sidecar_proxy = await proxy(doc)

    owners: dict[str, Counter[str]] = {}
    async with aiohttp.ClientSession() as session:

        async def ask(user: str) -> None:
            for _ in range(8):
                async with session.get(sidecar_proxy.url("/"), headers={"x-user": user}) as response:
                    assert response.status == 200
                    owners.setdefault(user, Counter())[await response.text()] += 1

        await asyncio.gather(*(ask(f"user-{n}") for n in range(30)))

    sticky = {user: list(seen) for user, seen in owners.items()}
    assert all(len(seen) == 1 for seen in sticky.values()), sticky
    used = {seen[0] for seen in sticky.values()}
    assert len(used) >= 2, f"30 keys all hashed to {used}"


async def test_mirror_copies_a_body_that_arrives_after_the_head(features, proxy) -> None:
    primary, shadow = await features("primary"), await features("shadow")
    route = route_to(("catalog", 1), mirror={"cluster": "catalog-shadow"})
    doc = sidecar([route], [cluster("catalog", [primary.port]), cluster("catalog-shadow", [shadow.port])])
    sidecar_proxy = await proxy(doc)
    body = b"order=42&qty=3" * 100

    reader, writer = await asyncio.open_connection("127.0.0.1", sidecar_proxy.port())
    writer.write(b"POST /upload HTTP/1.1\r\nHost: catalog\r\nContent-Length: %d\r\n\r\n" % len(body))
    await writer.drain()
    # The head has gone upstream before any of the body exists.
    await wait_until(lambda: primary.arrivals == 1, 5.0, "the head to reach the primary")
    writer.write(body)
    await writer.drain()
    status_line = await reader.readline()
    writer.close()

    assert status_line.startswith(b"HTTP/1.1 200")
    await wait_until(lambda: len(shadow.uploads) == 1, 5.0, "the mirror to receive the copy")
    assert shadow.uploads == primary.uploads == [hashlib.sha256(body).hexdigest()]


async def test_consistent_hash_cookie_is_minted_when_absent_and_keeps_affinity(backend, proxy) -> None:
    servers = [await backend(f"e{i}") for i in range(3)]
    hashing = {"cookie": {"name": "loom-affinity", "ttl": "1h"}}
    doc = sidecar(
        [route_to(("catalog", 1))],
        [cluster("catalog", [s.port for s in servers], lb_policy="CONSISTENT_HASH", consistent_hash=hashing)],
    )
    sidecar_proxy = await proxy(doc)

    owners: list[set[str]] = []
    for _ in range(12):  # twelve browsers, each with its own cookie jar (which keeps cookies from IPs)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            async with session.get(sidecar_proxy.url("/")) as first:
                set_cookie = first.headers.get("Set-Cookie", "")
                seen = {await first.text()}
            assert set_cookie.startswith("loom-affinity=") and "Max-Age=3600" in set_cookie, set_cookie
            for _ in range(6):  # the jar sends the cookie back: no new one, the same endpoint
                async with session.get(sidecar_proxy.url("/")) as again:
                    assert "Set-Cookie" not in again.headers
                    seen.add(await again.text())
            owners.append(seen)

    assert all(len(seen) == 1 for seen in owners), owners
    assert len({next(iter(seen)) for seen in owners}) >= 2, "twelve fresh cookies all hashed to one endpoint"
