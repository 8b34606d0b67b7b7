"""An HTTP listener: accepts connections and hands each request to its direction's chain."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from loom.proxy.codec.errors import ProtocolError
from loom.proxy.codec.request_parser import ParserLimits
from loom.proxy.connections import ConnectionSet
from loom.proxy.http.chain import handle_inbound, handle_outbound
from loom.proxy.http.downstream import DownstreamConnection
from loom.snapshot.model import Direction, Listener

if TYPE_CHECKING:
    from loom.proxy.config import ProxyConfig
    from loom.proxy.router import RouteTable
    from loom.proxy.server import ProxyServer


class HttpListener:
    def __init__(self, server: ProxyServer, config: Listener) -> None:
        self.server = server
        self.connections: ConnectionSet[DownstreamConnection] = ConnectionSet()
        self.draining = False
        self.rejected = server.metrics.counter(
            "loom_downstream_connections_rejected_total",
            "Connections refused because the listener was at max_connections or draining.",
            ("listener",),
        ).labels(config.name)
        self.stats_protocol_errors = 0
        self.asyncio_server: asyncio.Server | None = None
        self.loop = asyncio.get_running_loop()
        self.update(config)

    def update(self, config: Listener) -> None:
        """Take new limits and routes from a new snapshot (address and port stay)."""
        self.config = config
        self.name = config.name
        self.limits = config.limits
        self.parser_limits = ParserLimits(
            max_header_bytes=config.limits.max_request_header_bytes,
            max_headers=config.limits.max_headers,
            max_url_bytes=config.limits.max_url_bytes,
            max_body_bytes=config.limits.max_request_body_bytes,
        )
        self.handle = handle_inbound if config.direction is Direction.INBOUND else handle_outbound

    def route_table(self, config: ProxyConfig) -> RouteTable | None:
        return config.route_tables.get(self.config.route_config or "")

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.asyncio_server = await loop.create_server(
            lambda: DownstreamConnection(self),
            self.config.address,
            self.config.port,
            backlog=1024,
            reuse_address=True,
        )

    @property
    def bound_port(self) -> int:
        assert self.asyncio_server is not None
        return self.asyncio_server.sockets[0].getsockname()[1]

    def housekeeping(self, now: float) -> None:
        for conn in self.connections:
            conn.expire(now)

    def record_protocol_error(self, conn: DownstreamConnection, error: ProtocolError) -> None:
        self.server.config.record_protocol_error(self, conn, error)

    async def drain(self, timeout: float) -> None:
        """Stop accepting, let in-flight requests finish (up to ``timeout``), then close the rest."""
        self.draining = True
        if self.asyncio_server is not None:
            self.asyncio_server.close()
        for conn in self.connections:
            conn.drain()
        if timeout > 0:
            await self.connections.wait_empty(timeout)
        for conn in self.connections:
            conn.abort()
