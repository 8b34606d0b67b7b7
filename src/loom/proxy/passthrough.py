"""Passthrough: a captured connection to a destination outside the mesh, copied as plain TCP.

Like Envoy's PassthroughCluster: the upstream is the connection's original destination, dialled
as is (no cluster, no balancing, no TLS); bytes flow both ways with the TCP proxy's back-pressure
and half-close, and the connection counts in the istio_tcp_* metrics under the service
``PassthroughCluster``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from loom.proxy.tcp import TcpDownstream, TcpUpstream
from loom.proxy.telemetry import REPORTER_SOURCE, PeerInfo

if TYPE_CHECKING:
    from loom.proxy.http.listener import HttpListener

log = logging.getLogger("loom.proxy.capture")

PASSTHROUGH_CLUSTER = "PassthroughCluster"
PASSTHROUGH_CONNECT_TIMEOUT = 10.0
PASSTHROUGH_IDLE_TIMEOUT = 3600.0
"""Envoy's TCP proxy default: an idle database connection outside the mesh is kept an hour."""


class PassthroughDownstream(TcpDownstream):
    """The app's side; reading waits until the original destination has answered the connect."""

    __slots__ = ("destination",)

    def __init__(self, listener: HttpListener, destination: tuple[str, int]) -> None:
        # The relay methods inherited from TcpDownstream use only what every listener has:
        # connections, draining, limits and the server's metrics.
        super().__init__(listener)  # type: ignore[arg-type]
        self.destination = destination

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.admit(transport):
            return
        self.transport.pause_reading()
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        address, port = self.destination
        try:
            async with asyncio.timeout(PASSTHROUGH_CONNECT_TIMEOUT):
                _, upstream = await loop.create_connection(lambda: TcpUpstream(self), address, port)
        except (OSError, TimeoutError) as exc:
            log.debug("passthrough to %s:%d failed: %s", address, port, exc)
            self.transport.close()
            return
        if self.transport.is_closing():
            upstream.transport.close()
            return
        self.upstream = upstream
        self._open_passthrough_metrics()
        for data in self.buffer:
            upstream.transport.write(data)
        self.buffer = []
        if not self.eofs:
            self.transport.resume_reading()
        elif upstream.transport.can_write_eof():
            upstream.transport.write_eof()

    def _open_passthrough_metrics(self) -> None:
        config = self.listener.server.config
        metrics = config.metrics
        if metrics is None:
            return
        self.series = metrics.tcp_series(
            reporter=REPORTER_SOURCE,
            source=PeerInfo.from_node(config.node),
            destination=PeerInfo(),
            destination_service=PASSTHROUGH_CLUSTER,
        )
        metrics.record_tcp_open(self.series)

    def expire(self, now: float) -> None:
        """Housekeeping (the HTTP listener's): close after an hour without a byte either way."""
        if now - self.last_activity > PASSTHROUGH_IDLE_TIMEOUT:
            self.transport.close()
