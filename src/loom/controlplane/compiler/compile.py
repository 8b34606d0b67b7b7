"""``compile_snapshot``: one proxy's snapshot from the mesh's resources and workloads — a pure function."""

from __future__ import annotations

from dataclasses import dataclass

from loom.controlplane.compiler.context import Compilation
from loom.controlplane.compiler.diagnostics import CompileWarning, Warnings
from loom.controlplane.compiler.inbound import build_inbound
from loom.controlplane.compiler.inputs import MeshInputs
from loom.controlplane.compiler.outbound import OUTBOUND, outbound_clusters, outbound_route_config
from loom.controlplane.compiler.request_authentication import jwt_rules_for
from loom.controlplane.workloads import Workload
from loom.snapshot.model import (
    AccessLog,
    Admin,
    Cluster,
    Direction,
    Listener,
    Node,
    RouteConfig,
    Snapshot,
    Telemetry,
)
from loom.snapshot.security import Security

LOCALHOST = "127.0.0.1"
"""Where the outbound listener binds: the app's requests come to it over loopback."""


@dataclass(frozen=True, slots=True)
class Compiled:
    """A proxy's snapshot, and what the compiler dropped or could not honour while making it.

    ``warnings`` starts with the mesh-wide ones (``MeshInputs.warnings``, found while indexing and
    the same for every proxy), followed by those found for this proxy; each is listed once.
    """

    snapshot: Snapshot
    warnings: tuple[CompileWarning, ...] = ()


def compile_snapshot(inputs: MeshInputs, proxy: Workload, *, version: str) -> Compiled:
    """The snapshot of the sidecar of ``proxy``, versioned ``version``.

    Pure and deterministic: no I/O, and identical inputs give an identical snapshot (everything is
    sorted). Raises ``ValueError`` for a workload without a sidecar (it has no proxy to configure).
    """
    sidecar = proxy.sidecar
    if sidecar is None:
        raise ValueError(f"workload {proxy.namespace}/{proxy.name} has no sidecar to compile a snapshot for")
    route_config, clusters, found = _outbound(inputs, proxy)
    warnings = Warnings()
    warnings.extend(inputs.warnings)
    warnings.extend(found)
    outbound = Listener(
        name=OUTBOUND,
        direction=Direction.OUTBOUND,
        address=LOCALHOST,
        port=sidecar.outbound,
        route_config=OUTBOUND,
        original_dst=sidecar.transparent,
    )
    taken = {(LOCALHOST, sidecar.outbound)} if sidecar.outbound else set()
    inbound = build_inbound(inputs, proxy, taken, warnings)
    mesh = inputs.mesh
    access_log = (
        AccessLog(path=mesh.access_log_file, encoding=mesh.access_log_encoding)
        if mesh.access_log_file
        else None
    )
    jwt_rules = jwt_rules_for(inputs, proxy, warnings)
    snapshot = Snapshot(
        version=version,
        node=Node(
            workload=proxy.name,
            namespace=proxy.namespace,
            service_account=proxy.service_account,
            labels=dict(sorted(proxy.labels.items())),
            trust_domain=mesh.trust_domain,
            cluster_domain=mesh.cluster_domain,
        ),
        admin=Admin(port=sidecar.admin),
        listeners=[outbound, *inbound.listeners],
        route_configs=[route_config, *inbound.route_configs],
        clusters=_merged(clusters, inbound.clusters),
        telemetry=Telemetry(
            access_log=access_log, tracing=inputs.tracing.for_workload(proxy.namespace, proxy.labels)
        ),
        security=Security(authorization=inputs.authorization.for_workload(proxy), jwt_rules=jwt_rules),
    )
    return Compiled(snapshot, warnings.result())


def _merged(outbound: list[Cluster], inbound: list[Cluster]) -> list[Cluster]:
    """``outbound`` (shared, already sorted by name) and ``inbound`` (a few), sorted by name — as
    ``sorted([*outbound, *inbound], key=name)``, without sorting the shared part for every proxy."""
    if not inbound:
        return list(outbound)
    mine = sorted(inbound, key=_name)
    if not outbound or mine[-1].name < outbound[0].name:
        return [*mine, *outbound]  # inbound|... names sort before outbound|... ones
    return sorted([*outbound, *inbound], key=_name)


def _name(cluster: Cluster) -> str:
    return cluster.name


def _outbound(
    inputs: MeshInputs, proxy: Workload
) -> tuple[RouteConfig, list[Cluster], tuple[CompileWarning, ...]]:
    """The outbound route config and clusters (sorted by name): the same for every proxy of one
    namespace whose labels agree on the keys that matter (``MeshInputs.label_keys``)."""
    labels = proxy.labels
    key = ("outbound", proxy.namespace, tuple((k, labels.get(k)) for k in sorted(inputs.label_keys)))
    found = inputs.memo(key)
    if found is None:
        comp = Compilation(inputs, proxy.namespace, proxy.labels)
        route_config = outbound_route_config(comp)
        found = (route_config, outbound_clusters(comp), comp.warnings.result())
        inputs.remember(key, found)
    return found  # type: ignore[no-any-return]
