"""Readiness: a registered sidecar workload that said its app is not ready is left out of every
service's endpoints (subsets included) and keeps its own inbound side; workloads that say nothing
(WorkloadEntries, older sidecars) are ready."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from loom.controlplane.resources_api import workload_to_json
from loom.controlplane.server import workload_from_json
from loom.controlplane.workloads import SidecarPorts, Workload
from tests.unit.compiler.support import (
    APP_PORT,
    INBOUND,
    cluster,
    compile_for,
    endpoint_names,
    listener,
    resources,
    svc,
    workload,
)

MESH = """
apiVersion: v1
kind: Service
metadata: {name: catalog, namespace: default}
spec:
  selector: {app: catalog}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: catalog, namespace: default}
spec:
  host: catalog
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: catalog, namespace: default}
spec:
  hosts: [catalog]
  http:
  - route:
    - {destination: {host: catalog, subset: v1}, weight: 50}
    - {destination: {host: catalog, subset: v2}, weight: 50}
---
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: catalog-internal, namespace: default}
spec:
  hosts: [catalog.internal]
  ports: [{name: http, number: 80, protocol: HTTP, targetPort: 8080}]
  resolution: STATIC
  workloadSelector: {labels: {app: catalog}}
"""

CLIENT = workload("client", "default", {"app": "client"}, "10.0.0.9")
V1 = workload("catalog-v1", "default", {"app": "catalog", "version": "v1"}, "10.0.0.1")
V2 = workload("catalog-v2", "default", {"app": "catalog", "version": "v2"}, "10.0.0.2")
CATALOG = svc("catalog")


def not_ready(w: Workload) -> Workload:
    return dataclasses.replace(w, ready=False)


def test_a_workload_that_is_not_ready_is_left_out_of_every_cluster_of_the_service() -> None:
    compiled = compile_for(resources(MESH), CLIENT, [CLIENT, V1, not_ready(V2)])
    snapshot = compiled.snapshot
    assert endpoint_names(cluster(snapshot, f"outbound|80||{CATALOG}")) == ["catalog-v1"]
    assert endpoint_names(cluster(snapshot, f"outbound|80|v1|{CATALOG}")) == ["catalog-v1"]
    assert endpoint_names(cluster(snapshot, f"outbound|80|v2|{CATALOG}")) == []
    assert endpoint_names(cluster(snapshot, "outbound|80||catalog.internal")) == ["catalog-v1"]


def test_when_no_workload_is_ready_the_clusters_have_no_endpoints() -> None:
    compiled = compile_for(resources(MESH), CLIENT, [CLIENT, not_ready(V1), not_ready(V2)])
    snapshot = compiled.snapshot
    for name in (f"outbound|80||{CATALOG}", f"outbound|80|v1|{CATALOG}", "outbound|80||catalog.internal"):
        assert cluster(snapshot, name).endpoints == [], name
    ready = compile_for(resources(MESH), CLIENT, [CLIENT, V1, V2]).snapshot
    assert [c.name for c in snapshot.clusters] == [c.name for c in ready.clusters]


def test_the_workload_that_is_not_ready_keeps_its_own_inbound_side() -> None:
    proxy = not_ready(V2)
    snapshot = compile_for(resources(MESH), proxy, [CLIENT, V1, proxy]).snapshot
    assert listener(snapshot, f"inbound-{APP_PORT}").port == INBOUND
    inbound = cluster(snapshot, f"inbound|{APP_PORT}||")
    assert [(e.address, e.port) for e in inbound.endpoints] == [("10.0.0.2", APP_PORT)]
    # ...but peers (and itself, through its outbound side) do not reach it through the service.
    assert endpoint_names(cluster(snapshot, f"outbound|80||{CATALOG}")) == ["catalog-v1"]


def test_workload_entries_and_workloads_without_a_sidecar_are_ready() -> None:
    entry = """
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: catalog-vm, namespace: default}
spec: {address: 10.0.7.1, labels: {app: catalog, version: v1}}
"""
    bare = workload("catalog-bare", "default", {"app": "catalog", "version": "v1"}, "10.0.7.2", sidecar=False)
    snapshot = compile_for(resources(MESH, entry), CLIENT, [CLIENT, not_ready(V1), bare]).snapshot
    assert endpoint_names(cluster(snapshot, f"outbound|80||{CATALOG}")) == ["catalog-vm", "catalog-bare"]


def test_the_registration_carries_readiness_and_a_missing_one_is_ready() -> None:
    registration = {
        "name": "catalog-v1",
        "address": "10.0.0.1",
        "app_ports": [8080],
        "sidecar": {"outbound": 15001, "inbound": {"8080": 15006}},
    }
    assert workload_from_json(registration).ready is True
    assert workload_from_json({**registration, "ready": None}).ready is True
    assert workload_from_json({**registration, "ready": False}).ready is False
    read = workload_from_json({**registration, "ready": False})
    assert workload_from_json(workload_to_json(read)) == read
    assert workload_to_json(read)["ready"] is False
    try:
        workload_from_json({**registration, "ready": "no"})
    except ValueError as exc:
        assert "ready" in str(exc)
    else:
        raise AssertionError("a ready that is not a boolean is refused")


def test_the_default_workload_is_ready() -> None:
    w = Workload(
        name="w",
        namespace="default",
        service_account="default",
        labels=MappingProxyType({}),
        address="10.0.0.1",
        sidecar=SidecarPorts(outbound=15001),
    )
    assert w.ready is True
