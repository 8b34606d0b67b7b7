"""``Context``: the resources and workloads under analysis, indexed once for every analyzer.

Built by :meth:`Context.build`; frozen afterwards. It answers the questions several analyzers
ask: which services exist (``services_for``, ``is_known``), which workloads a service selects
(``members``), which DestinationRules apply to a host (``destination_rules``), what a written
host resolves to (``resolve``), and the mesh settings (root namespace, trust domain).
"""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from loom.analyze import hosts
from loom.analyze.workloads import WorkloadInfo
from loom.api import Resource, defaults
from loom.api.resources.base import ApiModel
from loom.api.resources.core import ServiceSpec
from loom.api.resources.istio_networking import DestinationRuleSpec, ServiceEntrySpec, WorkloadEntrySpec
from loom.api.resources.mesh import IstioOperatorSpec

SpecT = TypeVar("SpecT", bound=ApiModel)

CLUSTER_DOMAIN = "cluster.local"
"""Kubernetes' default cluster domain (an IstioOperator's ``values.global.proxy.clusterDomain``)."""


@dataclass(frozen=True, slots=True)
class Mesh:
    """Mesh-wide settings, from the first IstioOperator's ``meshConfig`` (by file order)."""

    root_namespace: str = defaults.ROOT_NAMESPACE
    trust_domain: str = defaults.TRUST_DOMAIN
    cluster_domain: str = CLUSTER_DOMAIN


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """A host some resource defines: a Kubernetes Service, a ServiceEntry host, or the DNS name a
    WorkloadEntry is reached at.

    ``selector`` picks workloads of the resource's namespace (None: it selects none, e.g. a Service
    without a selector or an external ServiceEntry); ``endpoints`` are workloads written inline
    (a ServiceEntry's ``endpoints``, the WorkloadEntry itself).
    """

    host: str
    resource: Resource
    selector: Mapping[str, str] | None = field(default=None, hash=False)
    endpoints: tuple[WorkloadInfo, ...] = ()


def source_order(resource: Resource) -> tuple[str, int, str, str, str]:
    """Where a resource was written (file, then document): what decides which of two conflicting
    resources wins, as the compiler decides it."""
    return (
        resource.source.file,
        resource.source.document_index,
        resource.kind,
        resource.namespace,
        resource.name,
    )


