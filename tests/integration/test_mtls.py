"""Mutual TLS between two real sidecars run from snapshot files, with certificates from a test CA."""

from __future__ import annotations

import asyncio
import datetime
import os
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from tests.support.certs import NOW, CertAuthority, replace_identity, spiffe, write_identity
from tests.support.load import LoadResult, run_load
from tests.support.mtls import CLIENT_ID, SERVER_ID, client_doc, server_doc, start_pair
from tests.support.proxy import ProxyProcess, wait_until
from tests.support.snapshots import endpoint
from tests.support.tcp_echo import EchoServer


@pytest.fixture
def ca() -> CertAuthority:
    return CertAuthority.create()


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def test_request_crosses_mutual_tls_and_the_server_sees_the_client_identity(
    tmp_path: Path, proxy, backend, ca: CertAuthority
) -> None:
    app = await backend("catalog")
    client, server = await start_pair(tmp_path, proxy, app.port, ca)

    assert await get(client.url("/")) == (200, "catalog")

    metrics = await server.metrics()
    inbound = [line for line in metrics.splitlines() if line.startswith("istio_requests_total{")]
    assert any(
        'connection_security_policy="mutual_tls"' in line and f'source_principal="{CLIENT_ID}"' in line
        for line in inbound
    ), inbound


async def test_plaintext_into_strict_is_closed_before_the_app_sees_a_byte(
    tmp_path: Path, proxy, backend, ca: CertAuthority
) -> None:
    app = await backend("catalog")
    _, server = await start_pair(tmp_path, proxy, app.port, ca)

    reader, writer = await asyncio.open_connection("127.0.0.1", server.port("inbound"))
    writer.write(b"GET / HTTP/1.1\r\nHost: catalog\r\n\r\n")
    await writer.drain()
    try:
        answer = await asyncio.wait_for(reader.read(), 10)
    except ConnectionResetError:  # closed with our request unread: the kernel resets
        answer = b""
    writer.close()
    assert answer == b""  # no HTTP answer
    assert app.requests == 0


async def test_permissive_takes_plaintext_and_mutual_tls_on_one_port(
    tmp_path: Path, proxy, backend, ca: CertAuthority
) -> None:
    app = await backend("catalog")
    client, server = await start_pair(tmp_path, proxy, app.port, ca, mode="PERMISSIVE")

    assert await get(client.url("/")) == (200, "catalog")
    assert await get(server.url("/", "inbound")) == (200, "catalog")
    assert app.requests == 2


async def _handshake(port: int, context: ssl.SSLContext) -> bytes:
    """Speak TLS to the port with the given client context; what the server answers to a GET
    (b"" when it refuses: with TLS 1.3 the client hears of a refused certificate only after its
    side of the handshake, as an alert or a close)."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    except (ssl.SSLError, ConnectionError):
        return b""
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: catalog\r\nConnection: close\r\n\r\n")
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    except (ssl.SSLError, ConnectionError):
        return b""
    finally:
        writer.close()


def _client_context(identity: dict[str, str], trust: CertAuthority, tmp_path: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    roots = tmp_path / "trust.pem"
    roots.write_bytes(trust.pem())
    context.load_verify_locations(cafile=str(roots))
    context.load_cert_chain(identity["cert_file"], identity["key_file"])
    return context


async def test_a_client_certificate_from_another_ca_is_refused(
    tmp_path: Path, proxy, backend, ca: CertAuthority
) -> None:
    app = await backend("catalog")
    _, server = await start_pair(tmp_path, proxy, app.port, ca)
    forged = write_identity(tmp_path, "forged", CertAuthority.create("Mallory root"), CLIENT_ID)

    assert await _handshake(server.port("inbound"), _client_context(forged, ca, tmp_path)) == b""
    genuine = write_identity(tmp_path, "genuine", ca, CLIENT_ID)
    assert b"200 OK" in await _handshake(server.port("inbound"), _client_context(genuine, ca, tmp_path))
    assert app.requests == 1


async def test_an_expired_client_certificate_is_refused(
    tmp_path: Path, proxy, backend, ca: CertAuthority
) -> None:
    app = await backend("catalog")
    _, server = await start_pair(tmp_path, proxy, app.port, ca)
    expired = write_identity(
        tmp_path,
        "expired",
        ca,
        CLIENT_ID,
        not_before=NOW - datetime.timedelta(days=2),
        not_after=NOW - datetime.timedelta(days=1),
    )

    assert await _handshake(server.port("inbound"), _client_context(expired, ca, tmp_path)) == b""
    assert app.requests == 0


async def test_a_server_proving_another_identity_is_refused_by_the_client(
    tmp_path: Path, proxy, backend, ca: CertAuthority
) -> None:
    """Right CA, wrong identity: the client expects catalog's service account and gets another."""
    app = await backend("catalog")
    impostor = write_identity(tmp_path, "impostor", ca, spiffe("default", "reviews"))
    server = await proxy(server_doc(app.port, impostor), "server")
    client_identity = write_identity(tmp_path, "client", ca, CLIENT_ID)
    client = await proxy(client_doc(server.port("inbound"), client_identity), "client")

    status, _ = await get(client.url("/"))
    assert status == 503
    assert app.requests == 0


def _loads(proxy: ProxyProcess) -> int:
    return proxy.log().count("workload identity")


