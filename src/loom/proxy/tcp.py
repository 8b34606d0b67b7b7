"""Opaque TCP proxying: the same clusters, balancers, limits and metrics, without HTTP.

Each accepted connection picks a cluster (by weight) and an endpoint, connects (trying other
endpoints if a connect fails), then copies bytes both ways with back-pressure: when one side's
write buffer fills up, reading from the other side pauses.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from loom.proxy.authz.connection import allow_tcp
from loom.proxy.identity.store import spiffe_id_of
from loom.proxy.identity.upstream import PeerIdentityError, UpstreamIdentity
from loom.proxy.listener_base import ListenerBase
from loom.proxy.telemetry import REPORTER_DESTINATION, REPORTER_SOURCE, PeerInfo
from loom.proxy.telemetry.peers import MUTUAL_TLS
from loom.snapshot.model import Direction, Listener

if TYPE_CHECKING:
    from loom.proxy.telemetry import TcpSeriesHandle
    from loom.proxy.upstream.cluster import ClusterRuntime

CONNECT_ATTEMPTS = 2


class TcpListener(ListenerBase["TcpDownstream"]):
    def update(self, config: Listener) -> None:
        assert config.tcp is not None
        super().update(config)
        self.clusters = [d.cluster for d in config.tcp.destinations]
        self.weights = [d.weight for d in config.tcp.destinations]
        self.idle_timeout = config.tcp.idle_timeout

    def protocol_factory(self) -> Callable[[], asyncio.Protocol]:
        return lambda: TcpDownstream(self)

    def pick_cluster(self) -> ClusterRuntime | None:
        name = self.clusters[0] if len(self.clusters) == 1 else random.choices(self.clusters, self.weights)[0]
        return self.server.config.clusters.get(name)

    def housekeeping(self, now: float) -> None:
        for conn in self.connections:
            if now - conn.last_activity > self.idle_timeout:
                conn.close()


class TcpDownstream(asyncio.Protocol):
    __slots__ = (
        "buffer",
        "client_eof",
        "cluster",
        "endpoint",
        "eofs",
        "last_activity",
        "listener",
        "peer_principal",
        "received",
        "sent",
        "series",
        "server_eof",
        "transport",
        "upstream",
    )

    def __init__(self, listener: TcpListener) -> None:
        self.listener = listener
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.upstream: TcpUpstream | None = None
        self.buffer: list[bytes] = []
        self.cluster: ClusterRuntime | None = None
        self.endpoint: object = None
        self.series: TcpSeriesHandle | None = None
        self.sent = 0
        self.received = 0
        self.eofs = 0
        """Directions that have ended (EOF seen); at two the connection is over and closes."""
        self.client_eof = False
        self.server_eof = False
        """Each side's EOF counts once: a transport paused and resumed after its EOF (back-pressure
        from the other side) reports the EOF again."""
        self.last_activity = time.monotonic()
        self.peer_principal: str | None = None
        """The peer's SPIFFE ID when it proved one with mutual TLS."""

    def admit(self, transport: asyncio.BaseTransport) -> bool:
        """Count the connection in its listener; False (and closed) over the connection limit or
        while draining."""
        self.transport = transport  # type: ignore[assignment]
        listener = self.listener
        listener.connections.add(self)
        if len(listener.connections) > listener.limits.max_connections or listener.draining:
            self.transport.close()
            return False
        self.transport.set_write_buffer_limits(high=64 * 1024)
        return True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.admit(transport):
            return
        listener = self.listener
        if listener.secure:
            self.peer_principal = spiffe_id_of(transport.get_extra_info("peercert"))
        if not allow_tcp(self, listener.config, listener.server.config.authorizer):
            self.transport.close()  # denied by an authorization policy (inbound only)
            return
        self.transport.pause_reading()
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        cluster = self.listener.pick_cluster()
        if cluster is None or cluster.open_connections >= cluster.limits.max_connections:
            if cluster is not None:
                cluster.stats.overflow += 1
            self.transport.close()
            return
        loop = asyncio.get_running_loop()
        avoid = None
        for _ in range(CONNECT_ATTEMPTS):
            endpoint = cluster.pick(None, avoid)
            if endpoint is None:
                break
            cluster.open_connections += 1
            tls = cluster.tls if endpoint.mtls else None
            try:
                async with asyncio.timeout(cluster.limits.connect_timeout):
                    _, upstream = await loop.create_connection(
                        lambda: TcpUpstream(self),
                        endpoint.address,
                        endpoint.port,
                        ssl=tls.context() if tls is not None else None,
                    )
                if tls is not None:
                    _verify_or_abort(tls, upstream)
            except (OSError, TimeoutError, PeerIdentityError):
                cluster.open_connections -= 1
                cluster.stats.connect_failures += 1
                cluster.record_outcome(endpoint, None)
                avoid = endpoint
                continue
            if self.transport.is_closing():
                upstream.transport.close()
                return
            self.cluster, self.endpoint, self.upstream = cluster, endpoint, upstream
            self._open_metrics(cluster, endpoint)
            for data in self.buffer:
                upstream.transport.write(data)
            self.buffer = []
            if not self.eofs:
                self.transport.resume_reading()
            elif upstream.transport.can_write_eof():
                upstream.transport.write_eof()  # the client's half-close came before the upstream was up
            return
        self.transport.close()

    def _open_metrics(self, cluster: ClusterRuntime, endpoint: object) -> None:
        config = self.listener.server.config
        metrics = config.metrics
        if metrics is None:
            return
        inbound = self.listener.config.direction is Direction.INBOUND
        principal = self.peer_principal
        policy = None
        if inbound:
            source = PeerInfo.from_principal(principal) if principal else PeerInfo()
            destination = PeerInfo.from_node(config.node, mtls=principal is not None)
            reporter = REPORTER_DESTINATION
            policy = MUTUAL_TLS if principal else None
        else:
            described = next(
                (e for e in cluster.config.endpoints if (e.address, e.port) == endpoint.key),  # type: ignore[attr-defined]
                None,
            )
            mtls = described is not None and described.mtls
            destination = (
                PeerInfo.from_endpoint(described, trust_domain=config.node.trust_domain, mtls=mtls)
                if described is not None
                else PeerInfo()
            )
            source, reporter = PeerInfo.from_node(config.node, mtls=mtls), REPORTER_SOURCE
        self.series = metrics.tcp_series(
            reporter=reporter,
            source=source,
            destination=destination,
            destination_service=cluster.config.service,
            connection_security_policy=policy,
        )
        metrics.record_tcp_open(self.series)

    def data_received(self, data: bytes) -> None:
        self.last_activity = time.monotonic()
        self.received += len(data)
        if self.upstream is None:
            self.buffer.append(data)
        else:
            self.upstream.transport.write(data)

    def eof_received(self) -> bool:
        if self.client_eof:
            return True  # reported again after a pause and resume: already handled
        self.client_eof = True
        if self.upstream is None:
            # The client sent everything (and half-closed) before the upstream connection was up:
            # keep it open; _connect forwards the EOF after the buffered bytes.
            self.eofs += 1
            return True
        if self.upstream.transport.can_write_eof():
            self.upstream.transport.write_eof()
            self.eofs += 1
            return self.eofs < 2  # False: both halves are closed, so close (and the upstream with us)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.listener.connections.discard(self)
        if self.upstream is not None:
            self.upstream.transport.close()
        self._close_metrics()

    def pause_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.transport.resume_reading()

    def write(self, data: bytes) -> None:
        self.last_activity = time.monotonic()
        self.sent += len(data)
        self.transport.write(data)

    def close(self) -> None:
        self.transport.close()

    def drain(self) -> None:
        """Shutting down: an open tunnel is left to finish on its own within the drain time."""

    def abort(self) -> None:
        self.transport.close()

    def _close_metrics(self) -> None:
        series, self.series = self.series, None
        metrics = self.listener.server.config.metrics
        if series is not None and metrics is not None:
            metrics.record_tcp_bytes(series, self.sent, self.received)
            metrics.record_tcp_close(series)


