"""Services and endpoints: Services, WorkloadEntries, ServiceEntries, workloads without sidecars."""

from __future__ import annotations

from tests.unit.compiler.support import (
    SEED_WORKLOADS,
    by_name,
    cluster,
    compile_for,
    messages,
    proxy_config,
    resources,
    round_trip,
    routes,
    seed_mesh,
    svc,
    vhost,
    weights,
    workload,
)

SLEEP = by_name("sleep")


def test_a_workload_without_a_sidecar_is_reached_on_its_app_port() -> None:
    text = """
apiVersion: v1
kind: Service
metadata: {name: legacy, namespace: default}
spec:
  selector: {app: legacy}
  ports: [{name: http, port: 80, targetPort: 8080}]
"""
    bare = workload("legacy-0", "default", {"app": "legacy"}, "10.0.5.1", sidecar=False)
    with_sidecar = workload("legacy-1", "default", {"app": "legacy"}, "10.0.5.2")
    compiled = compile_for([*resources(text)], SLEEP, [SLEEP, bare, with_sidecar])
    c = cluster(compiled.snapshot, f"outbound|80||{svc('legacy')}")
    assert [(e.address, e.port, e.workload) for e in c.endpoints] == [
        ("10.0.5.1", 8080, "legacy-0"),
        ("10.0.5.2", 15006, "legacy-1"),
    ]


def test_selectors_stay_in_their_namespace() -> None:
    compiled = compile_for(seed_mesh(), SLEEP)
    orders_default = cluster(compiled.snapshot, f"outbound|80||{svc('orders-api')}")
    assert {e.namespace for e in orders_default.endpoints} == {"default"}


def test_workload_entries_are_workloads_without_sidecars() -> None:
    text = """
apiVersion: v1
kind: Service
metadata: {name: vm-app, namespace: default}
spec:
  selector: {app: vm-app}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1, namespace: default}
spec:
  address: 192.168.1.10
  labels: {app: vm-app, version: v1}
  serviceAccount: vm-app
  ports: {http: 9999}
  weight: 3
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-2, namespace: default}
spec:
  address: 192.168.1.11
  labels: {app: vm-app}
"""
    compiled = compile_for(resources(text), SLEEP, [SLEEP])
    c = cluster(compiled.snapshot, f"outbound|80||{svc('vm-app')}")
    assert [(e.address, e.port, e.weight, e.workload, e.service_account, e.labels) for e in c.endpoints] == [
        ("192.168.1.10", 9999, 3, "vm-1", "vm-app", {"app": "vm-app", "version": "v1"}),
        ("192.168.1.11", 8080, 1, "vm-2", "default", {"app": "vm-app"}),
    ]


def test_named_target_ports_fall_back_to_the_service_port() -> None:
    text = """
apiVersion: v1
kind: Service
metadata: {name: named, namespace: default}
spec:
  selector: {app: named}
  ports: [{name: http, port: 8080, targetPort: web}]
"""
    from loom.controlplane.compiler import MeshInputs

    inputs = MeshInputs.build(resources(text), [workload("n", "default", {"app": "named"}, "10.0.6.1")])
    [warning] = inputs.warnings
    assert "named targetPort 'web'" in warning.message
    assert warning.path == "spec.ports[0].targetPort"
    assert [(e.port) for e in inputs.services_by_host[svc("named")].ports[0].endpoints] == [15006]


def test_external_name_service() -> None:
    text = """
apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec:
  type: ExternalName
  externalName: db.example.com
  ports: [{name: http, port: 8000}]
"""
    compiled = compile_for(resources(text), SLEEP, [SLEEP])
    c = cluster(compiled.snapshot, f"outbound|8000||{svc('db')}")
    assert [(e.address, e.port) for e in c.endpoints] == [("db.example.com", 8000)]


SERVICE_ENTRIES = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin, namespace: default}
spec:
  hosts: [httpbin.org]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 80, name: http, protocol: HTTP}, {number: 443, name: https, protocol: HTTPS}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: static, namespace: default}
spec:
  hosts: [static.internal]
  addresses: [240.0.0.10]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8080, name: http, protocol: HTTP, targetPort: 9090}]
  endpoints:
  - {address: 10.7.0.1, labels: {version: v1}}
  - {address: 10.7.0.2, ports: {http: 7070}, labels: {version: v2}, weight: 2}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: selected, namespace: default}
spec:
  hosts: [selected.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, targetPort: 8080}]
  workloadSelector: {labels: {app: my-app}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wild, namespace: default}
