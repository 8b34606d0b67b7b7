"""``Compilation``: the state of compiling one proxy's outbound side — the proxy, the clusters its routes
have asked for so far, the DestinationRules looked up, and the warnings found."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from loom.api import Resource
from loom.controlplane.compiler.destination_rules import MergedRule, find_rule
from loom.controlplane.compiler.diagnostics import Warnings
from loom.controlplane.compiler.inputs import MeshInputs
from loom.controlplane.compiler.model import Service
from loom.controlplane.compiler.names import exported_to, host_match, outbound_cluster


@dataclass(frozen=True, slots=True)
class ClusterRequest:
    host: str
    port: int
    subset: str | None


@dataclass
class Compilation:
    inputs: MeshInputs
    namespace: str
    """The proxy's namespace: decides visibility (exportTo) and which DestinationRule applies."""
    labels: Mapping[str, str]
    """The proxy's labels: decide ``sourceLabels`` matches and selector-bound DestinationRules."""
    warnings: Warnings = field(default_factory=Warnings)
    clusters: dict[str, ClusterRequest] = field(default_factory=dict)
    _rules: dict[str, MergedRule | None] = field(default_factory=dict)

    def service(self, host: str) -> Service | None:
        """The service named ``host``, if there is one and it is exported to this proxy's namespace."""
        service = self.inputs.services_by_host.get(host)
        if service is None or not self.visible(service):
            return None
        return service

    def visible(self, service: Service) -> bool:
        return exported_to(service.export_to, service.namespace, self.namespace)

    def rule(self, service: Service) -> MergedRule | None:
        """The DestinationRule (merged) that applies to ``service`` for this proxy."""
        if service.fqdn not in self._rules:
            self._rules[service.fqdn] = find_rule(
                self.inputs.destination_rules,
                self.inputs.mesh.root_namespace,
                self.namespace,
                self.labels,
                service,
                self.warnings,
            )
        return self._rules[service.fqdn]

    def cluster(
        self,
        host: str,
        port: int | None,
        subset: str | None,
        *,
        fallback_port: int,
        resource: Resource,
        path: str,
    ) -> str:
        """The name of the cluster for ``host`` (resolved), ``port`` and ``subset``; asks for it to be built.

        A host no service is named after may fall under a wildcard ServiceEntry host
        (``api.example.com`` under ``*.example.com``, the longest wildcard first): its cluster is
        that host's. Without a port, a service with one port uses it, else ``fallback_port`` (the
        port of the virtual host being compiled), as Istio does. A reference to an unknown host,
        port or subset still gets a cluster — with no endpoints, so requests to it fail with 503 as
        in Istio — and a warning.
        """
        service = self.service(host)
        if service is None and host not in self.inputs.services_by_host:
            for wildcard in self.inputs.wildcard_services:
                if host_match(wildcard.fqdn, host) is not None and self.visible(wildcard):
                    service, host = wildcard, wildcard.fqdn
                    break
        if port is None:
            port = (
                service.ports[0].number if service is not None and len(service.ports) == 1 else fallback_port
            )
        if service is None:
            self.warnings.add(
                f"no service {host} is known to (or exported to) namespace {self.namespace}; "
                "requests routed to it fail with 503",
                resource,
                path,
            )
        elif service.port(port) is None:
            ports = ", ".join(str(p.number) for p in service.ports) or "none"
            self.warnings.add(
                f"{host} has no port {port} (ports: {ports}); requests routed to it fail with 503",
                resource,
                path,
            )
        elif subset is not None:
            rule = self.rule(service)
            if rule is None or rule.subset(subset) is None:
                self.warnings.add(
                    f"subset {subset!r} of {host} is not defined by any DestinationRule that applies here; "
                    "requests routed to it fail with 503",
                    resource,
                    path,
                )
        name = outbound_cluster(port, subset, host)
        self.clusters.setdefault(name, ClusterRequest(host, port, subset))
        return name
