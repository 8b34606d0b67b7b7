"""Services and their endpoints, from Kubernetes Services, ServiceEntries and WorkloadEntries.

- A ``v1 Service`` is ``name.ns.svc.<cluster domain>``. Its endpoints on a port are the workloads
  of its namespace whose labels match its (non-empty) selector, at ``workload.endpoint_port(targetPort)``
  (the sidecar's inbound port, or the app port for a workload without a sidecar) — those whose
  sidecar reported them ready (a sidecar probes its app; ``Workload.ready``). ``targetPort``
  is a number, or absent (the service port). A *named* targetPort would need the pod's container
  ports, which the registry does not carry: the service port is used instead, with a warning.
  ``type: ExternalName`` has one endpoint, the external name, on the service port.
- A ``WorkloadEntry`` is a workload without a sidecar (a VM): address, labels, serviceAccount, and
  ``ports`` (service port name → its port). Services and ServiceEntries select it like a pod.
- A ``ServiceEntry`` adds a service per host (the host as written, lower-cased). Endpoints: the
  workloads its ``workloadSelector`` selects, else its ``endpoints``, else — for ``resolution`` DNS,
  DNS_ROUND_ROBIN or NONE — the host itself (resolved when the proxy connects).

Port protocols follow Istio's selection: ``appProtocol``, else the port name's prefix (``http``,
``http-web``, ``grpc``, ``tcp-db``, ...), else the ServiceEntry ``protocol``; unknown means HTTP
(the outbound listener speaks HTTP). Ports that are not HTTP are kept with protocol ``tcp``.

With mutual TLS on, each endpoint's ``mtls`` is decided here by auto mTLS (``mtls.AutoMtls``); a
DestinationRule ``tls`` may change it per cluster later (``mtls.upstream_tls``).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from loom.api import Resource
from loom.api.resources.core import ServiceSpec
from loom.api.resources.istio_networking import ServiceEntrySpec, WorkloadEntrySpec
from loom.controlplane.compiler.diagnostics import Warnings
from loom.controlplane.compiler.model import Member, PortProtocol, Service, ServicePort
from loom.controlplane.compiler.mtls import AutoMtls
from loom.controlplane.compiler.names import service_fqdn
from loom.controlplane.compiler.settings import MeshSettings, source_order
from loom.controlplane.workloads import Workload
from loom.snapshot.model import Endpoint

EXPORT_TO_ANNOTATION = "networking.istio.io/exportTo"

_HTTP_PROTOCOLS = frozenset(
    {"http", "http2", "grpc", "grpc-web", "h2c", "kubernetes.io/h2c", "kubernetes.io/ws", "ws"}
)
_TCP_PROTOCOLS = frozenset(
    {"tcp", "tls", "https", "mongo", "mysql", "redis", "udp", "sctp", "kubernetes.io/wss", "wss"}
)


def port_protocol(name: str | None, app_protocol: str | None, declared: str | None = None) -> PortProtocol:
    """Istio's protocol selection, reduced to what the proxy distinguishes: HTTP or opaque TCP."""
    for candidate in (app_protocol, (name or "").split("-", 1)[0] or None, declared):
        if candidate is None:
            continue
        lowered = candidate.lower()
        if lowered in _HTTP_PROTOCOLS:
            return "http"
        if lowered in _TCP_PROTOCOLS:
            return "tcp"
    return "http"


