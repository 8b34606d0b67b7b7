"""Helpers for the compiler tests: workloads, resources from YAML text, compiling, and looking things up."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from loom.api import Resource, load_paths, load_text
from loom.controlplane.compiler import Compiled, MeshInputs, MeshSettings, compile_snapshot
from loom.controlplane.workloads import SidecarPorts, Workload
from loom.proxy.config import ProxyConfig
from loom.proxy.router import RouteTable, compile_route_config
from loom.proxy.telemetry import MeshMetrics
from loom.snapshot import parse_snapshot, snapshot_to_builtins
from loom.snapshot.model import Cluster, Listener, Route, RouteConfig, Snapshot, VirtualHost

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "compiler"
_SHARED_SEEDS = Path("/work/shared/seed-examples")
_SEED_COPY = Path(__file__).resolve().parents[2] / "fixtures" / "api" / "seed_examples"
SEED_EXAMPLES = _SHARED_SEEDS if _SHARED_SEEDS.is_dir() else _SEED_COPY

APP_PORT = 8080
INBOUND = 15006
OUTBOUND = 15001
ADMIN = 15000


def workload(
    name: str,
    namespace: str,
    labels: dict[str, str],
    address: str,
    *,
    sidecar: bool = True,
    app_ports: tuple[int, ...] = (APP_PORT,),
    service_account: str | None = None,
) -> Workload:
    ports = None
    if sidecar:
        inbound = {port: INBOUND + i for i, port in enumerate(app_ports)}
        ports = SidecarPorts(outbound=OUTBOUND, inbound=MappingProxyType(inbound), admin=ADMIN)
    return Workload(
        name=name,
        namespace=namespace,
        service_account=service_account or labels.get("app", "default"),
        labels=MappingProxyType(dict(labels)),
        address=address,
        app_ports=app_ports,
        sidecar=ports,
    )


SEED_WORKLOADS = (
    workload("orders-api-v1", "production", {"app": "orders-api", "version": "v1"}, "10.1.0.1"),
    workload("orders-api-v2", "production", {"app": "orders-api", "version": "v2"}, "10.1.0.2"),
    workload("api-service", "production", {"app": "api-service", "version": "v1"}, "10.1.0.3"),
    workload("orders-api-v1", "default", {"app": "orders-api", "version": "v1"}, "10.0.0.1"),
    workload("orders-api-v2", "default", {"app": "orders-api", "version": "v2"}, "10.0.0.2"),
    workload("my-app-v1", "default", {"app": "my-app", "version": "v1"}, "10.0.0.3"),
    workload("my-app-v2", "default", {"app": "my-app", "version": "v2"}, "10.0.0.4"),
    workload("reviews-v1", "default", {"app": "reviews", "version": "v1"}, "10.0.0.5", app_ports=(9080,)),
    workload("reviews-v2", "default", {"app": "reviews", "version": "v2"}, "10.0.0.6", app_ports=(9080,)),
    workload("sleep", "default", {"app": "sleep"}, "10.0.0.7"),
)


def by_name(name: str, namespace: str = "default") -> Workload:
    return next(w for w in SEED_WORKLOADS if w.name == name and w.namespace == namespace)


def resources(*texts: str) -> list[Resource]:
    """Resources from YAML texts, each read as its own file (``t0.yaml``, ``t1.yaml``, ...)."""
    found: list[Resource] = []
    for i, text in enumerate(texts):
        result = load_text(text, f"t{i}.yaml")
        assert result.ok, [str(p) for p in result.problems]
        found.extend(result.resources)
    return found


def seed_mesh() -> list[Resource]:
    result = load_paths([FIXTURES / "seed-mesh.yaml"])
    assert result.ok, [str(p) for p in result.problems]
    return result.resources


def load_file(path: Path) -> list[Resource]:
    result = load_paths([path])
    assert result.ok, [str(p) for p in result.problems]
    return result.resources


def compile_for(
    found: list[Resource],
    proxy: Workload,
    workloads: tuple[Workload, ...] | list[Workload] = SEED_WORKLOADS,
    *,
    mesh: MeshSettings | None = None,
    version: str = "1",
) -> Compiled:
    inputs = MeshInputs.build(found, list(workloads), mesh)
    return compile_snapshot(inputs, proxy, version=version)


def round_trip(snapshot: Snapshot) -> Snapshot:
    """The snapshot as a proxy would read it back; equal to the one given when it is valid."""
    again = parse_snapshot(snapshot_to_builtins(snapshot))
    assert again == snapshot
    return again


def route_tables(snapshot: Snapshot) -> dict[str, RouteTable]:
    """Every route config compiled by the proxy's own router (proves regexes, names, domains load)."""
    return {rc.name: compile_route_config(rc, snapshot.node) for rc in snapshot.route_configs}


def proxy_config(snapshot: Snapshot) -> ProxyConfig:
    """The snapshot loaded as the proxy serves it: route tables, cluster runtimes, retry policies."""
    return ProxyConfig(snapshot, None, MeshMetrics(snapshot.node), None)


def route_config(snapshot: Snapshot, name: str = "outbound") -> RouteConfig:
    return next(rc for rc in snapshot.route_configs if rc.name == name)


def vhost(snapshot: Snapshot, fqdn: str, port: int = 80) -> VirtualHost:
    found = [vh for vh in route_config(snapshot).virtual_hosts if vh.name == f"{fqdn}:{port}"]
    assert found, (
        f"no virtual host {fqdn}:{port}; have {[vh.name for vh in route_config(snapshot).virtual_hosts]}"
    )
    return found[0]


def routes(snapshot: Snapshot, fqdn: str, port: int = 80) -> list[Route]:
    return vhost(snapshot, fqdn, port).routes


def cluster(snapshot: Snapshot, name: str) -> Cluster:
    found = [c for c in snapshot.clusters if c.name == name]
    assert found, f"no cluster {name}; have {[c.name for c in snapshot.clusters]}"
    return found[0]


def listener(snapshot: Snapshot, name: str) -> Listener:
    return next(li for li in snapshot.listeners if li.name == name)


def weights(route: Route) -> dict[str, int]:
    assert route.route is not None
    return {d.cluster: d.weight for d in route.route.destinations}


def endpoint_names(c: Cluster) -> list[str]:
    return [e.workload for e in c.endpoints]


def messages(compiled: Compiled) -> list[str]:
    return [w.message for w in compiled.warnings]


def svc(name: str, namespace: str = "default") -> str:
    return f"{name}.{namespace}.svc.cluster.local"
