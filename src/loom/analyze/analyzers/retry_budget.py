"""LM0703-LM0704: retries that can multiply without a retry budget to cap them.

Retries protect one request, but when a service is failing they add load exactly when it can
least take it. A retry budget (DestinationRule ``trafficPolicy.retryBudget``, Istio 1.27+) caps
retries to a fraction of the requests in flight to the destination. Where retries multiply,
the budget is what stops a retry storm. A route "retries" here when its ``retries`` (or its
destination's default ``retryPolicy``) have attempts above 0, or an HTTPRoute rule has a ``retry``.
A destination is covered when a DestinationRule for its host sets ``trafficPolicy.retryBudget``.

- LM0703 (Warning), retries on consecutive hops: a retrying route to service B is taken by
  callers that belong to service A (the rule's ``match.sourceLabels`` select A's workloads, or its
  ``sourceNamespace`` is A's namespace) while A is itself reached through a retrying route. One
  request to A can then become ``(1 + attempts A) × (1 + attempts B)`` requests to B.
- LM0704 (Info), fan-in: two or more resources route to the same service with retries (several
  callers retrying at once), and no budget caps the total.

Callers are known only from ``sourceLabels``/``sourceNamespace``; a route that does not say who
takes it counts for fan-in only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from loom.analyze import hosts
from loom.analyze.context import Context
from loom.analyze.finding import Code, Finding, Level, finding
from loom.analyze.retry_policy import Retry, gateway_rule_retry, istio_rule_retries
from loom.analyze.routes import targets
from loom.api import Resource
from loom.api.resources.gateway import HTTPRouteSpec
from loom.api.resources.istio_networking import DestinationRuleSpec, HTTPMatchRequest, VirtualServiceSpec

RETRIES_ON_CONSECUTIVE_HOPS = Code(
    "LM0703", Level.WARNING, "retries on consecutive hops multiply, and no retry budget caps them"
)
RETRY_FAN_IN = Code("LM0704", Level.INFO, "several retrying routes reach a service without a retry budget")
CODES = (RETRIES_ON_CONSECUTIVE_HOPS, RETRY_FAN_IN)

BUDGET_EXAMPLE = "trafficPolicy.retryBudget (e.g. percent: 20, minRetryConcurrency: 3)"


@dataclass(frozen=True, slots=True)
class _RetryingRoute:
    resource: Resource
    rule: str
    retry: Retry
    callers: frozenset[str]
    """Hosts of the services whose workloads take this route (empty: not known)."""

    def describe(self) -> str:
        where = f"{self.resource.source.file}:{self.resource.line_of(self.rule)}"
        return f"{self.resource.ref} {self.rule} ({where})"


def run(ctx: Context) -> Iterator[Finding]:
    by_host = _retrying_routes(ctx)
    for host, routes in by_host.items():
        rules = ctx.destination_rules(host)
        if any(spec.traffic_policy and spec.traffic_policy.retry_budget for _, spec in rules):
            continue
        name = hosts.short(host, ctx.mesh.cluster_domain)
        resource, path = _where(rules, routes[0])
        chain = _consecutive(host, routes, by_host)
        if chain is not None:
            outer, inner, caller = chain
            worst = (1 + outer.retry.attempts) * (1 + inner.retry.attempts)
            message = (
                f"requests to {name} are retried by {inner.describe()}, attempts {inner.retry.attempts}, for "
                f"callers in {hosts.short(caller, ctx.mesh.cluster_domain)}, which is itself reached through "
                f"retrying {outer.describe()}, attempts {outer.retry.attempts}: when {name} fails, "
                f"one request can become up to {worst} requests to it, and no retry budget caps them"
            )
            yield finding(RETRIES_ON_CONSECUTIVE_HOPS, resource, path, message, _fix(rules, name))
            continue
        sources = list(dict.fromkeys(route.resource for route in routes))
        if len(sources) >= 2:
            listed = "; ".join(route.describe() for route in routes)
            message = (
                f"{name} is reached by {len(routes)} routes that retry ({listed}) and no retry budget caps "
                f"them: when {name} slows down, every caller retries at once and the retries add to its load"
            )
            yield finding(RETRY_FAN_IN, resource, path, message, _fix(rules, name))


def _retrying_routes(ctx: Context) -> dict[str, list[_RetryingRoute]]:
    by_host: dict[str, list[_RetryingRoute]] = {}
    destinations: dict[tuple[Resource, str], list[str]] = {}
    for target in targets(ctx):
        if not target.mirror:
            destinations.setdefault((target.resource, target.rule), []).append(target.host)
    for resource, spec in ctx.of(VirtualServiceSpec):
        for i, rule in enumerate(spec.http):
            retry = next((r for r in istio_rule_retries(ctx, resource, rule, i) if r.attempts > 0), None)
            if retry is not None:
                callers = _callers(ctx, rule.match)
                path = f"spec.http[{i}]"
                for host in dict.fromkeys(destinations.get((resource, path), [])):
                    by_host.setdefault(host, []).append(_RetryingRoute(resource, path, retry, callers))
    for resource, route in ctx.of(HTTPRouteSpec):
        for i, rule in enumerate(route.rules):
            retry = gateway_rule_retry(resource, rule, i)
            if retry is not None and retry.attempts > 0:
                path = f"spec.rules[{i}]"
                for host in dict.fromkeys(destinations.get((resource, path), [])):
                    by_host.setdefault(host, []).append(_RetryingRoute(resource, path, retry, frozenset()))
    return by_host


def _callers(ctx: Context, matches: tuple[HTTPMatchRequest, ...]) -> frozenset[str]:
    """The services whose workloads the rule's source conditions select."""
    found: set[str] = set()
    for match in matches:
        if not match.source_labels and match.source_namespace is None:
            continue
        namespace = match.source_namespace
        for workload in ctx.select(match.source_labels, namespace):
            found.update(service.host for service in ctx.services_of(workload))
        if namespace is not None and not match.source_labels:
            found.update(s.host for s in ctx.services if s.resource.namespace == namespace)
    return frozenset(found)


def _consecutive(
    host: str, routes: list[_RetryingRoute], by_host: dict[str, list[_RetryingRoute]]
) -> tuple[_RetryingRoute, _RetryingRoute, str] | None:
    """(the retrying route into the caller, the retrying route from it to ``host``, the caller)."""
    for inner in routes:
        for caller in sorted(inner.callers):
            if caller != host and caller in by_host:
                return by_host[caller][0], inner, caller
    return None


def _where(
    rules: tuple[tuple[Resource, DestinationRuleSpec], ...], route: _RetryingRoute
) -> tuple[Resource, str]:
    """Where to report: the host's DestinationRule (where the budget goes), else the retrying route."""
    if rules:
        resource, spec = rules[0]
        return resource, "spec.trafficPolicy" if spec.traffic_policy is not None else "spec.host"
    path = route.retry.path if route.retry.on_route else route.rule
    return route.resource, path


def _fix(rules: tuple[tuple[Resource, DestinationRuleSpec], ...], name: str) -> str:
    if rules:
        rule = rules[0][0]
        where = f"DestinationRule {rule.namespace}/{rule.name}"
        return (
            f"add {BUDGET_EXAMPLE} to {where} so retries stay a fraction of the traffic, "
            "or retry on one hop only"
        )
    return (
        f"create a DestinationRule for host {name} with {BUDGET_EXAMPLE} so retries stay a fraction of the "
        "traffic, or retry on one hop only"
    )
