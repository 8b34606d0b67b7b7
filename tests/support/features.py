"""A backend with the extra endpoints the HTTP feature tests need, on top of ``Backend``.

Paths (everything else is ``Backend``'s):
  /upload[?pause=<s>]     stream the request body through SHA-256 (after waiting ``pause``
                          seconds); answer its digest and size
  /download/<n>           stream ``n`` bytes of ``pattern_chunks`` with chunked encoding
  /ws                     a WebSocket that echoes every text and binary message
  /nocontent              204, no body
  /notmodified            304 with an ETag, no body
  /headers                like /echo, and the response carries ``x-backend-secret`` and ``x-backend``
``delay`` makes every request wait that long first (a slow backend); ``arrivals`` counts requests
as they arrive (``requests`` counts them once answered); ``peers`` collects the (address, port)
of every TCP connection a request arrived on. /headers reports a repeated header as one value
joined with ``,``.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from tests.support.backend import Backend

CHUNK = 64 * 1024


def pattern_chunks(total: int, seed: int = 7, size: int = CHUNK) -> Iterator[bytes]:
    """``total`` pseudo-random bytes in pieces of ``size``: the same bytes for the same seed."""
    rng = random.Random(seed)
    left = total
    while left > 0:
        n = min(size, left)
        yield rng.randbytes(n)
        left -= n


def pattern_digest(total: int, seed: int = 7) -> str:
    digest = hashlib.sha256()
    for piece in pattern_chunks(total, seed):
        digest.update(piece)
    return digest.hexdigest()


async def pattern_stream(total: int, seed: int = 7) -> AsyncIterator[bytes]:
    """``pattern_chunks`` as an async generator: an aiohttp client sends it chunked."""
    for piece in pattern_chunks(total, seed):
        yield piece
        await asyncio.sleep(0)


@dataclass
class FeatureBackend(Backend):
    delay: float = 0.0
    arrivals: int = 0
    peers: set[tuple[str, int]] = field(default_factory=set)
    uploads: list[str] = field(default_factory=list)
    """SHA-256 of each upload received, in order."""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.arrivals += 1
        peer = request.transport.get_extra_info("peername") if request.transport is not None else None
        if peer:
            self.peers.add((peer[0], peer[1]))
        if self.delay:
            await asyncio.sleep(self.delay)
        first = request.path.strip("/").split("/")[0]
        special = {
            "upload": self._upload,
            "download": self._download,
            "ws": self._websocket,
            "nocontent": self._no_content,
            "notmodified": self._not_modified,
            "headers": self._headers,
        }.get(first)
        if special is None:
            return await super().handle(request)
        self.requests += 1
        self.seen_headers.append(dict(request.headers))
        return await special(request)

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        pause = float(request.query.get("pause", "0"))
        if pause:
            await asyncio.sleep(pause)  # a slow reader: the body has to wait upstream of us
        digest = hashlib.sha256()
        size = 0
        async for piece in request.content.iter_any():
            digest.update(piece)
            size += len(piece)
        self.uploads.append(digest.hexdigest())
        return web.json_response(
            {
                "sha256": digest.hexdigest(),
                "bytes": size,
                "transfer_encoding": request.headers.get("Transfer-Encoding"),
                "content_length": request.headers.get("Content-Length"),
            }
        )

    async def _download(self, request: web.Request) -> web.StreamResponse:
        total = int(request.path.strip("/").split("/")[1])
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for piece in pattern_chunks(total):
            await response.write(piece)
        await response.write_eof()
        return response

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                await ws.send_str(f"{self.name}:{message.data}")
            elif message.type is WSMsgType.BINARY:
                await ws.send_bytes(message.data[::-1])
        return ws

    async def _no_content(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=204)

    async def _not_modified(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=304, headers={"ETag": '"v1"'})

    async def _headers(self, request: web.Request) -> web.StreamResponse:
        headers = {name: ",".join(request.headers.getall(name)) for name in request.headers}
        response = web.json_response({"backend": self.name, "headers": headers})
        response.headers["x-backend-secret"] = "s3cr3t"
        response.headers["x-backend"] = self.name
        return response


@asynccontextmanager
async def feature_backends() -> AsyncIterator[Callable[..., Awaitable[FeatureBackend]]]:
    """Start FeatureBackends on demand (``await make("v1", delay=1.0)``); stop them all at the end."""
    started: list[FeatureBackend] = []

    async def make(name: str = "v1", **settings: object) -> FeatureBackend:
        server = FeatureBackend(name, **settings)  # type: ignore[arg-type]
        started.append(server)
        return await server.start()

    try:
        yield make
    finally:
        for server in started:
            await server.stop()
