"""What every balancer shares: the endpoint set, its healthy subset, and panic mode.

The healthy subset (the *candidates*) is rebuilt only when some endpoint's health changed
since the last pick, so the common pick costs one integer comparison here. When no endpoint
is healthy the candidates are all endpoints (panic mode): sending to a possibly failing
endpoint beats failing every request locally.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from loom.proxy.cluster.endpoint import HEALTH_EPOCH, EndpointState


class BaseBalancer:
    __slots__ = ("_all", "_candidates", "_epoch", "_index", "_panic", "_rng")

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._all: tuple[EndpointState, ...] = ()
        self._candidates: tuple[EndpointState, ...] = ()
        self._index: dict[EndpointState, int] = {}
        self._panic = False
        self._epoch = -1

    @property
    def endpoints(self) -> tuple[EndpointState, ...]:
        return self._all

    @property
    def panic(self) -> bool:
        """True when no endpoint is healthy and picks fall back to all of them."""
        self._current()
        return self._panic

    def update(self, endpoints: Sequence[EndpointState]) -> None:
        self._all = tuple(endpoints)
        self._epoch = -1

    def _current(self) -> tuple[EndpointState, ...]:
        if self._epoch != HEALTH_EPOCH.value:
            self._refresh()
        return self._candidates

    def _refresh(self) -> None:
        self._epoch = HEALTH_EPOCH.value
        healthy = tuple(ep for ep in self._all if ep.healthy)
        self._panic = not healthy and bool(self._all)
        self._candidates = healthy or self._all
        self._index = {ep: i for i, ep in enumerate(self._candidates)}
        self._rebuild(self._candidates)

    def _rebuild(self, candidates: tuple[EndpointState, ...]) -> None:
        """Recompute policy state for a new candidate set."""

    def _skip_index(self, avoid: EndpointState | None, count: int) -> int:
        """The candidate index to skip for ``avoid``, or -1 when there is nothing to skip
        (no avoid, avoid is not a candidate, or it is the only candidate)."""
        if avoid is None or count < 2:
            return -1
        return self._index.get(avoid, -1)
