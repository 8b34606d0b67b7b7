"""``MeshInputs``: everything every proxy's compilation needs, indexed once per resource/registry change.

``MeshInputs.build(resources, workloads, mesh)`` resolves what does not depend on the proxy —
services and their endpoints, which VirtualServices, HTTPRoutes and TrafficSplits name which
service, DestinationRules by namespace, the services that select workloads and, per workload, the
services selecting it (selectors are resolved through an index of the workloads by label, not
matched against every workload), PeerAuthentications by level (with mutual TLS on) — so that
compiling a snapshot per proxy is a walk over prepared tables. Problems found while building (a named
targetPort, a VirtualService host that names no service, a TCP route) are in ``warnings``.

It also remembers the outbound half of each compilation by namespace and the proxy labels that
can change it (those some ``sourceLabels`` match or DestinationRule ``workloadSelector`` names):
usually every proxy of a namespace shares one. The memo never changes a result, only how fast it
comes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from loom.api import Resource
from loom.api.resources.gateway import HTTPRouteSpec
from loom.api.resources.istio_networking import DestinationRuleSpec, VirtualServiceSpec
from loom.api.resources.istio_security import PeerAuthenticationSpec
from loom.api.resources.smi import TrafficSplitSpec
from loom.controlplane.compiler.authorization import AuthorizationPolicies
from loom.controlplane.compiler.destination_rules import Rule, index_rules
from loom.controlplane.compiler.diagnostics import CompileWarning, Warnings
from loom.controlplane.compiler.model import Member, Service
from loom.controlplane.compiler.mtls import AutoMtls
from loom.controlplane.compiler.names import (
    MESH_GATEWAY,
    host_match,
    labels_match,
    resolve_host,
    service_fqdn,
)
from loom.controlplane.compiler.peer_authentication import PeerAuthentications
from loom.controlplane.compiler.request_authentication import RequestAuthentications
from loom.controlplane.compiler.services import build_services, by_namespace, label_indexes, members
from loom.controlplane.compiler.settings import MeshSettings, source_order, with_trust_domain
from loom.controlplane.compiler.tracing import TracingPolicies
from loom.controlplane.compiler.virtual_ips import service_virtual_ips, with_virtual_ips
from loom.controlplane.workloads import Workload


@dataclass(frozen=True, slots=True)
class VirtualServiceEntry:
    resource: Resource
    spec: VirtualServiceSpec
    hosts: tuple[str, ...]
    """``spec.hosts`` resolved relative to the VirtualService's namespace."""


@dataclass(frozen=True, slots=True)
class VirtualServiceClaim:
    """A VirtualService whose hosts cover a service; ``rank`` orders the claims (lowest wins)."""

    rank: tuple[Any, ...]
    entry: VirtualServiceEntry


@dataclass(frozen=True, slots=True)
class RouteAttachment:
    """An HTTPRoute attached to a service by one of its ``parentRefs`` (GAMMA)."""

    resource: Resource
    spec: HTTPRouteSpec
    parent_index: int
    port: int | None
    """The service port the parentRef names (``port`` or ``sectionName``), or None for all."""
    consumer: bool
    """True when the route lives in another namespace than the service: it then applies only to
    proxies of its own namespace (a consumer route), and before the service's own routes there."""


