"""The retry policy a route actually has, for the retry analyzers.

A VirtualService rule's ``retries`` apply to it; a rule without ``retries`` takes the default
retry policy Loom reads from its destination's DestinationRule (``trafficPolicy.retryPolicy``, a
Loom extension; a subset's own ``trafficPolicy.retryPolicy`` first). An HTTPRoute rule's
``retry`` applies to it. Istio's built-in default (2 attempts on connect failures and 503) is not
reported: it is what every route has unless told otherwise. As in Istio (and the compiler), a
``retries`` without ``attempts`` turns retries off.
"""

from __future__ import annotations

from dataclasses import dataclass

from loom.analyze.context import Context
from loom.api import Resource, defaults
from loom.api.resources.gateway import HTTPRouteRule
from loom.api.resources.istio_networking import HTTPRetry, HTTPRoute


@dataclass(frozen=True, slots=True)
class Retry:
    """A retry policy and where it is written (``resource`` and ``path``)."""

    attempts: int
    per_try_timeout: float | None
    retry_on: tuple[str, ...]
    resource: Resource
    path: str

    @property
    def on_route(self) -> bool:
        """Written on the route itself (not a DestinationRule's default)."""
        return self.resource.kind != "DestinationRule"

    def origin(self) -> str:
        """``the default retry policy of DestinationRule ns/name (file:line)``, or "" when on the route."""
        if self.on_route:
            return ""
        r = self.resource
        return (
            f"the default retry policy of DestinationRule {r.namespace}/{r.name} "
            f"({r.source.file}:{r.line_of(self.path)})"
        )


def istio_rule_retries(ctx: Context, resource: Resource, rule: HTTPRoute, index: int) -> tuple[Retry, ...]:
    """The retry policies of ``spec.http[index]`` of a VirtualService: its own, else its destinations'
    DestinationRule defaults (one per DestinationRule, in route order)."""
    if rule.retries is not None:
        return (_istio(rule.retries, resource, f"spec.http[{index}].retries"),)
    found: dict[Retry, None] = {}
    for route in rule.route:
        host = ctx.resolve(route.destination.host, resource.namespace)
        for dr, spec in ctx.destination_rules(host):
            policy, path = None, ""
            for k, subset in enumerate(spec.subsets):
                if subset.name == route.destination.subset and subset.traffic_policy is not None:
                    policy, path = (
                        subset.traffic_policy.retry_policy,
                        f"spec.subsets[{k}].trafficPolicy.retryPolicy",
                    )
            if policy is None and spec.traffic_policy is not None:
                policy, path = spec.traffic_policy.retry_policy, "spec.trafficPolicy.retryPolicy"
            if policy is not None:
                found.setdefault(_istio(policy, dr, path), None)
                break
    return tuple(found)


def _istio(retry: HTTPRetry, resource: Resource, path: str) -> Retry:
    attempts = retry.attempts or 0  # Istio: `retries` without `attempts` turns retries off
    retry_on = retry.retry_on if retry.retry_on is not None else defaults.RETRY_ON
    tokens = tuple(token.strip().lower() for token in retry_on.split(",") if token.strip())
    return Retry(attempts, retry.per_try_timeout, tokens, resource, path)


def gateway_rule_retry(resource: Resource, rule: HTTPRouteRule, index: int) -> Retry | None:
    """The retry of ``spec.rules[index]`` of an HTTPRoute (its status codes as ``retry_on``); None
    when it sets none. An absent ``attempts`` is taken as Istio's default, 2."""
    if rule.retry is None:
        return None
    attempts = defaults.RETRY_ATTEMPTS if rule.retry.attempts is None else rule.retry.attempts
    per_try = rule.timeouts.backend_request if rule.timeouts is not None else None
    codes = tuple(str(code) for code in rule.retry.codes)
    return Retry(attempts, per_try, codes, resource, f"spec.rules[{index}].retry")


def duration(seconds: float) -> str:
    """``5s``, ``250ms``, ``1m30s``, ``3.333s``: a duration as an operator writes it (to the millisecond)."""
    seconds = round(seconds, 3)
    if seconds < 1:
        return f"{round(seconds * 1000, 3):g}ms"
    minutes, rest = divmod(seconds, 60)
    if not minutes:
        return f"{rest:g}s"
    return f"{int(minutes)}m" + (f"{round(rest, 3):g}s" if rest else "")