def members(resources: Sequence[Resource], workloads: Sequence[Workload], warnings: Warnings) -> list[Member]:
    """The registry's workloads and the WorkloadEntries, sorted by (namespace, name).

    A WorkloadEntry named like a registered workload is ignored (and reported)."""
    found: dict[tuple[str, str], Member] = {}
    for workload in workloads:
        found.setdefault(workload.key, Member(workload))
    for resource in sorted(resources, key=source_order):
        spec = resource.spec
        if not isinstance(spec, WorkloadEntrySpec):
            continue
        if spec.address is None:
            warnings.add(
                "a WorkloadEntry without an address cannot be reached; it is left out", resource, "spec"
            )
            continue
        workload = Workload(
            name=resource.name,
            namespace=resource.namespace,
            service_account=spec.service_account or "default",
            labels=MappingProxyType(dict(spec.labels)),
            address=spec.address,
            app_ports=tuple(sorted(set(spec.ports.values()))),
        )
        if workload.key in found:
            warnings.add(
                "a workload of this name is already registered; the WorkloadEntry is ignored", resource
            )
            continue
        found[workload.key] = Member(workload, MappingProxyType(dict(spec.ports)), spec.weight or 1)
    return [found[key] for key in sorted(found)]


@dataclass(frozen=True, slots=True)
class LabelIndex:
    """The members of one namespace, and for each ``(label key, value)`` the positions of those that
    carry it: a selector's members are the intersection of its pairs' (small) position sets, found
    without matching the selector against every member."""

    members: tuple[Member, ...]
    by_label: Mapping[tuple[str, str], frozenset[int]]

    @classmethod
    def build(cls, group: Sequence[Member]) -> LabelIndex:
        by_label: dict[tuple[str, str], set[int]] = defaultdict(set)
        for position, member in enumerate(group):
            for pair in member.workload.labels.items():
                by_label[pair].add(position)
        return cls(tuple(group), {pair: frozenset(found) for pair, found in by_label.items()})

    def select(self, selector: Mapping[str, str]) -> list[Member]:
        """The members whose labels ``selector`` matches (``labels_match``), in the members' order."""
        if not selector:
            return list(self.members)
        postings = []
        for pair in selector.items():
            found = self.by_label.get(pair)
            if not found:
                return []
            postings.append(found)
        if len(postings) == 1:
            positions: Iterable[int] = postings[0]
        else:
            postings.sort(key=len)
            positions = postings[0].intersection(*postings[1:])
        members = self.members
        return [members[position] for position in sorted(positions)]


def label_indexes(grouped: Mapping[str, Sequence[Member]]) -> dict[str, LabelIndex]:
    """A ``LabelIndex`` per namespace of ``grouped`` (``by_namespace``)."""
    return {namespace: LabelIndex.build(group) for namespace, group in grouped.items()}


def build_services(
    resources: Sequence[Resource],
    by_namespace: Mapping[str, Sequence[Member]],
    mesh: MeshSettings,
    warnings: Warnings,
    indexes: Mapping[str, LabelIndex] | None = None,
    auto_mtls: AutoMtls | None = None,
) -> list[Service]:
    """Every service, sorted by FQDN. When two resources define one name, the Service (then the
    earlier ServiceEntry) wins and the other is reported. ``indexes``: ``label_indexes(by_namespace)``,
    when the caller already has it. ``auto_mtls``: decides the endpoints' ``mtls`` (None: all plaintext)."""
    if indexes is None:
        indexes = label_indexes(by_namespace)
    ordered = sorted(resources, key=source_order)
    candidates: list[Service] = []
    for resource in ordered:
        if isinstance(resource.spec, ServiceSpec):
            candidates.extend(
                _kubernetes_service(resource, resource.spec, indexes, mesh, warnings, auto_mtls)
            )
    for resource in ordered:
        if isinstance(resource.spec, ServiceEntrySpec):
            candidates.extend(_service_entry(resource, resource.spec, indexes, warnings, auto_mtls))
    chosen: dict[str, Service] = {}
    for service in candidates:
        held = chosen.get(service.fqdn)
        if held is not None:
            warnings.add(
                f"{service.fqdn} is already defined by {held.resource.ref} ({held.resource.source}); "
                "ignored here",
                service.resource,
            )
            continue
        chosen[service.fqdn] = service
    return [chosen[fqdn] for fqdn in sorted(chosen)]