@dataclass(frozen=True, eq=False)
class MeshInputs:
    mesh: MeshSettings
    services: tuple[Service, ...]
    """Sorted by FQDN."""
    services_by_host: Mapping[str, Service]
    virtual_services: Mapping[str, tuple[VirtualServiceClaim, ...]]
    """Service FQDN → the VirtualServices that claim it, best first."""
    http_routes: Mapping[str, tuple[RouteAttachment, ...]]
    """Service FQDN → attached HTTPRoutes, in source order."""
    traffic_splits: Mapping[str, tuple[Resource, ...]]
    """Apex service FQDN → TrafficSplits, in source order."""
    destination_rules: Mapping[str, tuple[Rule, ...]]
    """Namespace → DestinationRules, in source order."""
    members: Mapping[str, tuple[Member, ...]]
    """Namespace → workloads (registered and WorkloadEntries), by name."""
    selecting: Mapping[str, tuple[Service, ...]]
    """Namespace → the services there that select workloads (what inbound listeners serve)."""
    members_by_key: Mapping[tuple[str, str], Member] = field(default_factory=dict)
    """Member key (namespace, name) → the member (``members``, by key)."""
    selected_by: Mapping[tuple[str, str], tuple[Service, ...]] = field(default_factory=dict)
    """Member key (namespace, name) → the services of ``selecting`` whose selector its labels match,
    in the same order; a member no service selects is absent."""
    wildcard_services: tuple[Service, ...] = ()
    """Services named by a wildcard (``*.example.com`` ServiceEntries), longest name first."""
    label_keys: frozenset[str] = frozenset()
    """The label keys the outbound side depends on (``sourceLabels``, DestinationRule selectors)."""
    peer_authentications: PeerAuthentications = field(default_factory=PeerAuthentications)
    """The PeerAuthentications by level (empty while ``mesh.mtls_enabled`` is off)."""
    request_authentications: RequestAuthentications = field(default_factory=RequestAuthentications)
    """The RequestAuthentications by namespace, with the key sets fetched from their ``jwksUri``."""
    authorization: AuthorizationPolicies = field(default_factory=AuthorizationPolicies)
    """The AuthorizationPolicies sidecars enforce, translated; ``for_workload`` selects."""
    tracing: TracingPolicies = field(default_factory=TracingPolicies)
    """Telemetry ``tracing`` by level, over the mesh configuration's; ``for_workload`` resolves."""
    warnings: tuple[CompileWarning, ...] = ()
    _memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(
        cls,
        resources: Sequence[Resource],
        workloads: Sequence[Workload],
        mesh: MeshSettings | None = None,
        *,
        mtls_enabled: bool | None = None,
        trust_domain: str | None = None,
        jwks: Mapping[str, str] | None = None,
        jwks_errors: Mapping[str, str] | None = None,
        service_cidr: str | None = None,
    ) -> MeshInputs:
        """Index ``resources`` and ``workloads``. ``mesh`` defaults to the settings of the first
        IstioOperator among ``resources`` (or Loom's defaults without one); ``mtls_enabled``, when
        given, replaces the settings' own (``MeshSettings.mtls_enabled``), and so does
        ``trust_domain``, the control plane's (its CA's): a ``meshConfig.trustDomain`` that differs is
        overruled with a warning (``settings.with_trust_domain``). ``jwks`` and ``jwks_errors`` are the
        key sets fetched from RequestAuthentication ``jwksUri``s and why the last fetch of a URI failed
        (``loom.controlplane.jwks.JwksCache``). ``service_cidr``, the control plane's
        (``--service-cidr``): each v1 Service without an address of its own gets a virtual IP of it
        (``virtual_ips.service_virtual_ips``) that its outbound virtual hosts answer (a CIDR too small
        for them all gives none, with a warning); None: none."""
        warnings = Warnings()
        settings = mesh if mesh is not None else MeshSettings.from_resources(resources, warnings)
        if mtls_enabled is not None and mtls_enabled != settings.mtls_enabled:
            settings = replace(settings, mtls_enabled=mtls_enabled)
        if trust_domain is not None:
            settings = with_trust_domain(settings, trust_domain, resources, warnings)
        peers = (
            PeerAuthentications.build(resources, settings.root_namespace, warnings)
            if settings.mtls_enabled
            else PeerAuthentications()
        )
        auto_mtls = AutoMtls(peers) if settings.mtls_enabled and settings.auto_mtls else None
        grouped = by_namespace(members(resources, workloads, warnings))
        indexes = label_indexes(grouped)
        services = build_services(resources, grouped, settings, warnings, indexes, auto_mtls)
        if service_cidr is not None:
            try:
                services = with_virtual_ips(services, service_virtual_ips(resources, service_cidr))
            except ValueError as exc:  # too small for the services: none gets a virtual IP
                warnings.add(f"{exc}; no Service gets a virtual IP")
        by_host = {service.fqdn: service for service in services}
        _report_tcp_ports(services, warnings)
        _report_security(resources, warnings, settings.mtls_enabled)
        selecting: dict[str, list[Service]] = defaultdict(list)
        selected_by: dict[tuple[str, str], list[Service]] = defaultdict(list)
        for service in services:
            if service.selector is not None:
                selecting[service.namespace].append(service)
                index = indexes.get(service.namespace)
                for member in index.select(service.selector) if index is not None else ():
                    selected_by[member.workload.key].append(service)
        return cls(
            mesh=settings,
            services=tuple(services),
            services_by_host=by_host,
            virtual_services=_index_virtual_services(resources, services, settings, warnings),
            http_routes=_index_http_routes(resources, by_host, settings, warnings),
            traffic_splits=_index_traffic_splits(resources, by_host, settings, warnings),
            destination_rules=index_rules(resources, settings.cluster_domain, by_host),
            members=grouped,
            members_by_key={m.workload.key: m for group in grouped.values() for m in group},
            selecting={ns: tuple(found) for ns, found in sorted(selecting.items())},
            selected_by={key: tuple(found) for key, found in selected_by.items()},
            wildcard_services=tuple(
                sorted((s for s in services if s.fqdn.startswith("*")), key=lambda s: (-len(s.fqdn), s.fqdn))
            ),
            label_keys=_label_keys(resources),
            peer_authentications=peers,
            request_authentications=RequestAuthentications.build(
                resources, settings.root_namespace, warnings, jwks, jwks_errors
            ),
            authorization=AuthorizationPolicies.build(resources, settings.root_namespace, warnings),
            tracing=TracingPolicies.build(resources, settings.tracing, settings.root_namespace, warnings),
            warnings=warnings.result(),
        )

    def selecting_workload(self, workload: Workload) -> tuple[Service, ...]:
        """The services of ``selecting`` (in its order) whose selector ``workload``'s labels match.

        Looked up in ``selected_by`` when ``workload`` is the member indexed under its key (or has
        its labels); matched service by service otherwise (a workload compiled without being
        registered, or registered with other labels)."""
        member = self.members_by_key.get(workload.key)
        if member is not None and (member.workload is workload or member.workload.labels == workload.labels):
            return self.selected_by.get(workload.key, ())
        return tuple(
            service
            for service in self.selecting.get(workload.namespace, ())
            if service.selector is not None and labels_match(service.selector, workload.labels)
        )

    def memo(self, key: Any) -> Any:
        return self._memo.get(key)

    def remember(self, key: Any, value: Any) -> None:
        self._memo[key] = value


