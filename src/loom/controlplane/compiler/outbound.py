"""The proxy's outbound side: one virtual host per visible (service, HTTP port), and the clusters its
routes reach.

A virtual host is named ``<fqdn>:<port>`` and answers the FQDN (the proxy derives ``name``,
``name.ns`` and ``name.ns.svc`` from it) and the service's virtual IPs, on the service port. Its
routes come from, in this order of precedence:

1. the VirtualService that claims the host (exact host before wildcards; then the first by
   source — Istio keeps the oldest; the others are reported);
2. else the HTTPRoutes attached to the service (a consumer route of the proxy's namespace before
   the service's own routes);
3. else the TrafficSplit whose apex is the service;
4. else one default route to ``outbound|<port>||<fqdn>``.

Every visible service port also gets its default cluster, whatever routes it. A cluster's endpoints
talk mutual TLS as ``mtls`` decides (auto mTLS, then the DestinationRule's ``tls``).
"""

from __future__ import annotations

from loom.controlplane.compiler.checks import domain_problem
from loom.controlplane.compiler.cluster_policy import cluster_settings
from loom.controlplane.compiler.context import ClusterRequest, Compilation
from loom.controlplane.compiler.destination_rules import Policy
from loom.controlplane.compiler.gateway_routes import gateway_routes
from loom.controlplane.compiler.inputs import RouteAttachment
from loom.controlplane.compiler.model import Service
from loom.controlplane.compiler.mtls import upstream_tls
from loom.controlplane.compiler.names import exported_to, labels_match, outbound_cluster
from loom.controlplane.compiler.retries import default_retry_policy
from loom.controlplane.compiler.traffic_split import split_route
from loom.controlplane.compiler.virtual_services import virtual_service_routes
from loom.snapshot.model import (
    Cluster,
    Protocol,
    Route,
    RouteAction,
    RouteConfig,
    VirtualHost,
    WeightedCluster,
)

OUTBOUND = "outbound"


def outbound_route_config(comp: Compilation) -> RouteConfig:
    virtual_hosts = []
    claimed: dict[tuple[str, int], str] = {}
    for service in comp.inputs.services:
        if not comp.visible(service):
            continue
        for port in service.ports:
            if port.protocol != "http":
                continue
            comp.cluster(
                service.fqdn, port.number, None, fallback_port=port.number, resource=service.resource, path=""
            )
            routes = _routes(comp, service, port.number)
            if not routes:
                continue  # every rule is for other callers: requests get 404 (NR), as in Istio
            name = f"{service.fqdn}:{port.number}"
            domains = []
            for domain in (service.fqdn, *service.addresses):
                problem = domain_problem(domain)
                if problem is not None:
                    comp.warnings.add(f"{problem}; it cannot name a virtual host", service.resource)
                    continue
                held = claimed.setdefault((domain, port.number), name)
                if held != name:
                    comp.warnings.add(
                        f"{domain}:{port.number} already names {held}; not added to {name}", service.resource
                    )
                    continue
                domains.append(domain)
            if domains:
                virtual_hosts.append(VirtualHost(name=name, domains=domains, port=port.number, routes=routes))
    return RouteConfig(name=OUTBOUND, virtual_hosts=virtual_hosts)


def _routes(comp: Compilation, service: Service, port: int) -> list[Route]:
    inputs = comp.inputs
    claims = [
        claim
        for claim in inputs.virtual_services.get(service.fqdn, ())
        if exported_to(claim.entry.spec.export_to, claim.entry.resource.namespace, comp.namespace)
    ]
    attachments = _attachments(comp, service, port)
    splits = inputs.traffic_splits.get(service.fqdn, ())
    if claims:
        winner = claims[0].entry.resource
        for other in dict.fromkeys(claim.entry.resource for claim in claims[1:]):
            if other is not winner:
                comp.warnings.add(_shadowed(service.fqdn, winner.ref, winner.source), other)
        for loser in (*(a.resource for a in attachments), *splits):
            comp.warnings.add(_shadowed(service.fqdn, winner.ref, winner.source), loser)
        return virtual_service_routes(comp, claims[0].entry, port)
    if attachments:
        for loser in splits:
            comp.warnings.add(
                _shadowed(service.fqdn, attachments[0].resource.ref, attachments[0].resource.source), loser
            )
        return gateway_routes(comp, attachments, port)
    if splits:
        route = split_route(comp, splits, port)
        if route is not None:
            return [route]
    return [default_route(service.fqdn, port)]


def _shadowed(fqdn: str, winner: str, where: object) -> str:
    return f"{fqdn} is already routed by {winner} ({where}); ignored for it"


def _attachments(comp: Compilation, service: Service, port: int) -> list[RouteAttachment]:
    found = [a for a in comp.inputs.http_routes.get(service.fqdn, ()) if a.port is None or a.port == port]
    consumer = [a for a in found if a.consumer and a.resource.namespace == comp.namespace]
    return consumer or [a for a in found if not a.consumer]


def default_route(fqdn: str, port: int) -> Route:
    cluster = outbound_cluster(port, None, fqdn)
    return Route(
        name="default", route=RouteAction(destinations=[WeightedCluster(cluster=cluster, weight=100)])
    )


def outbound_clusters(comp: Compilation) -> list[Cluster]:
    """The clusters the outbound routes asked for, sorted by name."""
    return [_cluster(comp, name, comp.clusters[name]) for name in sorted(comp.clusters)]


def _cluster(comp: Compilation, name: str, request: ClusterRequest) -> Cluster:
    service = comp.service(request.host)
    port = service.port(request.port) if service is not None else None
    if service is None or port is None:
        return Cluster(name=name, service=request.host, default_retry=default_retry_policy())
    rule = comp.rule(service)
    policy = rule.policy(request.port, request.subset) if rule is not None else Policy()
    settings = cluster_settings(policy, comp.warnings)
    endpoints = list(port.endpoints)
    if request.subset is not None:
        subset = rule.subset(request.subset) if rule is not None else None
        endpoints = (
            [e for e in endpoints if labels_match(subset.labels, e.labels)] if subset is not None else []
        )
    mesh = comp.inputs.mesh
    tls = None
    if mesh.mtls_enabled:
        endpoints, tls = upstream_tls(policy.tls, endpoints, service, mesh.trust_domain, comp.warnings)
    return Cluster(
        name=name,
        service=service.fqdn,
        protocol=Protocol.HTTP if port.protocol == "http" else Protocol.TCP,
        lb_policy=settings.lb_policy,
        consistent_hash=settings.consistent_hash,
        limits=settings.limits,
        outlier_detection=settings.outlier_detection,
        retry_budget=settings.retry_budget,
        default_retry=settings.default_retry,
        endpoints=endpoints,
        tls=tls,
    )
