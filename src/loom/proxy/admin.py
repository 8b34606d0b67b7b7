"""The admin endpoint (loopback only): /ready, /metrics, /config_dump, /clusters, /listeners, /drain.

Served with Loom's own HTTP/1.1 codec: one small request at a time, answered and closed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from loom.proxy.codec.errors import ProtocolError
from loom.proxy.codec.head import RequestHead
from loom.proxy.codec.request_parser import ParserLimits, RequestParser, UpgradeRequested
from loom.proxy.codec.serialize import response_head
from loom.proxy.telemetry import CONTENT_TYPE
from loom.snapshot import snapshot_to_builtins
from loom.snapshot.model import Admin

if TYPE_CHECKING:
    from loom.proxy.server import ProxyServer

_LIMITS = ParserLimits(max_header_bytes=16 * 1024, max_headers=64, max_url_bytes=2048, max_body_bytes=1024)
Reply = tuple[int, str, bytes]


class AdminServer:
    def __init__(self, proxy: ProxyServer) -> None:
        self.proxy = proxy
        self.server: asyncio.Server | None = None
        self.routes: dict[tuple[bytes, bytes], Callable[[], Reply]] = {
            (b"GET", b"/ready"): self.ready,
            (b"GET", b"/metrics"): self.metrics,
            (b"GET", b"/config_dump"): self.config_dump,
            (b"GET", b"/clusters"): self.clusters,
            (b"GET", b"/listeners"): self.listeners,
            (b"POST", b"/drain"): self.drain,
        }

    async def start(self, config: Admin) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _AdminConnection(self), config.address, config.port)

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    def dispatch(self, head: RequestHead) -> Reply:
        handler = self.routes.get((head.method, head.path))
        if handler is None:
            if any(path == head.path for _, path in self.routes):
                return 405, "text/plain", b"method not allowed\n"
            known = ", ".join(sorted({p.decode() for _, p in self.routes}))
            return 404, "text/plain", f"unknown admin path; try one of {known}\n".encode()
        return handler()

    # handlers ----------------------------------------------------------------------------

    def ready(self) -> Reply:
        if self.proxy.ready:
            return 200, "text/plain", b"LIVE\n"
        return 503, "text/plain", b"DRAINING\n" if self.proxy.draining else b"STARTING\n"

    def metrics(self) -> Reply:
        return 200, CONTENT_TYPE, self.proxy.metrics.render()

    def config_dump(self) -> Reply:
        proxy = self.proxy
        body = {
            "version": proxy.config.version,
            "reloads_applied": proxy.reloads_applied,
            "reloads_rejected": proxy.reloads_rejected,
            "last_reload_error": proxy.last_reload_error,
            "snapshot": snapshot_to_builtins(proxy.config.snapshot),
        }
        return 200, "application/json", _json(body)

    def clusters(self) -> Reply:
        body = [cluster.describe() for cluster in self.proxy.config.clusters.values()]
        return 200, "application/json", _json(body)

    def listeners(self) -> Reply:
        body = [
            {
                "name": lst.name,
                "direction": lst.config.direction.value,
                "protocol": lst.config.protocol.value,
                "address": lst.config.address,
                "port": lst.bound_port,
                "connections": len(lst.connections),
            }
            for lst in self.proxy.listeners.values()
        ]
        return 200, "application/json", _json(body)

    def drain(self) -> Reply:
        asyncio.get_running_loop().create_task(self.proxy.shutdown())
        return 202, "text/plain", b"draining\n"


def _json(value: object) -> bytes:
    return json.dumps(value, indent=2, sort_keys=False).encode() + b"\n"


class _AdminConnection(asyncio.Protocol):
    def __init__(self, admin: AdminServer) -> None:
        self.admin = admin
        self.parser = RequestParser(self, _LIMITS)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.head: RequestHead | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed(data)
        except (ProtocolError, UpgradeRequested) as exc:
            status = exc.status if isinstance(exc, ProtocolError) else 400
            self._send(status, "text/plain", b"bad request\n")

    def on_request(self, head: RequestHead) -> None:
        self.head = head

    def on_body(self, chunk: bytes) -> None:
        pass

    def on_request_complete(self) -> None:
        head, self.head = self.head, None
        if head is not None:
            self._send(*self.admin.dispatch(head))

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        if self.transport.is_closing():
            return
        headers = [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        self.transport.write(response_head(status, headers) + body)
        self.transport.close()
