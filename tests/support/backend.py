"""A controllable upstream for tests: a real aiohttp server on 127.0.0.1, in the test's loop.

Paths:
  /status/<code>          answer that status
  /delay/<seconds>        answer after a delay
  /echo                   answer JSON with the request's method, path, query, headers and body
  /reset                  abort the connection without answering
  /stream/<n>             n chunks of 1 KiB, chunked
  anything else           200 with body ``name``
``force_status`` makes every request answer that status (a broken backend); ``requests``
counts what arrived.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Backend:
    name: str
    force_status: int | None = None
    requests: int = 0
    seen_headers: list[dict[str, str]] = field(default_factory=list)
    runner: web.AppRunner | None = None
    port: int = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Backend:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.seen_headers.append(dict(request.headers))
        if self.force_status is not None:
            return web.Response(status=self.force_status, text=f"{self.name} forced\n")
        parts = request.path.strip("/").split("/")
        if parts[0] == "status" and len(parts) > 1:
            return web.Response(status=int(parts[1]), text=f"{self.name} {parts[1]}\n")
        if parts[0] == "delay" and len(parts) > 1:
            await asyncio.sleep(float(parts[1]))
            return web.Response(text=self.name)
        if parts[0] == "echo":
            body = await request.read()
            return web.json_response(
                {
                    "backend": self.name,
                    "method": request.method,
                    "path": request.path,
                    "query": request.query_string,
                    "headers": dict(request.headers),
                    "body": body.decode("latin-1"),
                }
            )
        if parts[0] == "reset":
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=500)
        if parts[0] == "stream" and len(parts) > 1:
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            for _ in range(int(parts[1])):
                await response.write(b"x" * 1024)
            await response.write_eof()
            return response
        return web.Response(text=self.name)


def echo(body: bytes) -> dict[str, object]:
    return json.loads(body)
