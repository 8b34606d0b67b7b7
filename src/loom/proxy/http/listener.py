"""An HTTP listener: accepts connections and hands each request to its direction's chain."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from loom.proxy.capture import CaptureServer
from loom.proxy.codec.errors import ProtocolError
from loom.proxy.codec.request_parser import ParserLimits
from loom.proxy.http.chain import handle_inbound, handle_outbound
from loom.proxy.http.downstream import DownstreamConnection
from loom.proxy.listener_base import ListenerBase
from loom.snapshot.model import Direction, Listener

if TYPE_CHECKING:
    from loom.proxy.config import ProxyConfig
    from loom.proxy.router import RouteTable
    from loom.proxy.server import ProxyServer


class HttpListener(ListenerBase[DownstreamConnection]):
    def __init__(self, server: ProxyServer, config: Listener) -> None:
        self.rejected = server.metrics.counter(
            "loom_downstream_connections_rejected_total",
            "Connections refused because the listener was at max_connections or draining.",
            ("listener",),
        ).labels(config.name)
        super().__init__(server, config)

    def update(self, config: Listener) -> None:
        super().update(config)
        self.parser_limits = ParserLimits(
            max_header_bytes=config.limits.max_request_header_bytes,
            max_headers=config.limits.max_headers,
            max_url_bytes=config.limits.max_url_bytes,
            max_body_bytes=config.limits.max_request_body_bytes,
        )
        self.handle = handle_inbound if config.direction is Direction.INBOUND else handle_outbound

    def protocol_factory(self) -> Callable[[], asyncio.Protocol]:
        return lambda: DownstreamConnection(self)

    async def start(self) -> None:
        if self.config.original_dst and self.config.direction is Direction.OUTBOUND:
            self.asyncio_server = await CaptureServer.bind(self)  # transparent capture (proxy.capture)
            return
        await super().start()

    def route_table(self, config: ProxyConfig) -> RouteTable | None:
        return config.route_tables.get(self.config.route_config or "")

    def housekeeping(self, now: float) -> None:
        for conn in self.connections:
            conn.expire(now)

    def record_protocol_error(self, conn: DownstreamConnection, error: ProtocolError) -> None:
        self.server.config.record_protocol_error(self, conn, error)
