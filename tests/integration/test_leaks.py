"""Every hostile input of test_hardening, a thousand times over, against one proxy process.

A warm-up round runs every vector at full concurrency; then the proxy's open file descriptors
and RSS are the baseline. Each vector then runs ROUNDS times — on new connections where the
proxy closes them, on kept-alive ones where it does not. After each vector the proxy must hold
no downstream or upstream connection and no more descriptors than at the baseline; at the end
its RSS must be about the same, it must still serve, and /metrics must count every refusal.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import psutil
import pytest

from tests.integration.test_hardening import CL_TE, LIMITS, SMUGGLING
from tests.support.prom import total
from tests.support.proxy import ProxyProcess, wait_until
from tests.support.rawhttp import RawConnection, SilentServer, request
from tests.support.snapshots import Doc, cluster, route_to, sidecar

ROUNDS = 1000
WARMUP = 200
CONCURRENCY = 20
TIMED_CONCURRENCY = 100
"""For vectors that wait on a proxy timer (408, idle close, 504): more sockets, same number of tries."""
RSS_TOLERANCE = 5 * 1024 * 1024
SETTLE_TIMEOUT = 20.0

Fresh = Callable[[dict[str, int]], Awaitable[str]]
"""One try on a new connection, given the listener ports; returns what happened."""
Reused = Callable[[RawConnection], Awaitable[str]]
"""One try on the worker's kept-alive connection to the outbound listener."""


@dataclass(frozen=True)
class Vector:
    name: str
    expect: str
    """What every try must return."""
    fresh: Fresh | None = None
    reused: Reused | None = None
    concurrency: int = CONCURRENCY
    holds_slots: bool = False
    """Fill the listener's max_connections with working connections first (the flood)."""


# one try of each kind ---------------------------------------------------------------------------


def _refused(listener: str, data: bytes, *, after_continue: bytes = b"") -> Fresh:
    """Send ``data`` (and ``after_continue`` once a 100 Continue came), read until the proxy closes.

    Returns the first status line's start, e.g. ``HTTP/1.1 400``.
    """

    async def once(ports: dict[str, int]) -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", ports[listener])
        received = bytearray()
        try:
            writer.write(data)
            async with asyncio.timeout(10.0):
                if after_continue:
                    interim = await reader.readuntil(b"\r\n\r\n")
                    if not interim.startswith(b"HTTP/1.1 100 "):
                        return interim[:12].decode("latin-1")
                    writer.write(after_continue)
                while chunk := await reader.read(65536):
                    received += chunk
        except TimeoutError:
            return "<not closed>"
        except ConnectionResetError:
            if not received:
                return "<reset>"
        finally:
            writer.close()
        return bytes(received[:12]).decode("latin-1")

    return once


def _idle(listener: str) -> Fresh:
    """One request answered 200, then nothing: the proxy closes the connection for being idle."""

    async def once(ports: dict[str, int]) -> str:
        conn = await RawConnection.open(ports[listener])
        try:
            await conn.send(request())
            response = await conn.read_response()
            rest = await conn.wait_closed_by_peer(timeout=10.0)
        finally:
            await conn.close()
        return f"{response.status} then " + ("close" if rest == b"" else repr(rest[:12]))

    return once


def _kept_alive(path: str) -> Reused:
    async def once(conn: RawConnection) -> str:
        await conn.send(request(path=path))
        response = await conn.read_response()
        return f"{response.status} keep-alive={response.header(b'connection') != b'close'}"

    return once


_CONTINUE_HEAD = (
    b"POST /echo HTTP/1.1\r\nHost: catalog\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
)
_OVERSIZED_CHUNKS = b"200\r\n" + b"x" * 512 + b"\r\n400\r\n" + b"y" * 1024 + b"\r\n0\r\n\r\n"
_TE_GZIP_CHUNKED = b"POST / HTTP/1.1\r\nHost: catalog\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"