@dataclass(frozen=True)
class Context:
    resources: tuple[Resource, ...]
    """Every resource, in source order."""
    workloads: tuple[WorkloadInfo, ...]
    """Known workloads: those given, then WorkloadEntries (sorted by namespace and name)."""
    mesh: Mesh
    services: tuple[ServiceInfo, ...]
    _by_host: Mapping[str, tuple[ServiceInfo, ...]] = field(repr=False)
    _members: Mapping[ServiceInfo, tuple[WorkloadInfo, ...]] = field(repr=False)
    _services_of: Mapping[tuple[str, str], tuple[ServiceInfo, ...]] = field(repr=False)
    _rules: tuple[tuple[str, Resource, DestinationRuleSpec], ...] = field(repr=False)
    _by_label: Mapping[tuple[str, str], tuple[WorkloadInfo, ...]] = field(repr=False)

    @classmethod
    def build(cls, resources: Sequence[Resource], workloads: Sequence[WorkloadInfo] = ()) -> Context:
        ordered = tuple(sorted(resources, key=source_order))
        mesh = _mesh(ordered)
        known = _workloads(ordered, workloads)
        services = tuple(_services(ordered, mesh))
        by_host: dict[str, list[ServiceInfo]] = {}
        for service in services:
            by_host.setdefault(service.host, []).append(service)
        frozen = MappingProxyType({host: tuple(items) for host, items in by_host.items()})
        by_label: dict[tuple[str, str], list[WorkloadInfo]] = {}
        for workload in known:
            for item in workload.labels.items():
                by_label.setdefault(item, []).append(workload)
        label_index = MappingProxyType({item: tuple(found) for item, found in by_label.items()})
        members = {service: _members(service, known, label_index) for service in services}
        services_of: dict[tuple[str, str], list[ServiceInfo]] = {}
        for service, selected in members.items():
            for workload in selected:
                services_of.setdefault((workload.namespace, workload.name), []).append(service)
        rules = tuple(
            (hosts.resolve(spec.host, r.namespace, mesh.cluster_domain, frozen), r, spec)
            for r, spec in _of(ordered, DestinationRuleSpec)
        )
        return cls(
            ordered,
            known,
            mesh,
            services,
            frozen,
            MappingProxyType(members),
            MappingProxyType({key: tuple(items) for key, items in services_of.items()}),
            rules,
            label_index,
        )

    # --- resources -------------------------------------------------------------------------------

    def of(self, spec_type: type[SpecT]) -> Iterator[tuple[Resource, SpecT]]:
        """Every resource whose spec is a ``spec_type``, in source order, with its spec typed."""
        return _of(self.resources, spec_type)

    # --- hosts -----------------------------------------------------------------------------------

    def resolve(self, host: str, namespace: str) -> str:
        """``host`` as written in a resource of ``namespace``, resolved (see ``loom.analyze.hosts``)."""
        return hosts.resolve(host, namespace, self.mesh.cluster_domain, self._by_host)

    def service_host(self, name: str, namespace: str) -> str:
        """The FQDN of the Kubernetes Service ``name`` in ``namespace``."""
        return hosts.service_host(name, namespace, self.mesh.cluster_domain)

    def services_for(self, host: str) -> tuple[ServiceInfo, ...]:
        """The services defining ``host`` exactly; else those whose wildcard host covers it."""
        exact = self._by_host.get(host)
        if exact:
            return exact
        return tuple(s for s in self.services if hosts.is_wildcard(s.host) and hosts.covers(s.host, host))

    def is_known(self, host: str) -> bool:
        """Some service defines ``host`` (a wildcard on either side counts when they overlap)."""
        if host in self._by_host:
            return True
        return any(hosts.overlap(service.host, host) for service in self.services)

    def show(self, written: str, resolved: str) -> str:
        """``reviews (reviews.default.svc.cluster.local)``, or the name alone when it is written in full."""
        return written if written.lower().rstrip(".") == resolved else f"{written} ({resolved})"

    def suggest(self, resolved: str, namespace: str) -> str | None:
        """A known host the operator may have meant, written as a resource of ``namespace`` would
        write it: the same service name in another namespace, else a close spelling of the name."""
        name = resolved.split(".", 1)[0]
        local = f".{namespace}.svc.{self.mesh.cluster_domain}"
        known = sorted(self._by_host, key=lambda h: (not h.endswith(local), h))
        found = next((h for h in known if h.split(".", 1)[0] == name and h != resolved), None)
        if found is None:
            names = [h.split(".", 1)[0] for h in known]
            close = difflib.get_close_matches(name, names, n=1, cutoff=0.8)
            if not close:
                return None
            found = known[names.index(close[0])]
        return found[: -len(local)] if found.endswith(local) else hosts.short(found, self.mesh.cluster_domain)

    # --- workloads -------------------------------------------------------------------------------

    def select(self, labels: Mapping[str, str], namespace: str | None = None) -> tuple[WorkloadInfo, ...]:
        """The known workloads with every label of ``labels`` (all for none), in ``namespace`` if given."""
        return _select(self.workloads, self._by_label, labels, namespace)

    def members(self, service: ServiceInfo) -> tuple[WorkloadInfo, ...]:
        """The known workloads a service sends to: those its selector picks in its namespace, and
        the endpoints written inline."""
        return self._members.get(service, service.endpoints)

    def services_of(self, workload: WorkloadInfo) -> tuple[ServiceInfo, ...]:
        """The services that select ``workload``."""
        return self._services_of.get((workload.namespace, workload.name), ())

    # --- DestinationRules ------------------------------------------------------------------------

    def destination_rules(self, host: str) -> tuple[tuple[Resource, DestinationRuleSpec], ...]:
        """The DestinationRules for ``host``: those naming it exactly; else those whose wildcard host
        covers it (the most specific first)."""
        exact = tuple((r, spec) for h, r, spec in self._rules if h == host)
        if exact:
            return exact
        wild = [(h, r, spec) for h, r, spec in self._rules if hosts.is_wildcard(h) and hosts.covers(h, host)]
        wild.sort(key=lambda item: -len(item[0]))
        return tuple((r, spec) for _, r, spec in wild)

    def rule_host(self, resource: Resource) -> str:
        """The resolved host of a DestinationRule."""
        for h, r, _ in self._rules:
            if r is resource:
                return h
        raise KeyError(resource.ref)


