"""LM0401-LM0402: two routing resources for the same host, where one is silently ignored.

A sidecar takes the routing of a host from one place, decided as the compiler decides it:

1. a VirtualService listing the host (when it applies to sidecars: no ``gateways``, or ``mesh``
   among them) — the first by file order (file name, then position in the file) when several do,
   as Istio keeps the oldest;
2. else the HTTPRoutes attached to the host's Service (GAMMA ``parentRefs`` of kind Service),
   whose rules the Gateway API merges — several HTTPRoutes are not a conflict;
3. else a TrafficSplit of the Service — the first by file order.

- LM0401 (Error): a VirtualService ignored for a host an earlier VirtualService routes.
- LM0402 (Error): an HTTPRoute or TrafficSplit ignored for a host a VirtualService routes, a
  TrafficSplit ignored for a host HTTPRoutes route, or a TrafficSplit ignored for an earlier one.

Hosts are compared after resolving short names; VirtualServices whose ``exportTo`` make them
visible in no common namespace do not conflict.
"""

from __future__ import annotations

from collections.abc import Iterator

from loom.analyze.context import Context
from loom.analyze.finding import Code, Finding, Level, finding
from loom.analyze.routes import Claim, claims
from loom.api import Resource
from loom.api.resources.istio_networking import VirtualServiceSpec

DUPLICATE_VIRTUAL_SERVICE = Code(
    "LM0401", Level.ERROR, "two VirtualServices for the same host: one is ignored"
)
SHADOWED_ROUTE = Code(
    "LM0402", Level.ERROR, "HTTPRoute or TrafficSplit for a host already routed otherwise: it is ignored"
)
CODES = (DUPLICATE_VIRTUAL_SERVICE, SHADOWED_ROUTE)

_PRECEDENCE = {"VirtualService": 0, "HTTPRoute": 1, "TrafficSplit": 2}
_WHY = {
    ("VirtualService", "VirtualService"): "it was written first",
    ("VirtualService", "HTTPRoute"): "a VirtualService takes precedence over HTTPRoutes",
    ("VirtualService", "TrafficSplit"): "a VirtualService takes precedence over TrafficSplits",
    ("HTTPRoute", "TrafficSplit"): "HTTPRoutes take precedence over TrafficSplits",
    ("TrafficSplit", "TrafficSplit"): "it was written first",
}
_MERGE = "merge the rules into one VirtualService (rules are tried in order) and delete the other"


def run(ctx: Context) -> Iterator[Finding]:
    by_host: dict[str, list[Claim]] = {}
    for claim in claims(ctx):
        by_host.setdefault(claim.host, []).append(claim)
    for host, found in by_host.items():
        ranked = sorted(found, key=lambda claim: _PRECEDENCE[claim.resource.kind])  # stable: file order
        first = ranked[0].resource
        for claim in ranked[1:]:
            if not _conflict(first, claim.resource):
                continue
            kind = claim.resource.kind
            message = (
                f"{first.ref} ({first.source}) also routes host {ctx.show(claim.written, host)}, and "
                f"{_WHY[(first.kind, kind)]}: this {kind} is ignored for that host"
            )
            if kind == "VirtualService":
                yield finding(DUPLICATE_VIRTUAL_SERVICE, claim.resource, claim.path, message, _MERGE)
            else:
                fix = f"route each host with one API: move these rules into {first.ref}, or delete it"
                yield finding(SHADOWED_ROUTE, claim.resource, claim.path, message, fix)


def _conflict(first: Resource, other: Resource) -> bool:
    if other is first or first.kind == other.kind == "HTTPRoute":
        return False  # the Gateway API merges the rules of routes attached to one Service
    return _visible_together(first, other)


def _visible_together(a: Resource, b: Resource) -> bool:
    seen_a, seen_b = _visibility(a), _visibility(b)
    if seen_a is None:
        return seen_b is None or bool(seen_b)
    if seen_b is None:
        return bool(seen_a)
    return bool(seen_a & seen_b)


def _visibility(resource: Resource) -> set[str] | None:
    """The namespaces a VirtualService is visible in (None: all); other kinds are visible everywhere."""
    spec = resource.spec
    if not isinstance(spec, VirtualServiceSpec) or not spec.export_to:
        return None
    seen: set[str] = set()
    for target in spec.export_to:
        if target == "*":
            return None
        if target == ".":
            seen.add(resource.namespace)
        elif target != "~":
            seen.add(target)
    return seen
