"""A cluster at run time: its endpoints, balancer, outlier detector, retry budget and pools."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from loom.proxy.cluster import EndpointState, OutlierDetector, RetryBudget, make_balancer
from loom.proxy.identity.store import IdentityStore
from loom.proxy.identity.upstream import UpstreamIdentity
from loom.proxy.upstream.connection import UpstreamConnection
from loom.proxy.upstream.pool import EndpointPool, Overflow
from loom.snapshot.model import Cluster


class ClusterStats:
    __slots__ = (
        "connect_failures",
        "overflow",
        "requests",
        "retries",
        "retry_budget_exhausted",
        "timeouts",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.retries = 0
        self.retry_budget_exhausted = 0
        self.overflow = 0
        self.connect_failures = 0
        self.timeouts = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class ClusterRuntime:
    def __init__(
        self,
        config: Cluster,
        clock: Callable[[], float] = time.monotonic,
        identity: IdentityStore | None = None,
    ) -> None:
        self.config = config
        self.tls = (
            UpstreamIdentity(identity or IdentityStore(), config.tls) if config.tls is not None else None
        )
        """Mutual TLS towards the endpoints marked ``mtls``; None when the cluster has none."""
        self.name = config.name
        self.limits = config.limits
        self.clock = clock
        self.endpoints = [EndpointState(ep) for ep in config.endpoints]
        self.pools = {ep.key: EndpointPool(self, ep) for ep in self.endpoints}
        self.balancer = make_balancer(config.lb_policy, config.consistent_hash)
        self.balancer.update(self.endpoints)
        self.outlier = OutlierDetector(config.outlier_detection) if config.outlier_detection else None
        self._next_outlier_tick = clock() + (config.outlier_detection.interval if self.outlier else 0)
        self.budget = RetryBudget(config.retry_budget)
        self.stats = ClusterStats()
        self.open_connections = 0
        self.active_requests = 0
        self.retired = False
        self._waiters: deque[asyncio.Future[UpstreamConnection | None]] = deque()
        self.series: dict[object, object] = {}
        """Telemetry label handles per endpoint key, filled lazily by the telemetry stage."""

    # endpoint choice and outcomes --------------------------------------------------------

    def pick(self, hash_key: bytes | None, avoid: EndpointState | None) -> EndpointState | None:
        return self.balancer.pick(hash_key, avoid)

    def record_outcome(self, endpoint: EndpointState, status: int | None) -> None:
        """Feed outlier detection: an HTTP status, or None for a local failure (connect, reset)."""
        if self.outlier is not None:
            self.outlier.record(endpoint, status, self.clock(), self.endpoints)

    # connection limits -------------------------------------------------------------------

    def admit_request(self) -> None:
        if self.active_requests >= self.limits.max_requests:
            self.stats.overflow += 1
            raise Overflow("max requests")
        self.active_requests += 1

    def request_done(self) -> None:
        self.active_requests -= 1

    async def wait_for_connection(self, pool: EndpointPool) -> UpstreamConnection:
        """All connections are busy and no new one may open: queue as a pending request."""
        if len(self._waiters) >= self.limits.max_pending_requests:
            self.stats.overflow += 1
            raise Overflow("max pending requests")
        waiter: asyncio.Future[UpstreamConnection | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            conn = await waiter
        except BaseException:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif waiter.done() and not waiter.cancelled():
                handed = waiter.result()
                if handed is None:
                    self.open_connections -= 1
                else:
                    handed.pool.release(handed)
            raise
        if conn is None:
            return await pool.connect(reserved=True)
        return conn

    def hand_over(self, conn: UpstreamConnection) -> bool:
        """Give a just-released connection to the oldest pending request, if any."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    def connection_slot_freed(self) -> None:
        """A connection closed: let the oldest pending request open a new one in its place."""
        while self._waiters and self.open_connections < self.limits.max_connections:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.open_connections += 1  # reserved for the waiter's connect()
                waiter.set_result(None)
                return

    # lifecycle ---------------------------------------------------------------------------

    def housekeeping(self, now: float) -> None:
        if self.outlier is not None and now >= self._next_outlier_tick:
            self.outlier.tick(now, self.endpoints)
            self._next_outlier_tick = now + self.config.outlier_detection.interval  # type: ignore[union-attr]
        older_than = now - self.limits.idle_timeout
        for pool in self.pools.values():
            if pool.idle and pool.idle[0].idle_since < older_than:
                pool.close_idle(older_than)

    def retire(self) -> None:
        """No longer in the snapshot: close idle connections; busy ones close when released."""
        self.retired = True
        for pool in self.pools.values():
            pool.close_idle()

    def describe(self) -> dict[str, object]:
        ejected = self.outlier.ejected(self.endpoints) if self.outlier else []
        return {
            "name": self.name,
            "service": self.config.service,
            "lb_policy": self.config.lb_policy.value,
            "open_connections": self.open_connections,
            "active_requests": self.active_requests,
            "pending_requests": len(self._waiters),
            "stats": self.stats.as_dict(),
            "retry_budget_exhausted": self.budget.exhausted_total,
            "ejected": [f"{ep.address}:{ep.port}" for ep in ejected],
            "endpoints": [ep.describe() for ep in self.endpoints],
        }