spec:
  hosts: ["*.example.com"]
  ports: [{number: 80, name: http}]
"""


def test_service_entries() -> None:
    from loom.controlplane.compiler import MeshInputs, compile_snapshot

    inputs = MeshInputs.build([*seed_mesh(), *resources(SERVICE_ENTRIES)], list(SEED_WORKLOADS))
    snapshot = compile_snapshot(inputs, SLEEP, version="1").snapshot
    round_trip(snapshot)
    proxy_config(snapshot)
    httpbin = cluster(snapshot, "outbound|80||httpbin.org")
    assert [(e.address, e.port) for e in httpbin.endpoints] == [("httpbin.org", 80)]
    assert vhost(snapshot, "httpbin.org").domains == ["httpbin.org"]
    assert not [vh for vh in snapshot.route_configs[0].virtual_hosts if vh.name == "httpbin.org:443"]
    static = cluster(snapshot, "outbound|8080||static.internal")
    assert [(e.address, e.port, e.weight) for e in static.endpoints] == [
        ("10.7.0.1", 9090, 1),
        ("10.7.0.2", 7070, 2),
    ]
    assert vhost(snapshot, "static.internal", 8080).domains == ["static.internal", "240.0.0.10"]
    selected = cluster(snapshot, "outbound|80||selected.internal")
    assert [(e.workload, e.port) for e in selected.endpoints] == [("my-app-v1", 15006), ("my-app-v2", 15006)]
    assert cluster(snapshot, "outbound|80||*.example.com").endpoints == []
    assert vhost(snapshot, "*.example.com").domains == ["*.example.com"]
    assert any("wildcard host" in w.message for w in inputs.warnings)


def test_a_virtual_service_routes_a_service_entry_host() -> None:
    text = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin, namespace: default}
spec:
  hosts: [httpbin.org]
  http:
  - timeout: 3s
    route: [{destination: {host: httpbin.org}}]
"""
    compiled = compile_for([*seed_mesh(), *resources(SERVICE_ENTRIES, text)], SLEEP)
    [route] = routes(compiled.snapshot, "httpbin.org")
    assert weights(route) == {"outbound|80||httpbin.org": 100}
    assert route.route is not None and route.route.timeout == 3.0


def test_export_to_hides_a_service() -> None:
    text = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: private, namespace: production}
spec:
  hosts: [private.internal]
  exportTo: ["."]
  resolution: DNS
  ports: [{number: 80, name: http}]
"""
    inside = compile_for([*seed_mesh(), *resources(text)], by_name("api-service", "production")).snapshot
    outside = compile_for([*seed_mesh(), *resources(text)], SLEEP).snapshot
    assert "outbound|80||private.internal" in {c.name for c in inside.clusters}
    assert "outbound|80||private.internal" not in {c.name for c in outside.clusters}


def test_only_http_ports_get_virtual_hosts() -> None:
    text = """
apiVersion: v1
kind: Service
metadata: {name: mixed, namespace: default}
spec:
  selector: {app: mixed}
  ports: [{name: http, port: 80}, {name: tcp-db, port: 5432}, {name: grpc, port: 9000, appProtocol: grpc}]
"""
    from loom.controlplane.compiler import MeshInputs, compile_snapshot

    inputs = MeshInputs.build(resources(text), [SLEEP])
    snapshot = compile_snapshot(inputs, SLEEP, version="1").snapshot
    names = [vh.name for vh in snapshot.route_configs[0].virtual_hosts]
    assert names == [f"{svc('mixed')}:80", f"{svc('mixed')}:9000"]
    assert any("port 5432 (tcp-db)" in w.message for w in inputs.warnings)


def test_a_name_defined_twice_keeps_the_first() -> None:
    text = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: shadow, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  resolution: DNS
  ports: [{number: 9080, name: http}]
"""
    from loom.controlplane.compiler import MeshInputs

    inputs = MeshInputs.build([*seed_mesh(), *resources(text)], [])
    assert inputs.services_by_host[svc("reviews")].resource.kind == "Service"
    assert any(w.resource == "ServiceEntry default/shadow" for w in inputs.warnings)


def test_a_destination_under_a_wildcard_service_entry_uses_its_cluster() -> None:
    text = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: api.example.com}}]
"""
    compiled = compile_for([*seed_mesh(), *resources(SERVICE_ENTRIES, text)], SLEEP)
    assert weights(routes(compiled.snapshot, svc("reviews"), 9080)[0]) == {"outbound|80||*.example.com": 100}
    assert not [m for m in messages(compiled) if "no service" in m]
