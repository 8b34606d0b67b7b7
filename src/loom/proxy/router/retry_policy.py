"""Retry policies (Istio ``retries``), with Envoy's ``retry_on`` semantics.

Conditions on a response status:

- ``5xx``: any 5xx. ``gateway-error``: 502, 503, 504. ``retriable-4xx``: 409.
- ``retriable-status-codes``: the codes in ``retriable_status_codes`` (ignored without it).
- a number such as ``"503"``: that code (Istio turns these into retriable status codes).
- ``unavailable``, ``cancelled``, ``deadline-exceeded``, ``resource-exhausted``, ``internal``:
  gRPC status conditions. They never match an HTTP/1.1 response and are accepted as no-ops.

Conditions on a failure before a response: Envoy retries any upstream reset under ``5xx``,
``gateway-error`` and ``reset`` (a reset becomes a 503 to the client), and in addition a
connection failure under ``connect-failure`` and a REFUSED_STREAM under ``refused-stream``.

Backoff is Envoy's fully jittered exponential backoff: before retry ``n`` (1-based) wait a
uniform time in ``[0, min(backoff_max, backoff_base × 2^(n-1)))``.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from loom.snapshot.model import RetryPolicy

_5XX = frozenset(range(500, 600))
_GATEWAY_ERRORS = frozenset((502, 503, 504))
_RETRIABLE_4XX = frozenset((409,))
_RESETS = frozenset(("5xx", "gateway-error", "reset"))
# Exponents beyond this already exceed any sane backoff_max; also keeps 2**n finite.
_MAX_DOUBLINGS = 32


class CompiledRetryPolicy:
    __slots__ = (
        "_random",
        "_statuses",
        "attempts",
        "backoff_base",
        "backoff_max",
        "on_connect_failure",
        "on_refused_stream",
        "on_reset",
        "per_try_timeout",
    )

    def __init__(self, policy: RetryPolicy, rand: Callable[[], float] = random.random) -> None:
        self.attempts: int = policy.attempts
        """Retries after the first try."""
        self.per_try_timeout: float | None = policy.per_try_timeout or None
        self.backoff_base: float = policy.backoff_base
        self.backoff_max: float = max(policy.backoff_max, policy.backoff_base)
        conditions = frozenset(policy.retry_on)
        statuses: set[int] = set()
        if "5xx" in conditions:
            statuses |= _5XX
        if "gateway-error" in conditions:
            statuses |= _GATEWAY_ERRORS
        if "retriable-4xx" in conditions:
            statuses |= _RETRIABLE_4XX
        if "retriable-status-codes" in conditions:
            statuses.update(policy.retriable_status_codes)
        statuses.update(int(c) for c in conditions if c.isdigit())
        self._statuses = frozenset(statuses)
        resets = bool(conditions & _RESETS)
        self.on_reset: bool = resets
        self.on_connect_failure: bool = resets or "connect-failure" in conditions
        self.on_refused_stream: bool = resets or "refused-stream" in conditions
        self._random = rand

    def retry_on_status(self, status: int) -> bool:
        return status in self._statuses

    def backoff(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry)."""
        doublings = min(max(retry_number, 1) - 1, _MAX_DOUBLINGS)
        ceiling = min(self.backoff_max, self.backoff_base * (1 << doublings))
        return self._random() * ceiling

    def __repr__(self) -> str:
        return (
            f"<CompiledRetryPolicy attempts={self.attempts} per_try_timeout={self.per_try_timeout} "
            f"statuses={sorted(self._statuses)} reset={self.on_reset} "
            f"connect_failure={self.on_connect_failure} refused_stream={self.on_refused_stream}>"
        )


def compile_retry_policy(
    policy: RetryPolicy | None, rand: Callable[[], float] = random.random
) -> CompiledRetryPolicy | None:
    if policy is None:
        return None
    return CompiledRetryPolicy(policy, rand)