class TcpUpstream(asyncio.Protocol):
    __slots__ = ("downstream", "transport")

    def __init__(self, downstream: TcpDownstream) -> None:
        self.downstream = downstream
        self.transport: asyncio.Transport = None  # type: ignore[assignment]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.set_write_buffer_limits(high=64 * 1024)

    def data_received(self, data: bytes) -> None:
        self.downstream.write(data)

    def eof_received(self) -> bool:
        downstream = self.downstream
        if downstream.server_eof:
            return True  # reported again after a pause and resume: already handled
        downstream.server_eof = True
        if downstream.transport.can_write_eof():
            downstream.transport.write_eof()
            downstream.eofs += 1
            return downstream.eofs < 2  # False: both halves are closed, so close (and downstream too)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        downstream = self.downstream
        if downstream is None:  # refused right after connecting (see _verify_or_abort)
            return
        if downstream.cluster is not None:
            downstream.cluster.open_connections -= 1
            downstream.cluster = None
        downstream.transport.close()

    def pause_writing(self) -> None:
        self.downstream.transport.pause_reading()

    def resume_writing(self) -> None:
        self.downstream.transport.resume_reading()


def _verify_or_abort(tls: UpstreamIdentity, upstream: TcpUpstream) -> None:
    try:
        tls.verify(upstream.transport)
    except PeerIdentityError:
        upstream.downstream = None  # type: ignore[assignment]
        upstream.transport.abort()
        raise
