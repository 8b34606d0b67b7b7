"""Load balancers: which endpoint of a cluster serves the next try.

Every balancer chooses among healthy endpoints, falls back to all endpoints when none is
healthy (panic mode), and steers a retry away from the endpoint its failed try used when
another candidate exists. It returns None only when the cluster has no endpoints.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from loom.proxy.cluster.consistent_hash import ConsistentHashBalancer
from loom.proxy.cluster.endpoint import EndpointState
from loom.proxy.cluster.p2c import LeastRequest, PeakEwma
from loom.proxy.cluster.round_robin import RoundRobin
from loom.proxy.cluster.weighted_random import WeightedRandom
from loom.snapshot.model import ConsistentHash, LbPolicy


class Balancer(Protocol):
    @property
    def endpoints(self) -> tuple[EndpointState, ...]: ...

    def update(self, endpoints: Sequence[EndpointState]) -> None:
        """Take a new endpoint set (at build time and whenever it changes)."""

    def pick(self, hash_key: bytes | None, avoid: EndpointState | None) -> EndpointState | None:
        """The endpoint for the next try; ``avoid`` is the one a failed try used."""


def make_balancer(
    policy: LbPolicy,
    consistent_hash: ConsistentHash | None,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Balancer:
    """``clock`` is read by PEAK_EWMA to age latency estimates; it must be the clock that
    supplies ``now`` to ``EndpointState.finish_request``."""
    rng = rng if rng is not None else random.Random()
    policy = LbPolicy(policy)
    if policy is LbPolicy.PEAK_EWMA:
        return PeakEwma(rng, clock)
    if policy is LbPolicy.LEAST_REQUEST:
        return LeastRequest(rng)
    if policy is LbPolicy.ROUND_ROBIN:
        return RoundRobin(rng)
    if policy is LbPolicy.RANDOM:
        return WeightedRandom(rng)
    if policy is LbPolicy.CONSISTENT_HASH:
        if consistent_hash is None:
            raise ValueError("lb_policy CONSISTENT_HASH needs consistent_hash")
        return ConsistentHashBalancer(consistent_hash.ring_size, rng)
    raise ValueError(f"unknown lb_policy {policy!r}")
