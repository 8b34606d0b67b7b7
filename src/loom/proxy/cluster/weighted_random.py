"""Weighted random choice: a bisection over cumulative weights."""

from __future__ import annotations

import random
from bisect import bisect_right

from loom.proxy.cluster.base import BaseBalancer
from loom.proxy.cluster.endpoint import EndpointState


class WeightedRandom(BaseBalancer):
    __slots__ = ("_cumulative",)

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self._cumulative: list[int] = []

    def _rebuild(self, candidates: tuple[EndpointState, ...]) -> None:
        total = 0
        cumulative = []
        for ep in candidates:
            total += ep.weight
            cumulative.append(total)
        self._cumulative = cumulative

    def pick(self, hash_key: bytes | None, avoid: EndpointState | None) -> EndpointState | None:
        candidates = self._current()
        count = len(candidates)
        if count < 2:
            return candidates[0] if count else None
        cumulative = self._cumulative
        total = cumulative[-1]
        skip = self._skip_index(avoid, count)
        if skip < 0:
            i = bisect_right(cumulative, self._rng.random() * total)
        else:
            # Draw over the other endpoints' weights, then step over avoid's interval.
            low = cumulative[skip - 1] if skip else 0
            width = cumulative[skip] - low
            r = self._rng.random() * (total - width)
            if r >= low:
                r += width
            i = bisect_right(cumulative, r)
        return candidates[i if i < count else count - 1]
