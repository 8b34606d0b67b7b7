"""Workloads as the control plane knows them: what a sidecar registers, and what it stands for.

A workload is one running instance of an app. With a sidecar, peers reach it through the
sidecar's inbound listener (one per app port); the sidecar's outbound listener is where the
app sends its own requests. Workloads without a sidecar (a WorkloadEntry for a VM, or a plain
process) are reached directly on their app ports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class SidecarPorts:
    """Where a workload's sidecar listens (on ``Workload.address``, except admin: loopback)."""

    outbound: int
    """The outbound HTTP listener the app's requests come to (HTTP_PROXY, or iptables)."""
    inbound: Mapping[int, int] = field(default_factory=lambda: MappingProxyType({}))
    """App (target) port → the sidecar's inbound listener port that fronts it."""
    admin: int = 0
    transparent: bool = False
    """The app's traffic reaches the sidecar by iptables redirection, not ``HTTP_PROXY``: its
    outbound listener routes by each connection's original destination (``SO_ORIGINAL_DST``) and
    passes traffic for destinations outside the mesh through as TCP."""


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    """Unique within the namespace (e.g. ``catalog-v1-0``)."""
    namespace: str
    service_account: str
    labels: Mapping[str, str]
    address: str
    """Where peers reach this workload (its sidecar's inbound listeners, or its app ports)."""
    app_ports: tuple[int, ...] = ()
    """Ports the app itself listens on (the Service's targetPorts)."""
    sidecar: SidecarPorts | None = None
    """None: no sidecar (reached directly, plaintext)."""
    ready: bool = True
    """Whether the app answers: a sidecar probes its app and registers False until it does (and
    again when it stops answering). Services leave a workload that is not ready out of their
    endpoints. Workloads that do not say (WorkloadEntries, older sidecars) are ready."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    def endpoint_port(self, target_port: int) -> int:
        """The port a peer connects to for ``target_port``: the sidecar's, if it has one."""
        if self.sidecar is not None and target_port in self.sidecar.inbound:
            return self.sidecar.inbound[target_port]
        return target_port
