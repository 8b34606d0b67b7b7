"""One upstream endpoint's live state: load, latency estimate and outlier status.

The snapshot's ``Endpoint`` is immutable config; ``EndpointState`` is what the proxy mutates
while serving. Carrying the state of an unchanged endpoint (same ``key``) over to the next
snapshot keeps its outlier history and latency estimate across the swap.
"""

from __future__ import annotations

import math
from typing import Any

from loom.snapshot.model import Endpoint

DEFAULT_RTT_S = 0.030
"""The latency assumed for an endpoint that has not answered yet."""
EWMA_TAU_S = 10.0
"""Time constant of the latency estimate's decay."""


class HealthEpoch:
    """Counts health changes of any endpoint, so balancers rebuild their healthy set lazily.

    A balancer compares the epoch it last saw with ``value`` on each pick (one integer
    comparison) instead of scanning its endpoints for ejections on every request.
    """

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


HEALTH_EPOCH = HealthEpoch()


class EndpointState:
    __slots__ = (
        "_healthy",
        "active",
        "address",
        "consecutive_5xx",
        "consecutive_gateway_errors",
        "ejected_at",
        "ejection_multiplier",
        "ejection_reason",
        "ejections_total",
        "ewma",
        "ewma_at",
        "key",
        "labels",
        "mtls",
        "namespace",
        "port",
        "service_account",
        "unejected_at",
        "weight",
        "workload",
    )

    def __init__(self, ep: Endpoint) -> None:
        self.address: str = ep.address
        self.port: int = ep.port
        self.weight: int = ep.weight
        self.labels: dict[str, str] = ep.labels
        self.workload: str = ep.workload
        self.namespace: str = ep.namespace
        self.service_account: str = ep.service_account
        self.mtls: bool = ep.mtls
        self.key: tuple[str, int] = (ep.address, ep.port)
        self.active: int = 0
        """Requests in flight to this endpoint."""
        self._healthy: bool = True
        self.ewma: float = DEFAULT_RTT_S
        """Peak-sensitive moving average of the latency, in seconds, as of ``ewma_at``."""
        self.ewma_at: float | None = None
        """When ``ewma`` was last updated; None until the first response."""
        self.consecutive_5xx: int = 0
        self.consecutive_gateway_errors: int = 0
        self.ejections_total: int = 0
        self.ejection_multiplier: int = 0
        """Multiplies the base ejection time; up on each ejection, down while healthy."""
        self.ejected_at: float | None = None
        self.ejection_reason: str | None = None
        self.unejected_at: float | None = None

    @property
    def healthy(self) -> bool:
        """False while ejected by outlier detection."""
        return self._healthy

    @healthy.setter
    def healthy(self, value: bool) -> None:
        if value != self._healthy:
            self._healthy = bool(value)
            HEALTH_EPOCH.value += 1

    def start_request(self) -> None:
        self.active += 1

    def finish_request(self, latency_s: float, now: float) -> None:
        if self.active > 0:
            self.active -= 1
        at = self.ewma_at
        if at is None:
            # The default estimate stands in for the time before the first request began.
            at = now - latency_s
        if latency_s > self.ewma:
            self.ewma = latency_s
        else:
            elapsed = now - at
            decay = math.exp(-elapsed / EWMA_TAU_S) if elapsed > 0.0 else 1.0
            self.ewma = self.ewma * decay + latency_s * (1.0 - decay)
        self.ewma_at = now

    def latency_at(self, now: float) -> float:
        """The latency estimate at ``now``: it decays towards zero while no response arrives,
        so an endpoint that was slow once is eventually tried again."""
        at = self.ewma_at
        if at is None or now <= at:
            return self.ewma
        return self.ewma * math.exp((at - now) / EWMA_TAU_S)

    def describe(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "port": self.port,
            "weight": self.weight,
            "labels": dict(self.labels),
            "workload": self.workload,
            "namespace": self.namespace,
            "active": self.active,
            "healthy": self._healthy,
            "ewma_ms": round(self.ewma * 1000.0, 3),
            "consecutive_5xx": self.consecutive_5xx,
            "consecutive_gateway_errors": self.consecutive_gateway_errors,
            "ejections_total": self.ejections_total,
            "ejection_multiplier": self.ejection_multiplier,
            "ejection_reason": self.ejection_reason,
            "ejected_at": self.ejected_at,
        }

    def __repr__(self) -> str:
        return f"<EndpointState {self.address}:{self.port} active={self.active} healthy={self._healthy}>"
