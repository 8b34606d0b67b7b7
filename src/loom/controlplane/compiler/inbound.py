"""The proxy's inbound side: one listener per app port its sidecar fronts, delivering to the local app.

For each service that selects the proxy's workload (a Service of its namespace whose selector its
labels match, or a ServiceEntry with a matching ``workloadSelector``) and each of its ports whose
``targetPort`` the sidecar fronts (``sidecar.inbound[targetPort]``), there is one listener
``inbound-<targetPort>`` on the workload's address and that sidecar port — one per targetPort, even
when several services select it. HTTP ports get a route config with one catch-all virtual host
and one route to ``inbound|<targetPort>||``, whose one endpoint is the app at
``<workload address>:<targetPort>`` — as Istio (since 1.10) delivers to the pod's IP rather than
``127.0.0.1``, and as workloads sharing one machine (each on its own loopback address, the same
app port) need. The route does not retry (the calling side does). A targetPort that only TCP
service ports use gets a TCP listener to the same cluster. The cluster's ``service`` is the FQDN
of the (alphabetically first) service selecting it.

Each inbound listener's ``mtls`` is the workload's PeerAuthentication mode for its targetPort
(``peer_authentication``: workload, namespace, then mesh-wide policy; ``portLevelMtls`` by targetPort;
PERMISSIVE when nothing sets one) — DISABLE while mutual TLS is off (``MeshSettings.mtls_enabled``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loom.controlplane.compiler.diagnostics import Warnings
from loom.controlplane.compiler.inputs import MeshInputs
from loom.controlplane.compiler.model import Service, ServicePort
from loom.controlplane.compiler.names import inbound_cluster
from loom.controlplane.compiler.peer_authentication import PeerModes
from loom.controlplane.compiler.retries import NO_RETRIES
from loom.controlplane.workloads import Workload
from loom.snapshot.model import (
    Cluster,
    Direction,
    Endpoint,
    LbPolicy,
    Listener,
    Protocol,
    Route,
    RouteAction,
    RouteConfig,
    TcpProxy,
    VirtualHost,
    WeightedCluster,
)
from loom.snapshot.security import MtlsMode


@dataclass
class Inbound:
    listeners: list[Listener] = field(default_factory=list)
    route_configs: list[RouteConfig] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)


def build_inbound(
    inputs: MeshInputs, proxy: Workload, taken: set[tuple[str, int]], warnings: Warnings
) -> Inbound:
    """``taken``: the (address, port) pairs already bound (the outbound listener); updated."""
    inbound = Inbound()
    sidecar = proxy.sidecar
    assert sidecar is not None
    served: dict[int, list[tuple[Service, ServicePort]]] = {}
    for service in inputs.selecting_workload(proxy):
        for port in service.ports:
            served.setdefault(port.target_port, []).append((service, port))
    labels = dict(sorted(proxy.labels.items()))
    modes = _peer_modes(inputs, proxy, warnings) if inputs.mesh.mtls_enabled else None
    for target_port in sorted(served):
        if target_port not in sidecar.inbound:
            continue  # the sidecar does not front it: peers reach the app directly
        listen_port = sidecar.inbound[target_port]
        pairs = served[target_port]
        fqdn = min(service.fqdn for service, _ in pairs)
        name = f"inbound-{target_port}"
        if listen_port != 0 and (proxy.address, listen_port) in taken:
            warnings.add(
                f"{name}: {proxy.address}:{listen_port} is already used by another listener of this proxy; "
                "no inbound listener for it"
            )
            continue
        taken.add((proxy.address, listen_port))
        http = any(port.protocol == "http" for _, port in pairs)
        cluster = Cluster(
            name=inbound_cluster(target_port),
            service=fqdn,
            protocol=Protocol.HTTP if http else Protocol.TCP,
            lb_policy=LbPolicy.ROUND_ROBIN,
            endpoints=[
                Endpoint(
                    address=proxy.address,
                    port=target_port,
                    labels=labels,
                    workload=proxy.name,
                    namespace=proxy.namespace,
                    service_account=proxy.service_account,
                )
            ],
        )
        inbound.clusters.append(cluster)
        mtls = modes.for_port(target_port) if modes is not None else MtlsMode.DISABLE
        destination = WeightedCluster(cluster=cluster.name, weight=100)
        if not http:
            inbound.listeners.append(
                Listener(
                    name=name,
                    direction=Direction.INBOUND,
                    protocol=Protocol.TCP,
                    address=proxy.address,
                    port=listen_port,
                    tcp=TcpProxy(destinations=[destination]),
                    mtls=mtls,
                )
            )
            continue
        inbound.listeners.append(
            Listener(
                name=name,
                direction=Direction.INBOUND,
                address=proxy.address,
                port=listen_port,
                route_config=name,
                mtls=mtls,
            )
        )
        route = Route(name="default", route=RouteAction(destinations=[destination], retry=NO_RETRIES))
        inbound.route_configs.append(
            RouteConfig(name=name, virtual_hosts=[VirtualHost(name=name, domains=["*"], routes=[route])])
        )
    return inbound


def _peer_modes(inputs: MeshInputs, proxy: Workload, warnings: Warnings) -> PeerModes:
    """The proxy's PeerAuthentication modes; reports ``portLevelMtls`` ports its sidecar does not front."""
    sidecar = proxy.sidecar
    assert sidecar is not None
    who = f"{proxy.namespace}/{proxy.name}"
    modes = inputs.peer_authentications.resolve(proxy.namespace, proxy.labels, warnings, who)
    policy = modes.workload_policy
    if policy is None:
        return modes
    fronted = ", ".join(str(p) for p in sorted(sidecar.inbound)) or "none"
    for port in modes.ports:
        if port not in sidecar.inbound:
            warnings.add(
                f"port {port} is not a port the sidecar of {who} fronts (its app ports: {fronted}); "
                "`portLevelMtls` is keyed by the workload's port (a Service's targetPort), not the "
                "service port",
                policy,
                f"spec.portLevelMtls[{port}]",
            )
    return modes