def _of(resources: Sequence[Resource], spec_type: type[SpecT]) -> Iterator[tuple[Resource, SpecT]]:
    for resource in resources:
        if isinstance(resource.spec, spec_type):
            yield resource, resource.spec


def _mesh(resources: Sequence[Resource]) -> Mesh:
    for _, spec in _of(resources, IstioOperatorSpec):
        config = spec.mesh_config
        domain = _cluster_domain(spec.values) or CLUSTER_DOMAIN
        if config is None:
            return Mesh(cluster_domain=domain)
        return Mesh(
            root_namespace=config.root_namespace or defaults.ROOT_NAMESPACE,
            trust_domain=config.trust_domain or defaults.TRUST_DOMAIN,
            cluster_domain=domain,
        )
    return Mesh()


def _cluster_domain(values: Any) -> str | None:
    """``values.global.proxy.clusterDomain`` of an IstioOperator (the API leaves ``values`` untyped)."""
    node: Any = values
    for key in ("global", "proxy", "clusterDomain"):
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node.strip(".").lower() if isinstance(node, str) and node.strip(".") else None


def _workloads(resources: Sequence[Resource], given: Sequence[WorkloadInfo]) -> tuple[WorkloadInfo, ...]:
    found: dict[tuple[str, str], WorkloadInfo] = {}
    for workload in given:
        found.setdefault((workload.namespace, workload.name), workload)
    for resource, spec in _of(resources, WorkloadEntrySpec):
        found.setdefault((resource.namespace, resource.name), _entry_workload(resource, spec))
    return tuple(found[key] for key in sorted(found))


def _entry_workload(resource: Resource, spec: WorkloadEntrySpec, name: str | None = None) -> WorkloadInfo:
    return WorkloadInfo(
        namespace=resource.namespace,
        name=name or resource.name,
        labels=MappingProxyType(dict(spec.labels)),
        service_account=spec.service_account or "default",
        has_sidecar=False,
    )


def _members(
    service: ServiceInfo,
    workloads: Sequence[WorkloadInfo],
    by_label: Mapping[tuple[str, str], tuple[WorkloadInfo, ...]],
) -> tuple[WorkloadInfo, ...]:
    selected: tuple[WorkloadInfo, ...] = ()
    if service.selector:
        selected = _select(workloads, by_label, service.selector, service.resource.namespace)
    return selected + service.endpoints


def _select(
    workloads: Sequence[WorkloadInfo],
    by_label: Mapping[tuple[str, str], tuple[WorkloadInfo, ...]],
    labels: Mapping[str, str],
    namespace: str | None,
) -> tuple[WorkloadInfo, ...]:
    candidates: Sequence[WorkloadInfo] = workloads
    for item in labels.items():
        found = by_label.get(item, ())
        if len(found) < len(candidates):
            candidates = found
    return tuple(
        w for w in candidates if (namespace is None or w.namespace == namespace) and w.has_labels(labels)
    )


def _services(resources: Sequence[Resource], mesh: Mesh) -> Iterator[ServiceInfo]:
    for resource in resources:
        spec = resource.spec
        if isinstance(spec, ServiceSpec):
            selector = dict(spec.selector) if spec.selector and spec.type != "ExternalName" else None
            host = hosts.service_host(resource.name, resource.namespace, mesh.cluster_domain)
            yield ServiceInfo(host, resource, _frozen(selector))
        elif isinstance(spec, ServiceEntrySpec):
            selector = dict(spec.workload_selector.labels) if spec.workload_selector is not None else None
            endpoints = tuple(
                _entry_workload(resource, entry, f"{resource.name}/endpoints[{i}]")
                for i, entry in enumerate(spec.endpoints)
            )
            for host in spec.hosts:
                yield ServiceInfo(host.strip().lower().rstrip("."), resource, _frozen(selector), endpoints)
        elif isinstance(spec, WorkloadEntrySpec) and spec.address and _is_dns_name(spec.address):
            yield ServiceInfo(
                spec.address.lower().rstrip("."), resource, None, (_entry_workload(resource, spec),)
            )


def _frozen(selector: dict[str, str] | None) -> Mapping[str, str] | None:
    return None if selector is None else MappingProxyType(selector)


def _is_dns_name(address: str) -> bool:
    if address.startswith("unix://"):
        return False
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return True
    return False
