"""The watch's answer on the wire: gzip-encoded for a client that asks (the agent), as it is for one
that does not; read back by the agent's client, httpx and curl. A real aiohttp server on 127.0.0.1
serves the payloads (plain HTTP: TLS changes nothing here)."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from loom.controlplane.compression import SharedChunk
from loom.controlplane.payloads import Payload
from loom.controlplane.server import WRITE_SLICE, _send_payload, slices
from loom.proxy.agent.http import ControlPlaneClient

CLUSTER = '{"name":"outbound|80|v1|svc-%d.ns-0.svc.cluster.local","uid":"%s"},'
BIG = SharedChunk(
    "".join(CLUSTER % (i, hashlib.sha256(b"%d" % i).hexdigest()[:20]) for i in range(3000)).encode() + b"{}"
)


def payload(*chunks: bytes | SharedChunk) -> Payload:
    return Payload(chunks, sum(len(c) for c in chunks))


PAYLOADS = {
    "big": payload(b'{"version":"e.1","snapshot":{"clusters":[', BIG, b"]}}"),
    "small": payload(b'{"version":"e.2","snapshot":{}}'),
}


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await _send_payload(request, PAYLOADS[request.match_info["name"]])

    app = web.Application()
    app.router.add_get("/{name}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def raw_get(url: str, path: str, headers: str = "") -> tuple[dict[str, str], bytes]:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    fields = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    return {k.lower(): v for k, v in fields.items()}, body


@pytest.mark.parametrize("name", PAYLOADS)
async def test_plaintext_unless_the_client_asks_for_gzip(server: str, name: str) -> None:
    payload = PAYLOADS[name]
    headers, body = await raw_get(server, f"/{name}")
    assert "content-encoding" not in headers
    assert body == payload.joined() and int(headers["content-length"]) == payload.size
    headers, body = await raw_get(server, f"/{name}", "Accept-Encoding: gzip;q=0, br\r\n")
    assert "content-encoding" not in headers
    headers, body = await raw_get(server, f"/{name}", "Accept-Encoding: gzip\r\n")
    assert headers["content-encoding"] == "gzip" and headers["vary"] == "Accept-Encoding"
    assert int(headers["content-length"]) == len(body)
    assert body == b"".join(payload.gzipped())


@pytest.mark.parametrize("name", PAYLOADS)
async def test_the_agent_s_client_asks_for_gzip_and_decodes_it(server: str, name: str) -> None:
    client = ControlPlaneClient(server)
    try:
        for _ in range(2):  # twice on the kept-alive connection
            status, body = await client.call("GET", f"/{name}")
            assert (status, body) == (200, PAYLOADS[name].joined())
        assert client.connections_opened == 1
    finally:
        client.close_idle()
    assert WRITE_SLICE < len(b"".join(PAYLOADS["big"].gzipped())) < PAYLOADS["big"].size / 2  # streamed


async def test_other_clients_that_ask_for_gzip_read_the_whole_body(server: str) -> None:
    payload = PAYLOADS["big"]
    async with httpx.AsyncClient() as client:  # asks for gzip; decodes only a body's first member
        answer = await client.get(f"{server}/big")
    assert answer.headers["content-encoding"] == "gzip"
    assert answer.content == payload.joined()
    if shutil.which("curl") is None:
        return
    curl = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--compressed", f"{server}/big", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await curl.communicate()
    assert curl.returncode == 0 and out == payload.joined()


@pytest.mark.parametrize(
    "lengths", [(), (0,), (5,), (16,), (17,), (3, 3, 3, 3, 3, 3), (40, 2, 15, 1), (1, 50, 0, 16, 7)]
)
def test_slices_are_the_pieces_in_order_size_at_a_time(lengths: tuple[int, ...]) -> None:
    pieces = [bytes([65 + i]) * n for i, n in enumerate(lengths)]
    out = [bytes(s) for s in slices(pieces, 16)]
    assert b"".join(out) == b"".join(pieces)
    assert all(len(s) == 16 for s in out[:-1]) and all(0 < len(s) <= 16 for s in out)
    assert WRITE_SLICE == 16 * 1024