async def _rotate(
    tmp_path: Path,
    proxy: ProxyProcess,
    name: str,
    ca: CertAuthority,
    spiffe_id: str,
    bundle: list[CertAuthority],
) -> None:
    before = _loads(proxy)
    replace_identity(tmp_path, name, ca, spiffe_id, bundle=bundle)
    await wait_until(lambda: _loads(proxy) > before, 10, f"{name} to load its new certificate")


async def _rotating_under_load(client: ProxyProcess, rotations: Callable[[], Awaitable[None]]) -> LoadResult:
    stop = asyncio.Event()
    load = asyncio.create_task(run_load(client.url("/"), 100_000, concurrency=8, stop=stop))
    try:
        await rotations()
        await asyncio.sleep(0)  # let in-flight requests meet the last rotation
    finally:
        stop.set()
    return await load


NEW_CONNECTIONS = {"max_requests_per_connection": 5}
"""Keep the client opening connections (and handshakes) all through the rotation."""


async def test_workload_certificate_rotation_under_load_loses_no_request(
    tmp_path: Path, proxy, backend, ca: CertAuthority
) -> None:
    app = await backend("catalog")
    client, server = await start_pair(tmp_path, proxy, app.port, ca, client_limits=NEW_CONNECTIONS)

    async def more_requests(count: int) -> None:
        served = app.requests
        await wait_until(lambda: app.requests >= served + count, 20, f"{count} more requests")

    async def rotations() -> None:
        await more_requests(300)
        for _ in range(2):
            await _rotate(tmp_path, server, "server", ca, SERVER_ID, [ca])
            await _rotate(tmp_path, client, "client", ca, CLIENT_ID, [ca])
            await more_requests(200)

    result = await _rotating_under_load(client, rotations)

    assert result.total > 0 and result.ok == result.total, (result.statuses, result.errors[:5])
    assert _loads(server) == 3 and _loads(client) == 3


async def test_root_rotation_with_two_roots_in_the_bundle_loses_no_request(
    tmp_path: Path, proxy, backend, ca: CertAuthority
) -> None:
    app = await backend("catalog")
    new_root = CertAuthority.create("Loom test root 2")
    client, server = await start_pair(tmp_path, proxy, app.port, ca, client_limits=NEW_CONNECTIONS)

    async def phase(server_ca: CertAuthority, client_ca: CertAuthority, bundle: list[CertAuthority]) -> None:
        await _rotate(tmp_path, server, "server", server_ca, SERVER_ID, bundle)
        await _rotate(tmp_path, client, "client", client_ca, CLIENT_ID, bundle)
        served = app.requests
        await wait_until(lambda: app.requests >= served + 200, 20, "requests after the phase")

    async def rotations() -> None:
        await wait_until(lambda: app.requests >= 200, 20, "requests to flow")
        await phase(ca, ca, [ca, new_root])  # both roots trusted
        await phase(new_root, ca, [ca, new_root])  # the server moves to the new root first
        await phase(new_root, new_root, [ca, new_root])
        await phase(new_root, new_root, [new_root])  # the old root is gone

    result = await _rotating_under_load(client, rotations)

    assert result.total > 0 and result.ok == result.total, (result.statuses, result.errors[:5])
    old_root_client = write_identity(tmp_path, "old", ca, CLIENT_ID)
    served = app.requests
    refused = await _handshake(server.port("inbound"), _client_context(old_root_client, new_root, tmp_path))
    assert refused == b""
    assert app.requests == served


async def test_tcp_crosses_mutual_tls_and_strict_refuses_plaintext_tcp(
    tmp_path: Path, proxy, ca: CertAuthority
) -> None:
    echo = await EchoServer().start()
    try:
        server = server_doc(1, write_identity(tmp_path, "server", ca, SERVER_ID))
        server["listeners"] = [
            {
                "name": "tcp-in",
                "direction": "inbound",
                "protocol": "tcp",
                "port": 0,
                "mtls": "STRICT",
                "tcp": {"destinations": [{"cluster": "echo"}]},
            }
        ]
        server["route_configs"] = []
        server["clusters"] = [
            {"name": "echo", "protocol": "tcp", "endpoints": [endpoint(echo.port, app="echo")]}
        ]
        server_proxy = await proxy(server, "server")

        client = client_doc(server_proxy.port("tcp-in"), write_identity(tmp_path, "client", ca, CLIENT_ID))
        client["listeners"] = [
            {
                "name": "tcp-out",
                "direction": "outbound",
                "protocol": "tcp",
                "port": 0,
                "tcp": {"destinations": [{"cluster": "catalog"}]},
            }
        ]
        client["route_configs"] = []
        client["clusters"][0]["protocol"] = "tcp"
        client_proxy = await proxy(client, "client")

        payload = os.urandom(256 * 1024)
        reader, writer = await asyncio.open_connection("127.0.0.1", client_proxy.port("tcp-out"))
        writer.write(payload)
        echoed = await asyncio.wait_for(reader.readexactly(len(payload)), 15)
        writer.close()
        assert echoed == payload

        served = echo.connections
        reader, writer = await asyncio.open_connection("127.0.0.1", server_proxy.port("tcp-in"))
        writer.write(b"plaintext")
        try:
            answer = await asyncio.wait_for(reader.read(), 10)
        except ConnectionResetError:
            answer = b""
        writer.close()
        assert answer == b""
        assert echo.connections == served
    finally:
        await echo.stop()