def _kubernetes_service(
    resource: Resource,
    spec: ServiceSpec,
    indexes: Mapping[str, LabelIndex],
    mesh: MeshSettings,
    warnings: Warnings,
    auto_mtls: AutoMtls | None,
) -> list[Service]:
    selector = dict(spec.selector)
    selected = _selected(indexes, resource.namespace, selector) if selector else []
    ports = []
    for i, sp in enumerate(spec.ports):
        path = f"spec.ports[{i}]"
        if sp.protocol in ("UDP", "SCTP"):
            warnings.add(f"{sp.protocol} ports are not proxied; port {sp.port} is left out", resource, path)
            continue
        target = sp.target_port
        if isinstance(target, str):
            warnings.add(
                f"named targetPort {target!r} cannot be resolved (the registry has no container port names); "
                f"using the service port {sp.port}",
                resource,
                f"{path}.targetPort",
            )
            target = None
        target_port = target if isinstance(target, int) else sp.port
        if spec.type == "ExternalName" and spec.external_name:
            endpoints: tuple[Endpoint, ...] = (
                Endpoint(address=spec.external_name, port=sp.port, namespace=resource.namespace),
            )
        else:
            endpoints = _endpoints(selected, sp.name, target_port, resource, path, warnings, auto_mtls)
        ports.append(
            ServicePort(sp.port, sp.name, target_port, port_protocol(sp.name, sp.app_protocol), endpoints)
        )
    addresses = tuple(
        a for a in dict.fromkeys((spec.cluster_ip, *spec.cluster_ips)) if a is not None and _is_ip(a)
    )
    export_to = tuple(
        part.strip() for part in resource.annotations.get(EXPORT_TO_ANNOTATION, "").split(",") if part.strip()
    )
    return [
        Service(
            fqdn=service_fqdn(resource.name, resource.namespace, mesh.cluster_domain),
            namespace=resource.namespace,
            resource=resource,
            ports=tuple(sorted(ports, key=lambda p: p.number)),
            addresses=addresses,
            selector=MappingProxyType(selector) if selector else None,
            export_to=export_to,
        )
    ]


def _service_entry(
    resource: Resource,
    spec: ServiceEntrySpec,
    indexes: Mapping[str, LabelIndex],
    warnings: Warnings,
    auto_mtls: AutoMtls | None,
) -> list[Service]:
    selector = dict(spec.workload_selector.labels) if spec.workload_selector is not None else None
    if spec.location == "MESH_EXTERNAL":
        auto_mtls = None  # Istio: no auto mTLS to a service outside the mesh
    selected = _selected(indexes, resource.namespace, selector) if selector is not None else []
    resolution = spec.resolution or "NONE"
    addresses = tuple(a for a in spec.addresses if _is_ip(a))
    services = []
    for h, host in enumerate(spec.hosts):
        fqdn = host.strip().lower().rstrip(".")
        ports = []
        for i, sp in enumerate(spec.ports):
            path = f"spec.ports[{i}]"
            target_port = sp.target_port or sp.number
            if selector is not None:
                endpoints = _endpoints(selected, sp.name, target_port, resource, path, warnings, auto_mtls)
            elif spec.endpoints:
                endpoints = _entry_endpoints(
                    resource, spec.endpoints, sp.name, target_port, warnings, auto_mtls
                )
            elif resolution in ("DNS", "DNS_ROUND_ROBIN", "NONE"):
                if fqdn.startswith("*"):
                    warnings.add(
                        f"the wildcard host {host!r} cannot be resolved to an address; it has no endpoints",
                        resource,
                        f"spec.hosts[{h}]",
                    )
                    endpoints = ()
                else:
                    endpoints = (Endpoint(address=fqdn, port=target_port, namespace=resource.namespace),)
            else:
                endpoints = ()
            protocol = port_protocol(sp.name, None, sp.protocol)
            ports.append(ServicePort(sp.number, sp.name, target_port, protocol, endpoints))
        services.append(
            Service(
                fqdn=fqdn,
                namespace=resource.namespace,
                resource=resource,
                ports=tuple(sorted(ports, key=lambda p: p.number)),
                addresses=addresses,
                selector=MappingProxyType(selector) if selector else None,
                export_to=tuple(spec.export_to),
                subject_alt_names=tuple(spec.subject_alt_names),
            )
        )
    return services


