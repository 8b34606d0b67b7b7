"""The compiler's own view of the mesh: services with resolved ports and endpoints, and the workloads
they select. Built once per resource/registry change (``MeshInputs.build``), shared by every proxy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from loom.api import Resource
from loom.controlplane.workloads import Workload
from loom.snapshot.model import Endpoint

PortProtocol = Literal["http", "tcp"]

_EMPTY: Mapping[str, int] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Member:
    """A workload a service may select: one the registry knows, or a WorkloadEntry."""

    workload: Workload
    port_map: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    """A WorkloadEntry's ``ports``: service port name → the port this workload listens on."""
    weight: int = 1

    def port_for(self, port_name: str | None, target_port: int) -> int:
        if port_name is not None and port_name in self.port_map:
            return self.port_map[port_name]
        return self.workload.endpoint_port(target_port)

    def endpoint(self, port: int, *, mtls: bool = False) -> Endpoint:
        w = self.workload
        return Endpoint(
            address=w.address,
            port=port,
            weight=max(self.weight, 1),
            labels=dict(sorted(w.labels.items())),
            workload=w.name,
            namespace=w.namespace,
            service_account=w.service_account,
            mtls=mtls,
        )


@dataclass(frozen=True, slots=True)
class ServicePort:
    number: int
    name: str | None
    target_port: int
    """The port the workloads' app listens on (a sidecar fronts it with its inbound listener)."""
    protocol: PortProtocol
    endpoints: tuple[Endpoint, ...] = ()
    """Every endpoint the service has on this port, sorted; subsets filter these by labels."""


@dataclass(frozen=True, slots=True)
class Service:
    """A Kubernetes Service, or one host of a ServiceEntry."""

    fqdn: str
    """``name.ns.svc.<cluster domain>``, or the ServiceEntry host as written (lower-cased)."""
    namespace: str
    resource: Resource
    ports: tuple[ServicePort, ...]
    addresses: tuple[str, ...] = ()
    """Virtual IPs (``clusterIP``, ServiceEntry ``addresses``) that also name the service."""
    selector: Mapping[str, str] | None = None
    """Labels of the workloads (in ``namespace``) that serve it; None when it selects none."""
    export_to: tuple[str, ...] = ()
    subject_alt_names: tuple[str, ...] = ()
    """A ServiceEntry's ``subjectAltNames``: identities its servers may also prove (mutual TLS)."""

    def port(self, number: int) -> ServicePort | None:
        for port in self.ports:
            if port.number == number:
                return port
        return None
