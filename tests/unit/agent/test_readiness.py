"""The sidecar's readiness probe against real sockets on 127.0.0.1: a connect per app port, or
``GET PATH`` answering 2xx; ready at the first success, not ready after the failure threshold."""

from __future__ import annotations

import asyncio
import socket

import pytest

from loom.proxy.agent.readiness import Readiness, parse_readiness_path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def http_server(port: int, status: list[int]) -> asyncio.Server:
    """Answers every request with ``status[0]`` (changeable while it runs)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 {status[0]} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port)


async def test_no_app_port_is_ready_at_once() -> None:
    readiness = Readiness("127.0.0.1", [])
    assert readiness.ready
    assert not await readiness.probe()


async def test_ready_once_every_port_accepts_and_not_ready_after_the_threshold() -> None:
    first, second = free_port(), free_port()
    readiness = Readiness("127.0.0.1", [first, second], failure_threshold=3)
    assert not readiness.ready
    assert not await readiness.probe()
    one = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", first)
    assert not await readiness.probe(), "one port of two is not enough"
    two = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", second)
    assert await readiness.probe() and readiness.ready
    assert readiness.interval() > 1.0
    two.close()
    await two.wait_closed()
    assert not await readiness.probe() and readiness.ready
    assert readiness.interval() == 1.0, "probed faster after a failure"
    assert not await readiness.probe() and readiness.ready
    assert await readiness.probe() and not readiness.ready
    one.close()
    await one.wait_closed()


async def test_a_readiness_path_needs_a_2xx_answer() -> None:
    port = free_port()
    status = [503]
    server = await http_server(port, status)
    try:
        readiness = Readiness("127.0.0.1", [port], "/healthz")
        assert not await readiness.probe()
        assert "503" in readiness.last_error
        status[0] = 204
        assert await readiness.probe() and readiness.ready
    finally:
        server.close()
        await server.wait_closed()


def test_parse_readiness_path() -> None:
    assert parse_readiness_path("/healthz") == ("/healthz", None)
    assert parse_readiness_path("8080:/ready") == ("/ready", 8080)
    with pytest.raises(ValueError):
        parse_readiness_path("healthz")
