"""LM0201-LM0203: a host that matches no Service, ServiceEntry or WorkloadEntry.

A host is known when a Kubernetes Service defines it (``name.namespace.svc.cluster.local``), a
ServiceEntry lists it (as written, wildcards included), or a WorkloadEntry's address is that DNS
name. Short names resolve in the namespace of the resource that writes them: ``reviews`` in a
VirtualService of namespace ``shop`` is ``reviews.shop.svc.cluster.local``, whatever namespace the
Service is in.

- LM0201 (Error): a route destination or mirror (VirtualService, HTTPRoute backendRef,
  TrafficSplit backend) — requests routed there fail with 503, mirrored copies go nowhere.
- LM0202 (Warning): a DestinationRule's host — its policies and subsets apply to nothing.
- LM0203 (Warning): the Service an HTTPRoute attaches to (``parentRefs`` of kind Service) or a
  TrafficSplit splits (``spec.service``) — the route or split never takes effect.
"""

from __future__ import annotations

from collections.abc import Iterator

from loom.analyze.context import Context
from loom.analyze.finding import Code, Finding, Level, finding
from loom.analyze.routes import claims, targets
from loom.api import Resource
from loom.api.resources.istio_networking import DestinationRuleSpec, VirtualServiceSpec

UNKNOWN_DESTINATION = Code("LM0201", Level.ERROR, "route destination or mirror host matches no service")
UNKNOWN_RULE_HOST = Code("LM0202", Level.WARNING, "DestinationRule host matches no service")
UNKNOWN_PARENT = Code(
    "LM0203", Level.WARNING, "HTTPRoute parent Service or TrafficSplit service does not exist"
)
CODES = (UNKNOWN_DESTINATION, UNKNOWN_RULE_HOST, UNKNOWN_PARENT)


def run(ctx: Context) -> Iterator[Finding]:
    for target in targets(ctx):
        if ctx.is_known(target.host):
            continue
        effect = (
            "mirrored copies of requests go nowhere"
            if target.mirror
            else "requests routed to it fail with 503"
        )
        host = ctx.show(target.written, target.host)
        message = f"host {host} matches no Service, ServiceEntry or WorkloadEntry — {effect}"
        yield finding(
            UNKNOWN_DESTINATION,
            target.resource,
            target.path,
            message,
            _fix(ctx, target.host, target.resource),
        )
    for resource, spec in ctx.of(DestinationRuleSpec):
        host = ctx.rule_host(resource)
        if ctx.is_known(host):
            continue
        message = (
            f"host {ctx.show(spec.host, host)} matches no Service, ServiceEntry or WorkloadEntry — "
            "its traffic policy and subsets apply to nothing"
        )
        yield finding(UNKNOWN_RULE_HOST, resource, "spec.host", message, _fix(ctx, host, resource))
    for claim in claims(ctx):
        if isinstance(claim.resource.spec, VirtualServiceSpec) or ctx.is_known(claim.host):
            continue
        what = "the route applies" if claim.resource.kind == "HTTPRoute" else "the split applies"
        message = (
            f"service {ctx.show(claim.written, claim.host)} does not exist — {what} to traffic sent to it, "
            "so it never takes effect"
        )
        yield finding(
            UNKNOWN_PARENT, claim.resource, claim.path, message, _fix(ctx, claim.host, claim.resource)
        )


def _fix(ctx: Context, host: str, resource: Resource) -> str:
    if resource.kind == "HTTPRoute":
        fix = (
            "correct the name (a reference names a Service of the route's namespace unless it sets "
            "`namespace:`), or create the Service"
        )
    elif resource.kind == "TrafficSplit":
        fix = "correct the name (a TrafficSplit names Services of its own namespace), or create the Service"
    else:
        fix = (
            "correct the host (a short name means a Service in this resource's namespace; write "
            "name.namespace for another namespace), create the Service, or declare an external host with a "
            "ServiceEntry"
        )
    meant = ctx.suggest(host, resource.namespace)
    return f"did you mean {meant}? If not, {fix}" if meant else fix
