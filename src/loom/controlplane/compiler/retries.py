"""Istio's ``HTTPRetry`` → the snapshot's ``RetryPolicy``, and Istio's default policy.

As Istio's ``retry.ConvertPolicy``: a route without ``retries`` gets the mesh default (2 retries
on connect-failure, refused-stream, unavailable, cancelled and 503); ``retries`` with ``attempts``
0 or unset disables retries; otherwise the default is the starting point and ``retryOn``,
``perTryTimeout`` and ``backoff`` replace its parts. ``retryOn`` is split on commas: Envoy
conditions the snapshot knows and status codes are kept, others are dropped with a warning.
``backoff`` is the base interval; the cap is ten times it (Envoy's default).
"""

from __future__ import annotations

from loom.api import Resource, defaults
from loom.api.resources.istio_networking import HTTPRetry
from loom.controlplane.compiler.diagnostics import Warnings
from loom.snapshot.durations import Duration
from loom.snapshot.model import RETRY_ON_CONDITIONS, RetryPolicy

DEFAULT_RETRY_ON = tuple(token.strip() for token in defaults.RETRY_ON.split(","))


def default_retry_policy(per_try_timeout: Duration | None = None) -> RetryPolicy:
    """Istio's default: what a route that sets no retries gets."""
    return RetryPolicy(
        attempts=defaults.RETRY_ATTEMPTS, per_try_timeout=per_try_timeout, retry_on=list(DEFAULT_RETRY_ON)
    )


NO_RETRIES = RetryPolicy(attempts=0)


def retry_policy(retry: HTTPRetry, resource: Resource, path: str, warnings: Warnings) -> RetryPolicy:
    """The policy ``retry`` (written at ``path`` of ``resource``) stands for."""
    attempts = retry.attempts or 0
    if attempts <= 0:
        if retry.attempts is None and (retry.retry_on or retry.per_try_timeout is not None):
            warnings.add(
                "`attempts` is not set, so retries are off (as in Istio); set `attempts` to retry",
                resource,
                path,
            )
        return NO_RETRIES
    retry_on = list(DEFAULT_RETRY_ON)
    if retry.retry_on:
        retry_on = retry_on_tokens(retry.retry_on, resource, f"{path}.retryOn", warnings)
    base = Duration(0.025)
    cap = Duration(0.25)
    if retry.backoff is not None and retry.backoff > 0:
        base = retry.backoff
        cap = Duration(float(retry.backoff) * 10)
    per_try = retry.per_try_timeout if retry.per_try_timeout else None
    return RetryPolicy(
        attempts=attempts, per_try_timeout=per_try, retry_on=retry_on, backoff_base=base, backoff_max=cap
    )


def retry_on_tokens(value: str, resource: Resource, path: str, warnings: Warnings) -> list[str]:
    kept: list[str] = []
    dropped: list[str] = []
    for raw in value.split(","):
        token = raw.strip()
        if not token:
            continue
        if token in RETRY_ON_CONDITIONS or (token.isdigit() and 100 <= int(token) <= 599):
            if token not in kept:
                kept.append(token)
        else:
            dropped.append(token)
    if dropped:
        known = ", ".join(sorted(RETRY_ON_CONDITIONS))
        warnings.add(
            f"retryOn {', '.join(repr(t) for t in dropped)} not supported and dropped "
            f"(supported: {known} and status codes)",
            resource,
            path,
        )
    return kept
