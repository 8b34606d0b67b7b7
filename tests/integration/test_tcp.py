"""The TCP proxy: a ``protocol: tcp`` listener in front of a raw echo server."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket

import pytest

from tests.support.prom import samples, total
from tests.support.proxy import wait_until
from tests.support.snapshots import Doc, cluster, endpoint, route_to, sidecar
from tests.support.tcp_echo import FAREWELL, EchoServer

PAYLOAD = 1024 * 1024


@pytest.fixture
async def echo_server():
    server = await EchoServer().start()
    yield server
    await server.stop()


def tcp_doc(port: int) -> Doc:
    listener = {
        "name": "tcp-echo",
        "direction": "outbound",
        "protocol": "tcp",
        "port": 0,
        "tcp": {"destinations": [{"cluster": "echo"}]},
    }
    echo = {
        "name": "echo",
        "service": "echo.default.svc.cluster.local",
        "protocol": "tcp",
        "endpoints": [endpoint(port, "v1", app="echo")],
    }
    return sidecar([route_to(("catalog", 1))], [cluster("catalog", [port]), echo], extra_listeners=[listener])


async def exchange(port: int, payload: bytes) -> bytes:
    """Send ``payload``, half-close, and read everything until the other side closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def send() -> None:
        for i in range(0, len(payload), 16384):
            writer.write(payload[i : i + 16384])
            await writer.drain()
        writer.write_eof()

    try:
        async with asyncio.timeout(15):
            sender = asyncio.create_task(send())
            received = await reader.read(-1)
            await sender
    finally:
        writer.close()
    return received


async def test_bytes_cross_intact_both_ways_with_half_close(echo_server, proxy) -> None:
    sidecar_proxy = await proxy(tcp_doc(echo_server.port))
    payload = os.urandom(PAYLOAD)

    received = await exchange(sidecar_proxy.port("tcp-echo"), payload)

    assert echo_server.saw_eof == 1, "the client's half-close did not reach the server"
    assert received.endswith(FAREWELL), "nothing came back after the client's half-close"
    echoed = received[: -len(FAREWELL)]
    assert len(echoed) == PAYLOAD
    assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()


async def test_half_close_sent_before_the_upstream_is_connected(echo_server, proxy) -> None:
    sidecar_proxy = await proxy(tcp_doc(echo_server.port))
    port = sidecar_proxy.port("tcp-echo")

    def connect_send_and_half_close(i: int) -> socket.socket:
        # Connect, send and half-close before the proxy has even accepted: it gets the bytes and
        # the EOF together, before its own upstream connection is up.
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"ping %d" % i)
        sock.shutdown(socket.SHUT_WR)
        sock.setblocking(False)
        return sock

    async def read_all(sock: socket.socket) -> bytes:
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            async with asyncio.timeout(5):
                return await reader.read(-1)
        finally:
            writer.close()

    socks = [connect_send_and_half_close(i) for i in range(20)]
    answers = await asyncio.gather(*(read_all(sock) for sock in socks))

    assert answers == [b"ping %d" % i + FAREWELL for i in range(20)]
    assert echo_server.saw_eof == 20


async def test_tcp_metrics_count_connections_and_bytes(echo_server, proxy) -> None:
    sidecar_proxy = await proxy(tcp_doc(echo_server.port))
    port = sidecar_proxy.port("tcp-echo")
    payloads = [os.urandom(PAYLOAD), os.urandom(1000)]

    for payload in payloads:
        assert await exchange(port, payload) == payload + FAREWELL

    async def closed() -> bool:
        return total(await sidecar_proxy.metrics(), "istio_tcp_connections_closed_total") == 2

    await wait_until(closed, 5.0, "both TCP connections to be counted as closed")
    metrics = await sidecar_proxy.metrics()
    labels = {"reporter": "source", "request_protocol": "tcp"}
    opened = samples(metrics, "istio_tcp_connections_opened_total", **labels)
    assert len(opened) == 1 and opened[0][1] == 2
    series = opened[0][0]
    assert series["source_workload"] == "client"
    assert series["destination_workload"] == "echo-v1"
    assert series["destination_service_name"] == "echo"
    sent = sum(len(p) + len(FAREWELL) for p in payloads)
    received = sum(len(p) for p in payloads)
    assert total(metrics, "istio_tcp_sent_bytes_total", **labels) == sent
    assert total(metrics, "istio_tcp_received_bytes_total", **labels) == received
    assert echo_server.connections == 2


async def test_tcp_connection_to_a_dead_endpoint_is_closed(proxy) -> None:
    probe = await EchoServer().start()
    dead_port = probe.port
    await probe.stop()
    sidecar_proxy = await proxy(tcp_doc(dead_port))

    reader, writer = await asyncio.open_connection("127.0.0.1", sidecar_proxy.port("tcp-echo"))
    try:
        writer.write(b"anyone there?")
        async with asyncio.timeout(5):
            assert await reader.read(-1) == b""
    finally:
        writer.close()
