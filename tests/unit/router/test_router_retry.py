"""Retry policies: Envoy's retry_on semantics and jittered exponential backoff."""

from __future__ import annotations

import random

import pytest

from loom.proxy.router import CompiledRetryPolicy
from loom.snapshot import from_builtins
from loom.snapshot.model import RetryPolicy

STATUS_CASES = [
    # (retry_on, retriable_status_codes, statuses retried, statuses not retried)
    (["5xx"], [], [500, 501, 502, 503, 504, 599], [200, 404, 409, 429, 499]),
    (["gateway-error"], [], [502, 503, 504], [500, 501, 505, 409]),
    (["retriable-4xx"], [], [409], [400, 404, 429, 500, 503]),
    (["retriable-status-codes"], [429, 418], [429, 418], [409, 500, 503]),
    (["503"], [], [503], [500, 502, 504]),
    (["503", "429"], [], [503, 429], [500]),
    (["5xx"], [429], [500, 503], [429]),  # codes listed without retriable-status-codes: ignored
    (["connect-failure", "refused-stream", "unavailable", "cancelled", "503"], [], [503], [500, 502, 504]),
    (["reset", "connect-failure", "refused-stream"], [], [], [500, 502, 503, 504, 409]),
    (
        ["unavailable", "cancelled", "deadline-exceeded", "resource-exhausted", "internal"],
        [],
        [],
        [500, 503, 504],
    ),
    ([], [], [], [500, 503]),
]


@pytest.mark.parametrize(("retry_on", "codes", "retried", "not_retried"), STATUS_CASES)
def test_retry_on_status(retry_on, codes, retried, not_retried) -> None:
    policy = CompiledRetryPolicy(RetryPolicy(retry_on=retry_on, retriable_status_codes=codes))
    assert [s for s in retried if not policy.retry_on_status(s)] == []
    assert [s for s in not_retried if policy.retry_on_status(s)] == []


RESET_CASES = [
    # (retry_on, on_reset, on_connect_failure, on_refused_stream)
    (["5xx"], True, True, True),
    (["gateway-error"], True, True, True),
    (["reset"], True, True, True),
    (["connect-failure"], False, True, False),
    (["refused-stream"], False, False, True),
    (["retriable-4xx", "retriable-status-codes", "503"], False, False, False),
    (["unavailable", "cancelled"], False, False, False),
    (RetryPolicy().retry_on, False, True, True),  # Istio's default list
]


@pytest.mark.parametrize(("retry_on", "reset", "connect_failure", "refused_stream"), RESET_CASES)
def test_retry_on_failures(retry_on, reset, connect_failure, refused_stream) -> None:
    policy = CompiledRetryPolicy(RetryPolicy(retry_on=retry_on))
    assert (policy.on_reset, policy.on_connect_failure, policy.on_refused_stream) == (
        reset,
        connect_failure,
        refused_stream,
    )


def test_attempts_and_timeouts() -> None:
    policy = CompiledRetryPolicy(from_builtins({"attempts": 3, "per_try_timeout": "2s"}, RetryPolicy))
    assert policy.attempts == 3
    assert policy.per_try_timeout == 2.0
    assert CompiledRetryPolicy(RetryPolicy(per_try_timeout=0)).per_try_timeout is None
    assert CompiledRetryPolicy(RetryPolicy()).per_try_timeout is None
    assert CompiledRetryPolicy(RetryPolicy(attempts=0)).attempts == 0


def test_backoff_is_full_jitter_capped() -> None:
    policy = CompiledRetryPolicy(
        from_builtins({"backoff_base": "25ms", "backoff_max": "250ms"}, RetryPolicy), random.Random(5).random
    )
    for n, ceiling in [(1, 0.025), (2, 0.05), (3, 0.1), (4, 0.2), (5, 0.25), (9, 0.25), (10_000, 0.25)]:
        samples = [policy.backoff(n) for _ in range(2_000)]
        assert all(0.0 <= s < ceiling for s in samples), n
        assert max(samples) > ceiling * 0.9, n  # uses the whole range
        assert abs(sum(samples) / len(samples) - ceiling / 2) < ceiling * 0.05, n


def test_backoff_extremes() -> None:
    policy = CompiledRetryPolicy(
        from_builtins({"backoff_base": "10ms", "backoff_max": "1s"}, RetryPolicy), lambda: 0.999999
    )
    assert policy.backoff(0) == pytest.approx(0.01, rel=1e-3)  # treated as the first retry
    assert policy.backoff(8) == pytest.approx(1.0, rel=1e-3)


def test_route_retry_policy(compile_routes, make_head) -> None:
    retry = {"attempts": 4, "per_try_timeout": "500ms", "retry_on": ["gateway-error"]}
    route = compile_routes([{"route": {"destinations": [{"cluster": "c"}], "retry": retry}}]).match(
        make_head(), None
    )
    assert route.retry.attempts == 4
    assert route.retry.per_try_timeout == 0.5
    assert route.retry.retry_on_status(504)
    assert not route.retry.retry_on_status(500)
