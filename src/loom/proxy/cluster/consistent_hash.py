"""Consistent hashing (session affinity): the same key goes to the same endpoint.

The Maglev table covers all endpoints whatever their health, so an ejection does not
reshuffle keys: a pick walks the table from the key's slot to the first usable endpoint,
and keys return to their endpoint when it becomes healthy again.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from loom.proxy.cluster.base import BaseBalancer
from loom.proxy.cluster.endpoint import EndpointState
from loom.proxy.cluster.maglev import build_table, stable_hash, table_size
from loom.proxy.cluster.weighted_random import WeightedRandom


def endpoint_name(ep: EndpointState) -> bytes:
    return f"{ep.address}:{ep.port}".encode()


class ConsistentHashBalancer(BaseBalancer):
    __slots__ = ("_fallback", "_size", "_table")

    def __init__(self, ring_size: int, rng: random.Random) -> None:
        super().__init__(rng)
        self._size = table_size(ring_size)
        self._table: list[EndpointState] = []
        self._fallback = WeightedRandom(rng)
        """Picks for requests without a key, and for keys whose walk finds nothing."""

    @property
    def table(self) -> list[EndpointState]:
        return self._table

    def update(self, endpoints: Sequence[EndpointState]) -> None:
        super().update(endpoints)
        self._fallback.update(endpoints)
        # Order by name so that every proxy builds the same table whatever order it got
        # the endpoints in.
        ordered = sorted(self._all, key=endpoint_name)
        slots = build_table([endpoint_name(ep) for ep in ordered], [ep.weight for ep in ordered], self._size)
        self._table = [ordered[i] for i in slots]

    def pick(self, hash_key: bytes | None, avoid: EndpointState | None) -> EndpointState | None:
        candidates = self._current()
        if hash_key is None or not candidates:
            return self._fallback.pick(None, avoid)
        table = self._table
        size = len(table)
        any_health = self._panic
        skip = avoid if self._skip_index(avoid, len(candidates)) >= 0 else None
        start = stable_hash(hash_key) % size
        for step in range(size):
            pos = start + step
            ep = table[pos if pos < size else pos - size]
            if ep is not skip and (any_health or ep.healthy):
                return ep
        return self._fallback.pick(None, avoid)
