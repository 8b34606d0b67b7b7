import os
import random
import subprocess
import sys
from collections import Counter

import pytest

from loom.proxy.cluster.consistent_hash import ConsistentHashBalancer
from loom.proxy.cluster.endpoint import EndpointState
from loom.proxy.cluster.maglev import build_table, stable_hash, table_size
from loom.snapshot.model import Endpoint

KEYS = [f"user-{i}".encode() for i in range(20_000)]


def endpoints(weights: list[int], base: int = 1) -> list[EndpointState]:
    return [
        EndpointState(Endpoint(address=f"10.0.4.{base + i}", port=80, weight=w))
        for i, w in enumerate(weights)
    ]


def ring(eps: list[EndpointState], ring_size: int = 1024, seed: int = 0) -> ConsistentHashBalancer:
    lb = ConsistentHashBalancer(ring_size, random.Random(seed))
    lb.update(eps)
    return lb


def owners(lb: ConsistentHashBalancer) -> list[tuple[str, int] | None]:
    return [ep.key if (ep := lb.pick(key, None)) is not None else None for key in KEYS]


def moved(before: list, after: list) -> float:
    return sum(a != b for a, b in zip(before, after, strict=True)) / len(before)


def test_the_table_size_is_the_next_prime() -> None:
    assert table_size(1024) == 1031
    assert table_size(16) == 17
    assert table_size(17) == 17
    lb = ring(endpoints([1, 1]), ring_size=1024)
    assert len(lb.table) == 1031


def test_the_same_key_always_goes_to_the_same_endpoint() -> None:
    lb = ring(endpoints([1] * 5))
    for key in KEYS[:200]:
        first = lb.pick(key, None)
        assert all(lb.pick(key, None) is first for _ in range(3))


def test_every_proxy_builds_the_same_table_whatever_the_endpoint_order() -> None:
    eps = endpoints([1, 2, 1, 3])
    shuffled = eps[:]
    random.Random(4).shuffle(shuffled)
    assert owners(ring(eps, seed=1)) == owners(ring(shuffled, seed=2))


def test_hashes_are_stable_across_processes() -> None:
    code = (
        "from loom.proxy.cluster.maglev import stable_hash, build_table;"
        "print(stable_hash(b'user-42'), build_table([b'a:1', b'b:2', b'c:3'], [1, 2, 1], 31))"
    )
    outputs = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(result.stdout)
    here = f"{stable_hash(b'user-42')} {build_table([b'a:1', b'b:2', b'c:3'], [1, 2, 1], 31)}\n"
    assert outputs == {here}


@pytest.mark.parametrize("weights", [[1, 1, 1, 1, 1], [1, 2, 3, 4], [5, 1]])
def test_keys_spread_by_weight(weights: list[int]) -> None:
    eps = endpoints(weights)
    lb = ring(eps)
    counts = Counter(lb.pick(key, None) for key in KEYS)
    total = sum(weights)
    for ep in eps:
        assert counts[ep] / len(KEYS) == pytest.approx(ep.weight / total, abs=0.02)
    table = Counter(lb.table)
    for ep in eps:
        assert table[ep] / len(lb.table) == pytest.approx(ep.weight / total, abs=0.005)


def test_removing_one_of_five_endpoints_remaps_about_its_share() -> None:
    eps = endpoints([1] * 5)
    before = owners(ring(eps))
    after = owners(ring(eps[:2] + eps[3:]))
    removed_share = sum(owner == eps[2].key for owner in before) / len(KEYS)
    assert removed_share == pytest.approx(0.2, abs=0.02)
    assert moved(before, after) < removed_share + 0.03
    assert eps[2].key not in after


def test_adding_an_endpoint_takes_about_its_share_only() -> None:
    eps = endpoints([1] * 6)
    before = owners(ring(eps[:5]))
    after = owners(ring(eps))
    gained = sum(owner == eps[5].key for owner in after) / len(KEYS)
    assert gained == pytest.approx(1 / 6, abs=0.02)
    assert moved(before, after) < gained + 0.03


def test_an_ejected_endpoints_keys_move_and_come_back() -> None:
    eps = endpoints([1] * 5)
    lb = ring(eps)
    before = owners(lb)
    eps[1].healthy = False
    during = owners(lb)
    assert eps[1].key not in during
    # Only the ejected endpoint's keys move; the rest keep their endpoint.
    for a, b in zip(before, during, strict=True):
        if a != eps[1].key:
            assert a == b
    spread = Counter(b for a, b in zip(before, during, strict=True) if a == eps[1].key)
    assert len(spread) == 4  # the ejected endpoint's keys spread over all the others
    eps[1].healthy = True
    assert owners(lb) == before


def test_a_retry_goes_to_the_next_endpoint_in_the_table_consistently() -> None:
    eps = endpoints([1] * 4)
    lb = ring(eps)
    for key in KEYS[:300]:
        first = lb.pick(key, None)
        second = lb.pick(key, first)
        assert second is not first
        assert lb.pick(key, first) is second


def test_panic_mode_keeps_the_key_to_endpoint_mapping() -> None:
    eps = endpoints([1] * 3)
    lb = ring(eps)
    before = owners(lb)
    for ep in eps:
        ep.healthy = False
    assert owners(lb) == before


def test_requests_without_a_key_are_spread_at_random() -> None:
    eps = endpoints([1, 1, 1])
    lb = ring(eps, seed=3)
    counts = Counter(lb.pick(None, None) for _ in range(6000))
    for ep in eps:
        assert counts[ep] / 6000 == pytest.approx(1 / 3, abs=0.03)
    assert eps[0] not in {lb.pick(None, eps[0]) for _ in range(200)}


def test_an_endpoint_without_a_slot_is_still_used_when_it_is_all_that_is_left() -> None:
    # 40 endpoints on a 17-slot table: most get no slot at all.
    eps = endpoints([1] * 40)
    lb = ring(eps, ring_size=16)
    slotless = next(ep for ep in eps if ep not in lb.table)
    for ep in eps:
        ep.healthy = ep is slotless
    assert lb.pick(b"any", None) is slotless


def test_build_table_fills_every_slot() -> None:
    table = build_table([b"a", b"b", b"c"], [1, 1, 1], 101)
    assert len(table) == 101
    assert set(table) == {0, 1, 2}
    assert build_table([], [], 101) == []
