"""Transparent capture: how a captured connection is sorted, and passthrough over real sockets."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace

import pytest
from tests.support.tcp_echo import FAREWELL, EchoServer

from loom.proxy import capture
from loom.proxy.capture import CaptureServer, dials_itself, is_local_address
from loom.proxy.connections import ConnectionSet
from loom.proxy.passthrough import PASSTHROUGH_IDLE_TIMEOUT, PassthroughDownstream
from loom.snapshot.model import ListenerLimits


def test_dials_itself_matches_a_listening_address_and_port() -> None:
    listening = [("127.0.0.1", 15001), ("0.0.0.0", 15006)]
    local = {"127.0.0.1", "10.0.0.5"}.__contains__
    assert dials_itself(("127.0.0.1", 15001), listening, local)
    assert not dials_itself(("127.0.0.2", 15001), listening, local)  # bound to one address only
    assert dials_itself(("10.0.0.5", 15006), listening, local)  # a wildcard: any local address
    assert not dials_itself(("10.0.0.9", 15006), listening, local)  # another host's 15006
    assert not dials_itself(("127.0.0.1", 80), listening, local)


def test_is_local_address() -> None:
    assert is_local_address("127.0.0.1")
    assert is_local_address("127.42.0.7")  # all of 127/8 is local on Linux
    assert not is_local_address("192.0.2.1")  # TEST-NET-1


class FakeTable:
    def __init__(self, *names: tuple[bytes, int]) -> None:
        self.names = set(names)

    def find(self, host: bytes, port: int | None) -> object | None:
        return object() if (host, port) in self.names else None


class FakeListener:
    """What the capture server and passthrough use of an HTTP listener."""

    def __init__(self) -> None:
        self.connections: ConnectionSet[object] = ConnectionSet()
        self.limits = ListenerLimits()
        self.draining = False
        self.table = FakeTable()
        self.server = SimpleNamespace(
            config=SimpleNamespace(metrics=None), listeners={}, admin=SimpleNamespace(server=None)
        )

    def route_table(self, config: object) -> FakeTable:
        return self.table

    def protocol_factory(self) -> Callable[[], asyncio.Protocol]:
        return asyncio.Protocol


@pytest.fixture
async def captured(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[CaptureServer, FakeListener, dict]]:
    """A capture server whose connections all seem redirected from ``destination["to"]``."""
    destination: dict[str, tuple[str, int] | None] = {"to": None}
    monkeypatch.setattr(capture, "original_destination", lambda sock: destination["to"])
    listener = FakeListener()
    listener.config = SimpleNamespace(address="127.0.0.1", port=0)  # type: ignore[attr-defined]
    server = await CaptureServer.bind(listener)  # type: ignore[arg-type]
    try:
        yield server, listener, destination
    finally:
        server.close()


async def test_sorting_follows_the_current_route_table(captured) -> None:
    server, listener, destination = captured
    own_port = server.sockets[0].getsockname()[1]
    with socket.socket() as sock:
        destination["to"] = None  # dialled directly (HTTP_PROXY)
        assert server._sort(sock) is server._http
        destination["to"] = ("10.96.0.10", 80)
        factory = server._sort(sock)  # not a mesh VIP yet
        assert factory is not None and isinstance(factory(), PassthroughDownstream)
        listener.table = FakeTable((b"10.96.0.10", 80))  # a new snapshot names it
        assert server._sort(sock) is server._http
        destination["to"] = ("127.0.0.1", own_port)
        assert server._sort(sock) is None
        assert server.loops_refused == 1


async def test_passthrough_copies_both_ways_with_half_close(captured) -> None:
    server, listener, destination = captured
    echo = await EchoServer().start()
    try:
        destination["to"] = ("127.0.0.1", echo.port)
        payload = os.urandom(3 * 1024 * 1024)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])

        async def send() -> None:
            writer.write(payload)
            await writer.drain()
            writer.write_eof()

        async with asyncio.timeout(15):
            sender = asyncio.create_task(send())
            received = await reader.read(-1)
            await sender
        writer.close()
        assert received == payload + FAREWELL
        assert echo.saw_eof == 1
        assert await listener.connections.wait_empty(5)
    finally:
        await echo.stop()


async def test_passthrough_that_cannot_connect_closes_the_downstream(captured) -> None:
    server, listener, destination = captured
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        destination["to"] = ("127.0.0.1", unused.getsockname()[1])  # nothing listens there
    reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
    async with asyncio.timeout(5):
        assert await reader.read(-1) == b""
    writer.close()
    assert await listener.connections.wait_empty(5)


def test_passthrough_closes_after_an_hour_idle() -> None:
    conn = PassthroughDownstream(FakeListener(), ("192.0.2.1", 5432))  # type: ignore[arg-type]
    closed: list[bool] = []
    conn.transport = SimpleNamespace(close=lambda: closed.append(True))  # type: ignore[assignment]
    conn.expire(conn.last_activity + PASSTHROUGH_IDLE_TIMEOUT - 1)
    assert not closed
    conn.expire(conn.last_activity + PASSTHROUGH_IDLE_TIMEOUT + 1)
    assert closed
