"""Where routes send traffic (``targets``) and which hosts routing resources take over (``claims``),
across the three routing APIs, with the field path of each.

- VirtualService: targets are ``http[].route[].destination``, ``http[].mirror``,
  ``http[].mirrors[].destination``, ``tcp[].route[]`` and ``tls[].route[]``; claims are its ``hosts``
  when it applies to sidecars (no ``gateways``, or ``mesh`` among them).
- HTTPRoute: targets are ``rules[].backendRefs[]`` and RequestMirror filters (Services only); claims
  are its ``parentRefs[]`` of kind Service (GAMMA).
- TrafficSplit: targets are ``backends[].service``; the claim is ``service`` (both name Services of
  the TrafficSplit's namespace).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from loom.analyze.context import Context
from loom.api import Resource
from loom.api.resources.gateway import BackendObjectReference, HTTPBackendRef, HTTPRouteFilter, HTTPRouteSpec
from loom.api.resources.istio_networking import Destination, VirtualServiceSpec
from loom.api.resources.smi import TrafficSplitSpec

MESH_GATEWAY = "mesh"


@dataclass(frozen=True, slots=True)
class Target:
    """One destination a route sends (or mirrors) requests to."""

    resource: Resource
    path: str
    """The field naming the host: ``spec.http[0].route[1].destination.host``, ``spec.backends[0].service``."""
    written: str
    host: str
    """The resolved host."""
    rule: str
    """The rule it belongs to: ``spec.http[0]``, ``spec.rules[1]``; ``spec`` for a TrafficSplit."""
    subset: str | None = None
    mirror: bool = False

    @property
    def subset_path(self) -> str:
        return self.path.rsplit(".", 1)[0] + ".subset"


@dataclass(frozen=True, slots=True)
class Claim:
    """A routing resource taking over the traffic sent to ``host``."""

    resource: Resource
    path: str
    written: str
    host: str


def targets(ctx: Context) -> Iterator[Target]:
    """Every route destination and mirror of every routing resource, in source order."""
    for resource in ctx.resources:
        spec = resource.spec
        if isinstance(spec, VirtualServiceSpec):
            yield from _virtual_service(ctx, resource, spec)
        elif isinstance(spec, HTTPRouteSpec):
            yield from _http_route(ctx, resource, spec)
        elif isinstance(spec, TrafficSplitSpec):
            for j, backend in enumerate(spec.backends):
                host = ctx.service_host(backend.service, resource.namespace)
                yield Target(resource, f"spec.backends[{j}].service", backend.service, host, "spec")


def _virtual_service(ctx: Context, resource: Resource, spec: VirtualServiceSpec) -> Iterator[Target]:
    def target(destination: Destination, path: str, rule: str, mirror: bool = False) -> Target:
        host = ctx.resolve(destination.host, resource.namespace)
        return Target(resource, f"{path}.host", destination.host, host, rule, destination.subset, mirror)

    for i, http in enumerate(spec.http):
        rule = f"spec.http[{i}]"
        for j, route in enumerate(http.route):
            yield target(route.destination, f"{rule}.route[{j}].destination", rule)
        if http.mirror is not None:
            yield target(http.mirror, f"{rule}.mirror", rule, mirror=True)
        for k, policy in enumerate(http.mirrors):
            yield target(policy.destination, f"{rule}.mirrors[{k}].destination", rule, mirror=True)
    for section, rules in (("tcp", spec.tcp), ("tls", spec.tls)):
        for i, l4 in enumerate(rules):
            rule = f"spec.{section}[{i}]"
            for j, route in enumerate(l4.route):
                yield target(route.destination, f"{rule}.route[{j}].destination", rule)


def _http_route(ctx: Context, resource: Resource, spec: HTTPRouteSpec) -> Iterator[Target]:
    for i, rule in enumerate(spec.rules):
        base = f"spec.rules[{i}]"
        for j, ref in enumerate(rule.backend_refs):
            path = f"{base}.backendRefs[{j}]"
            found = _service_ref(ctx, resource, ref, path, base)
            if found is not None:
                yield found
            yield from _mirrors(ctx, resource, ref.filters, f"{path}.filters", base)
        yield from _mirrors(ctx, resource, rule.filters, f"{base}.filters", base)


def _mirrors(
    ctx: Context, resource: Resource, filters: tuple[HTTPRouteFilter, ...], path: str, rule: str
) -> Iterator[Target]:
    for k, item in enumerate(filters):
        if item.request_mirror is not None:
            ref = item.request_mirror.backend_ref
            found = _service_ref(
                ctx, resource, ref, f"{path}[{k}].requestMirror.backendRef", rule, mirror=True
            )
            if found is not None:
                yield found


def _service_ref(
    ctx: Context,
    resource: Resource,
    ref: BackendObjectReference | HTTPBackendRef,
    path: str,
    rule: str,
    *,
    mirror: bool = False,
) -> Target | None:
    """A Gateway API reference to a core Service (other kinds, e.g. ServiceImport, are skipped)."""
    if ref.group not in (None, "", "core") or ref.kind not in (None, "Service"):
        return None
    host = ctx.service_host(ref.name, ref.namespace or resource.namespace)
    return Target(resource, f"{path}.name", ref.name, host, rule, mirror=mirror)


def claims(ctx: Context) -> Iterator[Claim]:
    """Every (resource, host) pair where a routing resource takes over a host's traffic, in source order."""
    for resource in ctx.resources:
        spec = resource.spec
        if isinstance(spec, VirtualServiceSpec):
            if spec.gateways and MESH_GATEWAY not in spec.gateways:
                continue  # bound to ingress gateways only: not the sidecars' routing
            for i, host in enumerate(spec.hosts):
                yield Claim(resource, f"spec.hosts[{i}]", host, ctx.resolve(host, resource.namespace))
        elif isinstance(spec, HTTPRouteSpec):
            for i, parent in enumerate(spec.parent_refs):
                if parent.kind == "Service" and parent.group in (None, "", "core"):
                    namespace = parent.namespace or resource.namespace
                    host = ctx.service_host(parent.name, namespace)
                    yield Claim(resource, f"spec.parentRefs[{i}].name", parent.name, host)
        elif isinstance(spec, TrafficSplitSpec):
            host = ctx.service_host(spec.service, resource.namespace)
            yield Claim(resource, "spec.service", spec.service, host)