def _index_virtual_services(
    resources: Sequence[Resource], services: Sequence[Service], mesh: MeshSettings, warnings: Warnings
) -> dict[str, tuple[VirtualServiceClaim, ...]]:
    known = {service.fqdn for service in services}
    claims: dict[str, list[VirtualServiceClaim]] = defaultdict(list)
    for order, resource in enumerate(sorted(resources, key=source_order)):
        spec = resource.spec
        if not isinstance(spec, VirtualServiceSpec):
            continue
        if spec.gateways and MESH_GATEWAY not in spec.gateways:
            continue  # bound to gateways only: not the sidecars' business
        hosts = tuple(resolve_host(h, resource.namespace, mesh.cluster_domain, known) for h in spec.hosts)
        entry = VirtualServiceEntry(resource, spec, hosts)
        if spec.tcp:
            warnings.add(
                "TCP routes are not supported by the HTTP outbound listener yet; ignored",
                resource,
                "spec.tcp",
            )
        if spec.tls:
            warnings.add(
                "TLS routes are not supported by the HTTP outbound listener yet; ignored",
                resource,
                "spec.tls",
            )
        if not spec.http:
            continue
        for h, host in enumerate(hosts):
            matched = False
            for service in services:
                specificity = host_match(host, service.fqdn)
                if specificity is not None:
                    matched = True
                    claims[service.fqdn].append(VirtualServiceClaim((specificity, order, h), entry))
            if not matched:
                warnings.add(
                    f"host {spec.hosts[h]!r} ({host}) names no known service; its routes are not used",
                    resource,
                    f"spec.hosts[{h}]",
                )
    return {fqdn: tuple(sorted(found, key=lambda c: c.rank)) for fqdn, found in sorted(claims.items())}


