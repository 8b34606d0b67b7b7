"""Weighted round robin over a precomputed, interleaved schedule.

Each endpoint of weight w gets w slots per cycle, placed at (k - ½)/w for k = 1..w and
merged in order (earliest-deadline-first). Over every full cycle each endpoint is picked
exactly in proportion to its weight, and heavy endpoints are spread through the cycle
instead of picked in runs. A pick is one list index.
"""

from __future__ import annotations

import random
from math import gcd

from loom.proxy.cluster.base import BaseBalancer
from loom.proxy.cluster.endpoint import EndpointState

MAX_SCHEDULE = 1 << 16
"""Longest cycle kept; larger weight sums are scaled down to fit (proportions then approximate)."""


def schedule(weights: list[int]) -> list[int]:
    """The pick order for one cycle, as indexes into ``weights``."""
    if not weights:
        return []
    divisor = 0
    for w in weights:
        divisor = gcd(divisor, w)
    scaled = [w // divisor for w in weights]
    total = sum(scaled)
    if total > MAX_SCHEDULE:
        scaled = [max(1, w * MAX_SCHEDULE // total) for w in scaled]
    slots = sorted(((2 * k - 1) / (2 * w), i) for i, w in enumerate(scaled) for k in range(1, w + 1))
    return [i for _, i in slots]


class RoundRobin(BaseBalancer):
    __slots__ = ("_cursor", "_schedule")

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self._schedule: list[int] = []
        self._cursor = 0

    def _rebuild(self, candidates: tuple[EndpointState, ...]) -> None:
        self._schedule = schedule([ep.weight for ep in candidates])
        # Start each proxy at a different place so a fleet does not hit the same endpoint first.
        self._cursor = int(self._rng.random() * len(self._schedule))

    def pick(self, hash_key: bytes | None, avoid: EndpointState | None) -> EndpointState | None:
        candidates = self._current()
        sched = self._schedule
        size = len(sched)
        if not size:
            return None
        pos = self._cursor
        self._cursor = pos + 1 if pos + 1 < size else 0
        ep = candidates[sched[pos]]
        if ep is avoid and len(candidates) > 1:
            # A retry takes the next different endpoint in the schedule; the scan leaves the
            # shared cursor where it is.
            for step in range(1, size):
                other = candidates[sched[(pos + step) % size]]
                if other is not avoid:
                    return other
        return ep