def _vectors() -> list[Vector]:
    vectors = [
        Vector(f"smuggling:{param.id}", "HTTP/1.1 400", _refused("outbound", param.values[0]))  # type: ignore[arg-type]
        for param in SMUGGLING
    ]
    return [
        *vectors,
        # The valid request is answered, the bad one after it closes the connection.
        Vector(
            "smuggling:after-a-pipelined-request", "HTTP/1.1 200", _refused("outbound", request() + CL_TE)
        ),
        Vector("te-gzip-chunked", "HTTP/1.1 501", _refused("outbound", _TE_GZIP_CHUNKED)),
        Vector("huge-header", "HTTP/1.1 431", _refused("outbound", request(headers=[("X-Big", "a" * 2000)]))),
        Vector(
            "too-many-headers",
            "HTTP/1.1 431",
            _refused("outbound", request(headers=[(f"X-H-{i}", "v") for i in range(12)])),
        ),
        Vector("long-url", "HTTP/1.1 414", _refused("outbound", request(path="/" + "a" * 1000))),
        Vector(
            "body-over-the-limit-by-content-length",
            "HTTP/1.1 413",
            _refused("outbound", request("POST", "/echo", body=b"x" * 4096)),
        ),
        Vector(
            # The 100 Continue shows the request is on its way upstream when the body goes over.
            "chunked-body-over-the-limit-mid-stream",
            "HTTP/1.1 413",
            _refused("outbound", _CONTINUE_HEAD, after_continue=_OVERSIZED_CHUNKS),
        ),
        Vector(
            "slow-head",
            "HTTP/1.1 408",
            _refused("slow", b"GET / HTTP/1.1\r\nHost: catalog\r\nX-Slow: "),
            concurrency=TIMED_CONCURRENCY,
        ),
        Vector("idle-keep-alive", "200 then close", _idle("idle"), concurrency=TIMED_CONCURRENCY),
        Vector("upstream-reset", "502 keep-alive=True", reused=_kept_alive("/reset")),
        Vector(
            "upstream-silent",
            "504 keep-alive=True",
            reused=_kept_alive("/silent"),
            concurrency=TIMED_CONCURRENCY,
        ),
        Vector("connection-flood", "HTTP/1.1 503", _refused("flood", request()), holds_slots=True),
    ]


# running them ---------------------------------------------------------------------------------


async def _repeat(vector: Vector, ports: dict[str, int], times: int) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    remaining = times

    async def worker() -> None:
        nonlocal remaining
        conn = await RawConnection.open(ports["outbound"]) if vector.reused is not None else None
        try:
            while remaining > 0:
                remaining -= 1
                try:
                    if conn is not None:
                        outcome = await vector.reused(conn)  # type: ignore[misc]
                    else:
                        outcome = await vector.fresh(ports)  # type: ignore[misc]
                except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                    outcome = f"<{type(exc).__name__}: {exc}>"
                outcomes[outcome] += 1
        finally:
            if conn is not None:
                await conn.close()

    await asyncio.gather(*(worker() for _ in range(min(vector.concurrency, times))))
    return outcomes


async def _flood(vector: Vector, sidecar_proxy: ProxyProcess, times: int) -> Counter[str]:
    """Take the flood listener's five slots with working connections, flood it, use them again."""
    held = [await RawConnection.open(sidecar_proxy.port("flood")) for _ in range(5)]
    try:
        for conn in held:
            await conn.send(request())
            assert (await conn.read_response()).status == 200
        outcomes = await _repeat(vector, sidecar_proxy.ports, times)
        for conn in held:
            await conn.send(request())
            assert (await conn.read_response()).status == 200, "a connection held through the flood"
    finally:
        for conn in held:
            await conn.close()
    return outcomes


class Watch:
    """The proxy process seen from outside: its connections (admin API), descriptors and RSS."""

    def __init__(self, sidecar_proxy: ProxyProcess) -> None:
        self.proxy = sidecar_proxy
        self.process = psutil.Process(sidecar_proxy.pid)
        self.baseline_fds: int | None = None

    async def no_connections(self) -> bool:
        listeners = await self.proxy.admin_json("/listeners")
        clusters = await self.proxy.admin_json("/clusters")
        downstream = sum(lst["connections"] for lst in listeners)
        upstream = sum(c["open_connections"] for c in clusters)
        return downstream == 0 and upstream == 0

    async def settle(self, after: str) -> None:
        """Wait (bounded) until every connection is gone and the descriptors are back to baseline."""
        await wait_until(
            self.no_connections, SETTLE_TIMEOUT, f"the proxy's connections to close after {after}"
        )
        baseline = self.baseline_fds
        if baseline is None:
            return
        try:
            await wait_until(lambda: self.process.num_fds() <= baseline, SETTLE_TIMEOUT, "descriptors")
        except AssertionError:
            sockets = [(c.laddr, c.raddr, c.status) for c in self.process.net_connections("all")]
            raise AssertionError(
                f"after {after}: {self.process.num_fds()} descriptors open, baseline {baseline}: {sockets}"
            ) from None

    def rss(self) -> int:
        return self.process.memory_info().rss


