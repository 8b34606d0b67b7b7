"""Maglev lookup tables: consistent hashing with an exact table size and even spread.

Every endpoint walks its own permutation of the table (derived from a stable hash of its
name) and the endpoints take turns claiming their next free slot, the heavier ones more
often. Removing one endpoint frees its slots and barely moves anyone else's, so only about
its share of keys is remapped. Names are hashed with BLAKE2b, never Python's per-process
salted ``hash()``, so every proxy builds the same table for the same endpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import blake2b


def stable_hash(data: bytes, salt: bytes = b"") -> int:
    """A 64-bit hash that is the same in every process."""
    return int.from_bytes(blake2b(data, digest_size=8, person=salt).digest(), "little")


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    d = 3
    while d * d <= n:
        if n % d == 0:
            return False
        d += 2
    return True


def table_size(ring_size: int) -> int:
    """The smallest prime ≥ ring_size: with a prime size every skip yields a full permutation."""
    n = max(ring_size, 2)
    while not _is_prime(n):
        n += 1
    return n


def build_table(names: Sequence[bytes], weights: Sequence[int], size: int) -> list[int]:
    """A table of ``size`` endpoint indexes. An endpoint gets about size × weight / Σweight
    slots; with far more endpoints than slots, or extreme weight ratios, one may get none."""
    count = len(names)
    if count == 0:
        return []
    offsets = [stable_hash(name, b"loom-maglev-off") % size for name in names]
    skips = [stable_hash(name, b"loom-maglev-skp") % (size - 1) + 1 for name in names]
    nexts = [0] * count
    credit = [0] * count
    heaviest = max(weights)
    table = [-1] * size
    filled = 0
    while True:
        for i in range(count):
            # An endpoint claims a slot each time its accumulated weight reaches the heaviest
            # weight, so claims are proportional to weight.
            credit[i] += weights[i]
            if credit[i] < heaviest:
                continue
            credit[i] -= heaviest
            offset, skip, nxt = offsets[i], skips[i], nexts[i]
            slot = (offset + nxt * skip) % size
            while table[slot] >= 0:
                nxt += 1
                slot = (offset + nxt * skip) % size
            table[slot] = i
            nexts[i] = nxt + 1
            filled += 1
            if filled == size:
                return table