def _entry_endpoints(
    resource: Resource,
    entries: Sequence[WorkloadEntrySpec],
    port_name: str | None,
    target_port: int,
    warnings: Warnings,
    auto_mtls: AutoMtls | None,
) -> tuple[Endpoint, ...]:
    found = []
    for j, entry in enumerate(entries):
        path = f"spec.endpoints[{j}]"
        if entry.address is None or entry.address.startswith("unix://"):
            warnings.add("only network addresses can be endpoints; this one is left out", resource, path)
            continue
        port = entry.ports.get(port_name, target_port) if port_name is not None else target_port
        endpoint = Endpoint(
            address=entry.address,
            port=port,
            weight=max(entry.weight or 1, 1),
            labels=dict(sorted(entry.labels.items())),
            namespace=resource.namespace,
            service_account=entry.service_account or "unknown",
            mtls=auto_mtls is not None and auto_mtls.entry(resource.namespace, entry.labels, port),
        )
        found.append((endpoint, path))
    return _dedupe(found, resource, warnings)


def _selected(indexes: Mapping[str, LabelIndex], namespace: str, selector: Mapping[str, str]) -> list[Member]:
    """The members of ``namespace`` that ``selector`` selects, by name."""
    index = indexes.get(namespace)
    return index.select(selector) if index is not None else []


def _endpoints(
    selected: Iterable[Member],
    port_name: str | None,
    target_port: int,
    resource: Resource,
    path: str,
    warnings: Warnings,
    auto_mtls: AutoMtls | None,
) -> tuple[Endpoint, ...]:
    """The endpoints of ``selected`` for a service port named ``port_name`` with ``target_port``;
    a workload whose sidecar reported its app not ready (``Workload.ready``) is left out."""
    found = []
    for member in selected:
        if not member.workload.ready:
            continue
        port = member.port_for(port_name, target_port)
        mtls = auto_mtls is not None and auto_mtls.member(member, target_port, port)
        found.append((member.endpoint(port, mtls=mtls), path))
    return _dedupe(found, resource, warnings)


def _dedupe(
    found: list[tuple[Endpoint, str]], resource: Resource, warnings: Warnings
) -> tuple[Endpoint, ...]:
    """Sorted by address and port; an address:port listed twice is kept once (the first by name)."""
    kept: dict[tuple[str, int], Endpoint] = {}
    for endpoint, path in sorted(found, key=lambda item: _endpoint_key(item[0])):
        if not 0 < endpoint.port < 65536:
            warnings.add(
                f"endpoint {endpoint.workload} has no usable port ({endpoint.port}); left out", resource, path
            )
            continue
        key = (endpoint.address, endpoint.port)
        if key in kept:
            warnings.add(
                f"{endpoint.address}:{endpoint.port} is both {kept[key].workload} and {endpoint.workload}; "
                f"keeping {kept[key].workload}",
                resource,
                path,
            )
            continue
        kept[key] = endpoint
    return tuple(kept.values())


def _endpoint_key(endpoint: Endpoint) -> tuple[str, int, str, str]:
    return (endpoint.address, endpoint.port, endpoint.namespace, endpoint.workload)


def _is_ip(value: str) -> bool:
    """An IPv4 address: a virtual IP a virtual host can answer to (IPv6 ones are not listed)."""
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def by_namespace(all_members: Iterable[Member]) -> dict[str, tuple[Member, ...]]:
    grouped: dict[str, list[Member]] = defaultdict(list)
    for member in all_members:
        grouped[member.workload.namespace].append(member)
    return {namespace: tuple(group) for namespace, group in sorted(grouped.items())}