async def _run_all(vectors: list[Vector], watch: Watch, times: int) -> None:
    sidecar_proxy = watch.proxy
    for vector in vectors:
        if vector.holds_slots:
            outcomes = await _flood(vector, sidecar_proxy, times)
        else:
            outcomes = await _repeat(vector, sidecar_proxy.ports, times)
        assert outcomes == Counter({vector.expect: times}), f"{vector.name}: {outcomes.most_common(5)}"
        assert sidecar_proxy.process is not None and sidecar_proxy.process.poll() is None, (
            f"the proxy died during {vector.name}:\n{sidecar_proxy.log()[-3000:]}"
        )
        await watch.settle(vector.name)


# the test -------------------------------------------------------------------------------------


@pytest.fixture
async def silent() -> AsyncIterator[SilentServer]:
    server = await SilentServer().start()
    yield server
    await server.stop()


def _listener(name: str, limits: Doc) -> Doc:
    return {"name": name, "direction": "outbound", "port": 0, "route_config": "routes", "limits": limits}


def _doc(backend_port: int, silent_port: int) -> Doc:
    routes = [
        {"matches": [{"path": {"prefix": "/reset"}}], **route_to(("catalog", 1), retry={"attempts": 0})},
        {"matches": [{"path": {"prefix": "/silent"}}], **route_to(("silent", 1), timeout="200ms")},
        route_to(("catalog", 1)),
    ]
    listeners = [
        _listener("slow", {"request_header_timeout": "200ms"}),
        _listener("idle", {"idle_timeout": "200ms"}),
        _listener("flood", {"max_connections": 5}),
    ]
    # Idle upstream connections close soon too, so the descriptors can return to the baseline.
    pool = {"idle_timeout": "500ms"}
    clusters = [
        cluster("catalog", [backend_port], limits=pool),
        cluster("silent", [silent_port], limits=pool),
    ]
    return sidecar(routes, clusters, listener_limits=LIMITS, extra_listeners=listeners)


async def _serves(sidecar_proxy: ProxyProcess) -> None:
    conn = await RawConnection.open(sidecar_proxy.port())
    try:
        await conn.send(request())
        response = await conn.read_response()
    finally:
        await conn.close()
    assert response.status == 200 and response.body == b"v1", response


async def test_no_vector_crashes_or_leaks_over_a_thousand_rounds(backend, silent, proxy) -> None:
    server = await backend("v1")
    sidecar_proxy = await proxy(_doc(server.port, silent.port))
    watch = Watch(sidecar_proxy)
    vectors = _vectors()

    await _serves(sidecar_proxy)
    await _run_all(vectors, watch, WARMUP)
    await _serves(sidecar_proxy)
    await watch.settle("the warm-up")
    watch.baseline_fds = watch.process.num_fds()
    baseline_rss = watch.rss()

    await _run_all(vectors, watch, ROUNDS)

    grown = watch.rss() - baseline_rss
    assert grown < RSS_TOLERANCE, f"RSS grew by {grown / 1e6:.1f} MB over {ROUNDS} rounds of each vector"
    await _serves(sidecar_proxy)
    clusters = await sidecar_proxy.admin_json("/clusters")
    assert all(c["active_requests"] == 0 for c in clusters), clusters
    await wait_until(lambda: silent.open == 0, SETTLE_TIMEOUT, "the silent upstream's connections to close")

    rounds = WARMUP + ROUNDS
    metrics = await sidecar_proxy.metrics()

    def counted(code: int, flags: str) -> float:
        return total(metrics, "istio_requests_total", response_code=str(code), response_flags=flags)

    assert counted(400, "DPE") == (len(SMUGGLING) + 1) * rounds
    assert counted(501, "DPE") == rounds
    assert counted(431, "DPE") == 2 * rounds
    assert counted(414, "DPE") == rounds
    assert counted(413, "DPE") == 2 * rounds
    assert counted(408, "DPE") == rounds
    assert counted(502, "UC") == rounds
    assert counted(504, "UT") == rounds
