"""An SMI TrafficSplit → one route of the apex service's virtual host, split over the backends' clusters.

``spec.service`` names the apex Service of the split's namespace; each backend is a Service of the
same namespace, reached on the same port number as the apex port (or on its only port). Weights
are Kubernetes quantities (``90m``/``10m``) turned into integers with the same ratio (see
``integer_weights``). ``matches`` (HTTPRouteGroups) are not supported: the split applies to every
request, with a warning. When several splits name one service, the first (by source) is used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal

from loom.api import Resource
from loom.api.resources.smi import TrafficSplitSpec
from loom.controlplane.compiler.context import Compilation
from loom.controlplane.compiler.names import service_fqdn
from loom.snapshot.model import Route, RouteAction, WeightedCluster

WEIGHT_SCALE = 10_000


def integer_weights(quantities: Sequence[Decimal]) -> list[int] | None:
    """Integers in the ratio of ``quantities``; None when they are all zero.

    Exact when it can be: ``90m, 10m`` → ``90, 10`` (the smallest integers in that ratio, scaled up
    to a total of 100 or 10000 when that stays exact); otherwise shares of 10000, rounded, with
    every positive weight kept at least 1.
    """
    total = sum(quantities, Decimal(0))
    if total <= 0:
        return None
    exponent = min(min(int(q.as_tuple().exponent) for q in quantities if q > 0), 0)
    scaled = [int(q.scaleb(-exponent)) for q in quantities]
    divisor = math.gcd(*scaled)
    reduced = [s // divisor for s in scaled]
    reduced_total = sum(reduced)
    for target in (100, WEIGHT_SCALE):
        if target % reduced_total == 0:
            return [r * (target // reduced_total) for r in reduced]
    if reduced_total <= WEIGHT_SCALE:
        return reduced
    return [0 if q == 0 else max(1, round(q / total * WEIGHT_SCALE)) for q in quantities]


def split_route(comp: Compilation, splits: Sequence[Resource], port: int) -> Route | None:
    resource = splits[0]
    for other in splits[1:]:
        comp.warnings.add(
            f"{resource.ref} ({resource.source}) already splits this service; this TrafficSplit is ignored",
            other,
        )
    spec = resource.spec
    assert isinstance(spec, TrafficSplitSpec)
    if spec.matches:
        comp.warnings.add(
            "matches (HTTPRouteGroups) are not supported; the split applies to every request",
            resource,
            "spec.matches",
        )
    weights = integer_weights([backend.weight for backend in spec.backends])
    if weights is None:
        comp.warnings.add("every backend has weight 0; the split is not used", resource, "spec.backends")
        return None
    destinations = []
    for i, (backend, weight) in enumerate(zip(spec.backends, weights, strict=True)):
        fqdn = service_fqdn(backend.service, resource.namespace, comp.inputs.mesh.cluster_domain)
        service = comp.service(fqdn)
        number = port
        if service is not None and service.port(port) is None and len(service.ports) == 1:
            number = service.ports[0].number
        cluster = comp.cluster(
            fqdn, number, None, fallback_port=port, resource=resource, path=f"spec.backends[{i}].service"
        )
        destinations.append(WeightedCluster(cluster=cluster, weight=weight))
    return Route(name=f"{resource.namespace}.{resource.name}", route=RouteAction(destinations=destinations))
