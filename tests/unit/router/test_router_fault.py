"""Fault injection decisions at 0, 50 and 100 percent."""

from __future__ import annotations

import random

import pytest

from loom.proxy.router import CompiledFault


def fault_route(compile_routes, make_head, fault, rng=None):
    vh = compile_routes([{"route": {"destinations": [{"cluster": "c"}]}, "fault": fault}], rng=rng)
    return vh.match(make_head(), None)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ({"delay": {"fixed": "2s"}}, (2.0, None)),
        ({"delay": {"fixed": "150ms", "percentage": 100}}, (0.15, None)),
        ({"abort": {"http_status": 503}}, (0.0, 503)),
        ({"delay": {"fixed": "1s"}, "abort": {"http_status": 500}}, (1.0, 500)),
    ],
)
def test_always(compile_routes, make_head, fault, expected) -> None:
    route = fault_route(compile_routes, make_head, fault)
    assert all(route.fault.decide() == expected for _ in range(100))


def test_never_compiles_to_no_fault(compile_routes, make_head) -> None:
    fault = {"delay": {"fixed": "1s", "percentage": 0}, "abort": {"http_status": 503, "percentage": 0}}
    assert fault_route(compile_routes, make_head, fault).fault is None
    assert fault_route(compile_routes, make_head, {}).fault is None


def test_zero_percent_decides_nothing() -> None:
    fault = CompiledFault(delay=1.0, delay_percentage=0, abort_status=503, abort_percentage=0)
    assert fault.is_noop
    assert fault.decide() == (0.0, None)


def test_half(compile_routes, make_head) -> None:
    fault = {"delay": {"fixed": "1s", "percentage": 50}, "abort": {"http_status": 429, "percentage": 50}}
    route = fault_route(compile_routes, make_head, fault, rng=random.Random(11))
    decisions = [route.fault.decide() for _ in range(10_000)]
    delayed = sum(d == 1.0 for d, _ in decisions)
    aborted = sum(a == 429 for _, a in decisions)
    both = sum(d == 1.0 and a == 429 for d, a in decisions)
    assert all(d in (0.0, 1.0) and a in (None, 429) for d, a in decisions)
    assert 4_700 <= delayed <= 5_300
    assert 4_700 <= aborted <= 5_300
    assert 2_200 <= both <= 2_800  # independent draws