def _is_service_ref(group: str | None, kind: str | None) -> bool:
    """A parentRef naming a Service (GAMMA writes ``group: ""``; an omitted group is read the same)."""
    return kind == "Service" and group in (None, "", "core")


def _index_http_routes(
    resources: Sequence[Resource], by_host: Mapping[str, Service], mesh: MeshSettings, warnings: Warnings
) -> dict[str, tuple[RouteAttachment, ...]]:
    attached: dict[str, list[RouteAttachment]] = defaultdict(list)
    for resource in sorted(resources, key=source_order):
        spec = resource.spec
        if not isinstance(spec, HTTPRouteSpec):
            continue
        for i, parent in enumerate(spec.parent_refs):
            if not _is_service_ref(parent.group, parent.kind):
                continue  # a Gateway parent: not the mesh's
            namespace = parent.namespace or resource.namespace
            fqdn = service_fqdn(parent.name, namespace, mesh.cluster_domain)
            service = by_host.get(fqdn)
            path = f"spec.parentRefs[{i}]"
            if service is None:
                warnings.add(f"parentRef names no known Service ({fqdn}); not attached", resource, path)
                continue
            port = parent.port
            if parent.section_name is not None:
                named = [p.number for p in service.ports if p.name == parent.section_name]
                if not named:
                    warnings.add(
                        f"{fqdn} has no port named {parent.section_name!r}; not attached",
                        resource,
                        f"{path}.sectionName",
                    )
                    continue
                port = named[0]
            consumer = namespace != resource.namespace
            attached[fqdn].append(RouteAttachment(resource, spec, i, port, consumer))
    return {fqdn: tuple(found) for fqdn, found in sorted(attached.items())}


def _index_traffic_splits(
    resources: Sequence[Resource], by_host: Mapping[str, Service], mesh: MeshSettings, warnings: Warnings
) -> dict[str, tuple[Resource, ...]]:
    splits: dict[str, list[Resource]] = defaultdict(list)
    for resource in sorted(resources, key=source_order):
        spec = resource.spec
        if not isinstance(spec, TrafficSplitSpec):
            continue
        fqdn = service_fqdn(spec.service, resource.namespace, mesh.cluster_domain)
        if fqdn not in by_host:
            warnings.add(
                f"no Service {spec.service!r} in namespace {resource.namespace}; not used",
                resource,
                "spec.service",
            )
            continue
        splits[fqdn].append(resource)
    return {fqdn: tuple(found) for fqdn, found in sorted(splits.items())}


def _label_keys(resources: Sequence[Resource]) -> frozenset[str]:
    keys: set[str] = set()
    for resource in resources:
        spec = resource.spec
        if isinstance(spec, VirtualServiceSpec):
            for rule in spec.http:
                for match in rule.match:
                    keys.update(match.source_labels)
        elif isinstance(spec, DestinationRuleSpec) and spec.workload_selector is not None:
            keys.update(spec.workload_selector.match_labels)
    return frozenset(keys)


def _report_tcp_ports(services: Sequence[Service], warnings: Warnings) -> None:
    for service in services:
        for port in service.ports:
            if port.protocol == "tcp":
                warnings.add(
                    f"port {port.number} ({port.name or 'unnamed'}) of {service.fqdn} is not HTTP; the "
                    "outbound listener carries HTTP only, so it gets no route (inbound: carried as TCP)",
                    service.resource,
                )


def _report_security(resources: Sequence[Resource], warnings: Warnings, mtls_enabled: bool) -> None:
    kinds: tuple[type, ...] = () if mtls_enabled else (PeerAuthenticationSpec,)
    for resource in sorted(resources, key=source_order):
        if isinstance(resource.spec, kinds):
            warnings.add(
                f"{resource.kind} is not enforced by the proxies yet (mTLS comes later)",
                resource,
            )
