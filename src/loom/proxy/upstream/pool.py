"""Connections to one endpoint: reuse idle ones, open new ones within the cluster's limits."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from loom.proxy.identity.upstream import PeerIdentityError, UpstreamIdentity
from loom.proxy.upstream.connection import UpstreamConnection

if TYPE_CHECKING:
    from loom.proxy.cluster import EndpointState
    from loom.proxy.upstream.cluster import ClusterRuntime


class ConnectFailure(Exception):
    """Could not connect to the endpoint (refused, unreachable, or timed out)."""


class Overflow(Exception):
    """A cluster limit (connections, pending or active requests) is reached: 503 with flag UO."""


class EndpointPool:
    __slots__ = ("cluster", "endpoint", "idle", "open")

    def __init__(self, cluster: ClusterRuntime, endpoint: EndpointState) -> None:
        self.cluster = cluster
        self.endpoint = endpoint
        self.idle: list[UpstreamConnection] = []
        self.open = 0

    def take_idle(self) -> UpstreamConnection | None:
        """A pooled keep-alive connection, if one is ready (the fast path: no waiting)."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    async def acquire(self) -> tuple[UpstreamConnection, bool]:
        """A connection for one request, and whether it was reused (vs. freshly opened)."""
        conn = self.take_idle()
        if conn is not None:
            return conn, True
        cluster = self.cluster
        if cluster.open_connections >= cluster.limits.max_connections:
            return await cluster.wait_for_connection(self), True
        return await self.connect(), False

    async def connect(self, reserved: bool = False) -> UpstreamConnection:
        """Open a new connection; ``reserved`` when the cluster already counted its slot."""
        cluster = self.cluster
        if not reserved:
            cluster.open_connections += 1
        self.open += 1
        loop = asyncio.get_running_loop()
        endpoint = self.endpoint
        tls = cluster.tls if endpoint.mtls else None
        try:
            async with asyncio.timeout(cluster.limits.connect_timeout):
                if tls is None:
                    _, conn = await loop.create_connection(
                        lambda: UpstreamConnection(self), endpoint.address, endpoint.port
                    )
                else:
                    _, conn = await loop.create_connection(
                        lambda: UpstreamConnection(self), endpoint.address, endpoint.port, ssl=tls.context()
                    )
                    _verify_or_close(tls, conn)
        except (OSError, TimeoutError, PeerIdentityError) as exc:
            self._forget()
            raise ConnectFailure(f"{endpoint.address}:{endpoint.port}: {exc or 'connect timeout'}") from None
        except BaseException:
            self._forget()
            raise
        return conn

    def release(self, conn: UpstreamConnection) -> None:
        """The request on ``conn`` is over: keep the connection for the next one, or close it."""
        conn.sink = None
        cluster = self.cluster
        limit = cluster.limits.max_requests_per_connection
        if not conn.reusable or cluster.retired or (limit and conn.requests >= limit):
            conn.close()
            return
        if cluster.hand_over(conn):
            return
        conn.idle_since = cluster.clock()
        self.idle.append(conn)

    def connection_closed(self, conn: UpstreamConnection) -> None:
        if conn in self.idle:
            self.idle.remove(conn)
        self._forget()
        self.cluster.connection_slot_freed()

    def close_idle(self, older_than: float | None = None) -> None:
        keep = []
        for conn in self.idle:
            if older_than is None or conn.idle_since < older_than:
                conn.close()
            else:
                keep.append(conn)
        self.idle[:] = keep

    def _forget(self) -> None:
        self.open -= 1
        self.cluster.open_connections -= 1


def _verify_or_close(tls: UpstreamIdentity, conn: UpstreamConnection) -> None:
    try:
        tls.verify(conn.transport)
    except PeerIdentityError:
        conn.closed = True  # the caller forgets the connection; its connection_lost must not again
        conn.transport.abort()
        raise
