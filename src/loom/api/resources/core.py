"""Kubernetes ``v1`` Service: the name, selector and ports a mesh routes by.

``selector``, ``ports`` and ``clusterIP`` are read; the other Service fields Kubernetes defines are
accepted (so ``kubectl get svc -o yaml`` output loads) and not interpreted.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from loom.api.resources.base import ApiModel
from loom.api.resources.values import IntOrString, Labels, Port, Str, invalid


class ServicePort(ApiModel):
    name: Str | None = None
    port: Port
    target_port: IntOrString | None = None
    protocol: Literal["TCP", "UDP", "SCTP"] | None = None
    app_protocol: Str | None = None
    node_port: Port | None = None


class ServiceSpec(ApiModel):
    selector: Labels = {}
    ports: tuple[ServicePort, ...] = ()
    cluster_ip: Str | None = Field(default=None, alias="clusterIP")
    cluster_ips: tuple[Str, ...] = Field(default=(), alias="clusterIPs")
    type: Literal["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"] | None = None
    external_name: Str | None = None
    # Accepted, not interpreted.
    session_affinity: Any = None
    session_affinity_config: Any = None
    external_ips: Any = Field(default=None, alias="externalIPs")
    external_traffic_policy: Any = None
    internal_traffic_policy: Any = None
    ip_families: Any = None
    ip_family_policy: Any = None
    publish_not_ready_addresses: Any = None
    load_balancer_ip: Any = Field(default=None, alias="loadBalancerIP")
    load_balancer_source_ranges: Any = None
    load_balancer_class: Any = None
    allocate_load_balancer_node_ports: Any = None
    health_check_node_port: Any = None
    traffic_distribution: Any = None

    @field_validator("ports")
    @classmethod
    def _names_when_several(cls, ports: tuple[ServicePort, ...]) -> tuple[ServicePort, ...]:
        if len(ports) > 1:
            names = [port.name for port in ports]
            if any(name is None for name in names):
                raise invalid(
                    "every port needs a `name` when a Service has more than one",
                    "name each port after its protocol, e.g. `name: http` or `name: grpc-api`",
                )
            duplicates = sorted({name for name in names if names.count(name) > 1 and name})
            if duplicates:
                raise invalid(f"port name {duplicates[0]!r} is used twice", "give each port a different name")
        return ports
