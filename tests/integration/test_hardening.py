"""Hostile or broken HTTP/1.1: the right status, a closed connection, nothing smuggled upstream.

Every test writes exact bytes over a real socket to a real ``loom proxy`` process in front of a
real backend, then reads what comes back until the proxy closes the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.support.backend import Backend
from tests.support.prom import total
from tests.support.proxy import ProxyProcess, wait_until
from tests.support.rawhttp import Answer, RawConnection, SilentServer, request, send_and_close
from tests.support.snapshots import Doc, cluster, route_to, sidecar

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: catalog\r\n\r\n"
"""What each vector tries to slip past the proxy as a second request."""


def _post(headers: bytes, body: bytes, version: bytes = b"1.1") -> bytes:
    return b"POST / HTTP/" + version + b"\r\nHost: catalog\r\n" + headers + b"\r\n" + body


_LAST_CHUNK_THEN_SMUGGLED = b"0\r\n\r\n" + SMUGGLED
_CL = b"Content-Length: %d\r\n" % len(_LAST_CHUNK_THEN_SMUGGLED)
CL_TE = _post(_CL + b"Transfer-Encoding: chunked\r\n", _LAST_CHUNK_THEN_SMUGGLED)
"""The classic: a front end that honours Content-Length forwards SMUGGLED inside the body."""

SMUGGLING = [
    pytest.param(CL_TE, id="content-length-with-transfer-encoding"),
    pytest.param(
        _post(b"Transfer-Encoding: chunked\r\n" + _CL, _LAST_CHUNK_THEN_SMUGGLED),
        id="transfer-encoding-with-content-length",
    ),
    pytest.param(
        _post(b"Content-Length: 5\r\n" + _CL, b"hello" + SMUGGLED), id="two-different-content-lengths"
    ),
    pytest.param(
        _post(b"Transfer-Encoding: chunked\r\n", b"zz\r\nhello\r\n" + _LAST_CHUNK_THEN_SMUGGLED),
        id="invalid-chunk-size",
    ),
    pytest.param(
        _post(b"Transfer-Encoding: chunked\r\n", b"1" * 20 + b"\r\nhello\r\n" + _LAST_CHUNK_THEN_SMUGGLED),
        id="chunk-size-overflow",
    ),
    pytest.param(
        _post(b"Transfer-Encoding: chunked\r\n", b"5;ext\nx\r\nhello\r\n" + _LAST_CHUNK_THEN_SMUGGLED),
        id="chunk-extension-with-bare-lf",
    ),
    pytest.param(
        _post(b"Transfer-Encoding: chunked\r\n", b'5;a="b\r\nhello\r\n' + _LAST_CHUNK_THEN_SMUGGLED),
        id="chunk-extension-unterminated-quote",
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: catalog\r\nX-Folded: a\r\n b\r\n\r\n" + SMUGGLED, id="obsolete-line-folding"
    ),
    pytest.param(
        _post(_CL + b"Transfer-Encoding:\r\n chunked\r\n", _LAST_CHUNK_THEN_SMUGGLED),
        id="obsolete-line-folding-transfer-encoding",
    ),
    pytest.param(
        _post(b"Transfer-Encoding : chunked\r\n", _LAST_CHUNK_THEN_SMUGGLED), id="whitespace-before-colon"
    ),
    pytest.param(
        _post(b"Transfer-Encoding: chunked, gzip\r\n", _LAST_CHUNK_THEN_SMUGGLED), id="te-chunked-then-gzip"
    ),
    pytest.param(_post(b"Transfer-Encoding: gzip\r\n", _LAST_CHUNK_THEN_SMUGGLED), id="te-gzip"),
    pytest.param(_post(b"Transfer-Encoding: identity\r\n", _LAST_CHUNK_THEN_SMUGGLED), id="te-identity"),
    pytest.param(
        _post(b"Transfer-Encoding: chunked\r\n", _LAST_CHUNK_THEN_SMUGGLED, version=b"1.0"),
        id="te-in-http-1.0",
    ),
    pytest.param(b"GET / HTTP/1.1\nHost: catalog\n\n" + SMUGGLED, id="bare-lf-line-endings"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: catalog\nX-A: b\r\n\r\n" + SMUGGLED, id="bare-lf-in-head"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: catalog\rX-A: b\r\n\r\n" + SMUGGLED, id="bare-cr-in-head"),
    pytest.param(b"GET / HTTP/1.1\rHost: catalog\r\r" + SMUGGLED, id="bare-cr-line-endings"),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: catalog\r\nX-A: a\x00b\r\n\r\n" + SMUGGLED, id="nul-in-header-value"
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: catalog\r\nHost: evil\r\n\r\n" + SMUGGLED, id="second-host-header"
    ),
]

LIMITS: Doc = {
    "max_request_header_bytes": 1024,
    "max_headers": 10,
    "max_url_bytes": 256,
    "max_request_body_bytes": 1024,
}


@pytest.fixture
async def silent() -> AsyncIterator[SilentServer]:
    server = await SilentServer().start()
    yield server
    await server.stop()


def _doc(backend: Backend, listener_limits: Doc | None = None) -> Doc:
    """Everything to ``catalog``; ``/reset`` without retries (a reset must surface as 502)."""
    routes = [
        {"matches": [{"path": {"prefix": "/reset"}}], **route_to(("catalog", 1), retry={"attempts": 0})},
        route_to(("catalog", 1)),
    ]
    return sidecar(routes, [cluster("catalog", [backend.port])], listener_limits=listener_limits)


def _assert_refused(answer: Answer, status: int) -> None:
    """The proxy answered ``status`` with ``Connection: close`` and then closed the connection."""
    assert answer.response is not None, f"no response before the close (reset={answer.reset})"
    assert answer.response.status == status, answer.response
    assert answer.response.header(b"connection") == b"close", answer.response
    assert answer.closed
    assert answer.rest == b"", f"bytes after the error response: {answer.rest[:200]!r}"


async def _assert_still_serves(sidecar_proxy: ProxyProcess) -> None:
    assert sidecar_proxy.process is not None and sidecar_proxy.process.poll() is None, sidecar_proxy.log()
    conn = await RawConnection.open(sidecar_proxy.port())
    try:
        await conn.send(request())
        response = await conn.read_response()
    finally:
        await conn.close()
    assert response.status == 200, response


async def _dpe(sidecar_proxy: ProxyProcess, status: int) -> float:
    metrics = await sidecar_proxy.metrics()
    return total(metrics, "istio_requests_total", response_code=str(status), response_flags="DPE")


# request smuggling ------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", SMUGGLING)
async def test_smuggling_vector_is_refused_and_never_reaches_the_backend(
    vector: bytes, backend, proxy
) -> None:
    server = await backend("v1")
    sidecar_proxy = await proxy(_doc(server))

    answer = await send_and_close(sidecar_proxy.port(), vector)

    _assert_refused(answer, 400)
    assert server.requests == 0
    assert await _dpe(sidecar_proxy, 400) == 1
    await _assert_still_serves(sidecar_proxy)
    assert server.requests == 1  # only the request sent afterwards


async def test_transfer_coding_other_than_chunked_is_501_not_forwarded_without_it(backend, proxy) -> None:
    server = await backend("v1")
    sidecar_proxy = await proxy(_doc(server))

    answer = await send_and_close(
        sidecar_proxy.port(), _post(b"Transfer-Encoding: gzip, chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n")
    )

    _assert_refused(answer, 501)
    assert server.requests == 0
    await _assert_still_serves(sidecar_proxy)


async def test_smuggling_after_a_pipelined_request_answers_that_request_then_closes(backend, proxy) -> None:
    server = await backend("v1")
    sidecar_proxy = await proxy(_doc(server))
    conn = await RawConnection.open(sidecar_proxy.port())
    try:
        await conn.send(request() + CL_TE)
        response = await conn.read_response()
        rest = await conn.wait_closed_by_peer()
    finally:
        await conn.close()

    assert response.status == 200 and response.body == b"v1", response
    assert response.header(b"connection") == b"close"
    assert rest == b""
    assert server.requests == 1
    assert await _dpe(sidecar_proxy, 400) == 1
    clusters = await sidecar_proxy.admin_json("/clusters")
    assert clusters[0]["active_requests"] == 0, clusters
    await _assert_still_serves(sidecar_proxy)


# limits ---------------------------------------------------------------------------------------


async def test_one_huge_header_is_431(backend, proxy) -> None:
    server = await backend("v1")
    sidecar_proxy = await proxy(_doc(server, LIMITS))

    answer = await send_and_close(sidecar_proxy.port(), request(headers=[("X-Big", "a" * 2000)]))

    _assert_refused(answer, 431)
    assert server.requests == 0
    assert await _dpe(sidecar_proxy, 431) == 1
    await _assert_still_serves(sidecar_proxy)


async def test_too_many_headers_is_431(backend, proxy) -> None:
    server = await backend("v1")
    sidecar_proxy = await proxy(_doc(server, LIMITS))

    headers = [(f"X-Header-{i}", "v") for i in range(12)]
    answer = await send_and_close(sidecar_proxy.port(), request(headers=headers))

    _assert_refused(answer, 431)
    assert server.requests == 0
    await _assert_still_serves(sidecar_proxy)


async def test_url_over_the_limit_is_414(backend, proxy) -> None:
    server = await backend("v1")
    sidecar_proxy = await proxy(_doc(server, LIMITS))

    answer = await send_and_close(sidecar_proxy.port(), request(path="/" + "a" * 1000))

    _assert_refused(answer, 414)
    assert server.requests == 0
    assert await _dpe(sidecar_proxy, 414) == 1
    await _assert_still_serves(sidecar_proxy)


async def test_body_over_the_limit_with_content_length_is_413_before_any_byte_goes_upstream(
    backend, proxy
) -> None:
    server = await backend("v1")
    sidecar_proxy = await proxy(_doc(server, LIMITS))

    answer = await send_and_close(sidecar_proxy.port(), request("POST", "/echo", body=b"x" * 4096))

    _assert_refused(answer, 413)
    assert server.requests == 0
    assert await _dpe(sidecar_proxy, 413) == 1
    await _assert_still_serves(sidecar_proxy)


@pytest.mark.parametrize(
    ("rest", "status"),
    [
        pytest.param(b"400\r\n" + b"y" * 1024 + b"\r\n0\r\n\r\n", 413, id="over-the-body-limit"),
        pytest.param(b"zz\r\n" + _LAST_CHUNK_THEN_SMUGGLED, 400, id="invalid-chunk-size"),
    ],
)
async def test_chunked_body_going_bad_after_the_head_went_upstream_is_refused(
    rest: bytes, status: int, backend, proxy
) -> None:
    server = await backend("v1")
    sidecar_proxy = await proxy(_doc(server, LIMITS))
    conn = await RawConnection.open(sidecar_proxy.port())
    try:
        head = b"POST /echo HTTP/1.1\r\nHost: catalog\r\nTransfer-Encoding: chunked\r\n\r\n"
        await conn.send(head + b"200\r\n" + b"x" * 512 + b"\r\n")
        # The head and the first chunk are already on their way to the backend...
        await wait_until(lambda: server.requests == 1, 10.0, "the request to reach the backend")
        # ...when the rest of the body turns out too long, or malformed.
        await conn.send(rest)
        response = await conn.read_response()
        after = await conn.wait_closed_by_peer()
    finally:
        await conn.close()

    assert response.status == status, response
    assert response.header(b"connection") == b"close"
    assert after == b""
    assert await _dpe(sidecar_proxy, status) == 1
    await _assert_still_serves(sidecar_proxy)
    assert server.requests == 2  # the refused one and the one after it: nothing smuggled between


async def test_head_not_complete_within_request_header_timeout_is_408_and_closed(backend, proxy) -> None:
    server = await backend("v1")
    sidecar_proxy = await proxy(_doc(server, {"request_header_timeout": "500ms"}))
    conn = await RawConnection.open(sidecar_proxy.port())
    try:
        await conn.send(b"GET / HTTP/1.1\r\nHost: catalog\r\nX-Slow: ")  # ...and nothing more
        received = await conn.wait_closed_by_peer(timeout=10.0)
    finally:
        await conn.close()

    assert received.startswith(b"HTTP/1.1 408 "), received
    assert b"\r\nconnection: close\r\n" in received.lower()
    assert server.requests == 0
    assert await _dpe(sidecar_proxy, 408) == 1
    await _assert_still_serves(sidecar_proxy)


async def test_idle_keep_alive_connection_is_closed_after_idle_timeout(backend, proxy) -> None:
    server = await backend("v1")
    sidecar_proxy = await proxy(_doc(server, {"idle_timeout": "500ms"}))
    conn = await RawConnection.open(sidecar_proxy.port())
    try:
        await conn.send(request())
        response = await conn.read_response()
        assert response.status == 200
        assert response.header(b"connection") != b"close"  # kept alive...
        rest = await conn.wait_closed_by_peer(timeout=10.0)  # ...until idle for 500ms
    finally:
        await conn.close()

    assert rest == b""  # closed quietly: no 408 for a connection between requests
    await _assert_still_serves(sidecar_proxy)


# upstream failures ----------------------------------------------------------------------------


async def test_upstream_reset_is_502_and_not_retried_without_a_policy(backend, proxy) -> None:
    server = await backend("v1")
    sidecar_proxy = await proxy(_doc(server))
    conn = await RawConnection.open(sidecar_proxy.port())
    try:
        await conn.send(request(path="/reset"))
        response = await conn.read_response()
        await conn.send(request())  # the client's connection is still good
        after = await conn.read_response()
    finally:
        await conn.close()

    assert response.status == 502, response
    assert b"reset" in response.body
    assert after.status == 200
    assert server.requests == 2  # /reset once (no retry), then /
    metrics = await sidecar_proxy.metrics()
    assert total(metrics, "istio_requests_total", response_code="502", response_flags="UC") == 1


async def test_upstream_that_never_answers_is_504_at_the_route_timeout(silent, proxy) -> None:
    doc = sidecar([route_to(("silent", 1), timeout="500ms")], [cluster("silent", [silent.port])])
    sidecar_proxy = await proxy(doc)
    loop = asyncio.get_running_loop()
    conn = await RawConnection.open(sidecar_proxy.port())
    try:
        started = loop.time()
        await conn.send(request())
        response = await conn.read_response(timeout=15.0)
        elapsed = loop.time() - started
    finally:
        await conn.close()

    assert response.status == 504, response
    assert elapsed < 8.0  # at the route timeout, not whenever (never) the upstream answers
    assert silent.accepted == 1
    # The proxy gave up on the upstream connection too: it does not linger half-used.
    await wait_until(lambda: silent.open == 0, 10.0, "the proxy to close its upstream connection")
    metrics = await sidecar_proxy.metrics()
    assert total(metrics, "istio_requests_total", response_code="504", response_flags="UT") == 1


# connection flood -----------------------------------------------------------------------------


async def test_connections_beyond_max_connections_get_503_while_earlier_ones_still_work(
    backend, proxy
) -> None:
    server = await backend("v1")
    sidecar_proxy = await proxy(_doc(server, {"max_connections": 5}))
    port = sidecar_proxy.port()
    held = [await RawConnection.open(port) for _ in range(5)]
    try:
        for conn in held:
            await conn.send(request())
            assert (await conn.read_response()).status == 200

        flood = await asyncio.gather(*(send_and_close(port, request()) for _ in range(20)))

        for answer in flood:
            _assert_refused(answer, 503)
            assert b"too many connections" in answer.response.body  # type: ignore[union-attr]
        for conn in held:
            await conn.send(request())
            response = await conn.read_response()
            assert response.status == 200 and response.body == b"v1"
    finally:
        for conn in held:
            await conn.close()
    assert server.requests == 10  # two per held connection; the flood reached nothing

    async def accepts_again() -> bool:
        answer = await send_and_close(port, request(), expect_close=False)
        return answer.response is not None and answer.response.status == 200

    await wait_until(accepts_again, 10.0, "the proxy to accept new connections once the old ones closed")
