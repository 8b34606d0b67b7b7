"""Power of two choices: sample two distinct candidates, send to the cheaper.

Comparing two random endpoints instead of scanning for the global minimum keeps a pick O(1)
and avoids herding every proxy onto the one least-loaded endpoint. Costs are divided by the
endpoint weight, so a weight-2 endpoint carries twice the load of a weight-1 one at equal cost.

- ``LeastRequest``: cost = requests in flight + 1.
- ``PeakEwma``: cost = latency estimate × (requests in flight + 1); the estimate jumps up
  to any slower response at once and decays back slowly (see ``EndpointState``).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from loom.proxy.cluster.base import BaseBalancer
from loom.proxy.cluster.endpoint import EndpointState


class _PowerOfTwo(BaseBalancer):
    __slots__ = ()

    def _pair(
        self, candidates: tuple[EndpointState, ...], avoid: EndpointState | None
    ) -> tuple[EndpointState, EndpointState] | EndpointState | None:
        """Two distinct candidates other than avoid, or the only choice there is."""
        count = len(candidates)
        if count < 2:
            return candidates[0] if count else None
        skip = self._skip_index(avoid, count)
        if skip >= 0:
            if count == 2:
                return candidates[1 - skip]
            count -= 1
        rnd = self._rng.random
        i = int(rnd() * count)
        j = int(rnd() * (count - 1))
        if j >= i:
            j += 1
        if skip >= 0:
            if i >= skip:
                i += 1
            if j >= skip:
                j += 1
        return candidates[i], candidates[j]


class LeastRequest(_PowerOfTwo):
    __slots__ = ()

    def pick(self, hash_key: bytes | None, avoid: EndpointState | None) -> EndpointState | None:
        pair = self._pair(self._current(), avoid)
        if not isinstance(pair, tuple):
            return pair
        a, b = pair
        return b if (b.active + 1) * a.weight < (a.active + 1) * b.weight else a


class PeakEwma(_PowerOfTwo):
    __slots__ = ("_clock",)

    def __init__(self, rng: random.Random, clock: Callable[[], float]) -> None:
        super().__init__(rng)
        self._clock = clock

    def pick(self, hash_key: bytes | None, avoid: EndpointState | None) -> EndpointState | None:
        pair = self._pair(self._current(), avoid)
        if not isinstance(pair, tuple):
            return pair
        a, b = pair
        now = self._clock()
        cost_a = a.latency_at(now) * (a.active + 1) * b.weight
        cost_b = b.latency_at(now) * (b.active + 1) * a.weight
        return b if cost_b < cost_a else a
