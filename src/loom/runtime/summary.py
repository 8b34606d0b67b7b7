"""What ``loom up`` prints once the mesh is ready: each Service with the workloads and endpoints
behind it and the mutual-TLS mode its namespace asks for."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from loom.api import Resource
from loom.api.resources.core import ServiceSpec
from loom.api.resources.istio_security import PeerAuthenticationSpec
from loom.runtime.state import MeshState

ROOT_NAMESPACE = "istio-system"


@dataclass(frozen=True)
class ServiceRow:
    namespace: str
    service: str
    ports: str
    workloads: str
    endpoints: int
    mtls: str


def service_rows(resources: Sequence[Resource], mesh: MeshState) -> list[ServiceRow]:
    rows = []
    for resource in resources:
        spec = resource.spec
        if not isinstance(spec, ServiceSpec):
            continue
        selected = [
            r
            for r in mesh.replicas
            if r.namespace == resource.namespace
            and spec.selector
            and all(r.labels.get(k) == v for k, v in spec.selector.items())
        ]
        workloads = sorted({r.workload for r in selected})
        ports = ", ".join(str(port.port) for port in spec.ports)
        serving = [r for r in selected if r.app_port]
        rows.append(
            ServiceRow(
                namespace=resource.namespace,
                service=resource.name,
                ports=ports or "-",
                workloads=", ".join(workloads) or "-",
                endpoints=len(serving),
                mtls=mtls_mode(resources, resource.namespace),
            )
        )
    return sorted(rows, key=lambda row: (row.namespace, row.service))


def mtls_mode(resources: Sequence[Resource], namespace: str) -> str:
    """The namespace-wide PeerAuthentication mode (else the mesh-wide one in istio-system), as
    sidecars enforce it inbound; PERMISSIVE when none is set (sidecars still talk mTLS to each
    other: auto mTLS)."""
    found: dict[str, str] = {}
    for resource in resources:
        spec = resource.spec
        if (
            isinstance(spec, PeerAuthenticationSpec)
            and spec.selector is None
            and spec.mtls
            and spec.mtls.mode not in (None, "UNSET")
        ):
            found[resource.namespace] = str(spec.mtls.mode)
    mode = found.get(namespace) or found.get(ROOT_NAMESPACE) or "PERMISSIVE"
    return f"mTLS {mode}"
