"""Mutual TLS on the calling side: auto mTLS, the server's PeerAuthentication, DestinationRule ``tls``,
and the server identities a cluster trusts."""

from __future__ import annotations

import random
from types import MappingProxyType

from loom.api import Resource
from loom.controlplane.compiler import Compiled, MeshInputs, MeshSettings, compile_snapshot
from loom.controlplane.workloads import SidecarPorts, Workload
from loom.snapshot import dump_snapshot
from loom.snapshot.model import Cluster
from tests.unit.compiler.support import (
    SEED_EXAMPLES,
    SEED_WORKLOADS,
    by_name,
    cluster,
    compile_for,
    load_file,
    messages,
    resources,
    round_trip,
    seed_mesh,
    workload,
)

MTLS = MeshSettings(mtls_enabled=True)
ORDERS = "orders.shop.svc.cluster.local"
CLUSTER = f"outbound|80||{ORDERS}"

SHOP = """
apiVersion: v1
kind: Service
metadata: {name: orders, namespace: shop}
spec:
  selector: {app: orders}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: orders-vm, namespace: shop}
spec:
  address: 10.5.0.9
  labels: {app: orders, version: vm, security.istio.io/tlsMode: istio}
  serviceAccount: orders-vm
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: orders-old-vm, namespace: shop}
spec:
  address: 10.5.0.8
  labels: {app: orders, version: vm}
  serviceAccount: orders-vm
"""

CLIENT = workload("client-0", "shop", {"app": "client"}, "10.5.0.1")
V1 = workload("orders-v1", "shop", {"app": "orders", "version": "v1"}, "10.5.0.2", service_account="orders")
V2 = workload(
    "orders-v2", "shop", {"app": "orders", "version": "v2"}, "10.5.0.3", service_account="orders-canary"
)
PLAIN = workload(
    "orders-plain",
    "shop",
    {"app": "orders", "version": "v1"},
    "10.5.0.4",
    sidecar=False,
    service_account="orders",
)
WORKLOADS = (CLIENT, V1, V2, PLAIN)


def compile_shop(
    *texts: str, mesh: MeshSettings = MTLS, workloads: tuple[Workload, ...] = WORKLOADS
) -> Compiled:
    return compile_for(resources(SHOP, *texts), CLIENT, workloads, mesh=mesh)


def orders(compiled: Compiled, name: str = CLUSTER) -> Cluster:
    return cluster(round_trip(compiled.snapshot), name)


def mtls_by_workload(c: Cluster) -> dict[str, bool]:
    return {e.workload: e.mtls for e in c.endpoints}


def identities(c: Cluster) -> list[str]:
    assert c.tls is not None
    return c.tls.server_identities


def sa(name: str, namespace: str = "shop", domain: str = "cluster.local") -> str:
    return f"spiffe://{domain}/ns/{namespace}/sa/{name}"


def destination_rule(tls: str, extra: str = "") -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: orders, namespace: shop}}
spec:
  host: orders
  trafficPolicy:
    tls: {tls}
{extra}"""


def test_auto_mtls_to_the_endpoints_with_a_sidecar() -> None:
    compiled = compile_shop()
    c = orders(compiled)
    assert mtls_by_workload(c) == {
        "orders-v1": True,
        "orders-v2": True,
        "orders-plain": False,  # no sidecar
        "orders-vm": True,  # a WorkloadEntry labelled security.istio.io/tlsMode: istio
        "orders-old-vm": False,  # a WorkloadEntry without the label
    }
    assert identities(c) == [sa("orders"), sa("orders-canary"), sa("orders-vm")]
    assert messages(compiled) == []


def test_a_port_the_sidecar_does_not_front_is_plaintext() -> None:
    bare = Workload(
        name="orders-v3",
        namespace="shop",
        service_account="orders",
        labels=MappingProxyType({"app": "orders", "version": "v3"}),
        address="10.5.0.5",
        app_ports=(8080, 9090),
        sidecar=SidecarPorts(outbound=15001, inbound=MappingProxyType({9090: 15006}), admin=15000),
    )
    c = orders(compile_shop(workloads=(CLIENT, bare)))
    assert [(e.port, e.mtls) for e in c.endpoints if e.workload == "orders-v3"] == [(8080, False)]


def test_a_cluster_without_mutual_tls_endpoints_has_no_tls() -> None:
    c = orders(compile_shop(workloads=(CLIENT, PLAIN)))
    assert mtls_by_workload(c) == {"orders-plain": False, "orders-vm": True, "orders-old-vm": False}
    only_plain = SHOP.split("---")[0]
    compiled = compile_for(resources(only_plain), CLIENT, (CLIENT, PLAIN), mesh=MTLS)
    c = orders(compiled)
    assert c.tls is None and mtls_by_workload(c) == {"orders-plain": False}


def test_the_servers_disable_policy_turns_auto_mtls_off() -> None:
    def peer(name: str, spec: str) -> str:
        return (
            "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
            f"metadata: {{name: {name}, namespace: shop}}\nspec: {spec}\n"
        )

    v2_off = peer("v2", "{selector: {matchLabels: {version: v2}}, mtls: {mode: DISABLE}}")
    assert mtls_by_workload(orders(compile_shop(v2_off)))["orders-v2"] is False
    # Port-level, keyed by the workload's port (the targetPort, not the sidecar's or the service's).
    port_off = peer("v1", "{selector: {matchLabels: {version: v1}}, portLevelMtls: {8080: {mode: DISABLE}}}")
    found = mtls_by_workload(orders(compile_shop(port_off)))
    assert (found["orders-v1"], found["orders-v2"]) == (False, True)
    everything_off = peer("default", "{mtls: {mode: DISABLE}}")
    c = orders(compile_shop(everything_off))
    assert not any(e.mtls for e in c.endpoints) and c.tls is None
    # STRICT and PERMISSIVE servers both get mutual TLS.
    strict = peer("default", "{mtls: {mode: STRICT}}")
    assert mtls_by_workload(orders(compile_shop(strict))) == mtls_by_workload(orders(compile_shop()))


def test_destination_rule_disable() -> None:
    for tls in ("{mode: DISABLE}", "{subjectAltNames: [spiffe://cluster.local/ns/shop/sa/x]}"):
        compiled = compile_shop(destination_rule(tls))  # a `tls` without a mode is DISABLE, as in Istio
        c = orders(compiled)
        assert not any(e.mtls for e in c.endpoints) and c.tls is None
        assert messages(compiled) == []


def test_destination_rule_istio_mutual_for_every_endpoint() -> None:
    sans = "[spiffe://cluster.local/ns/shop/sa/orders-legacy, spiffe://cluster.local/ns/shop/sa/orders]"
    compiled = compile_shop(destination_rule(f"{{mode: ISTIO_MUTUAL, subjectAltNames: {sans}}}"))
    c = orders(compiled)
    assert all(e.mtls for e in c.endpoints)  # even without a sidecar, whatever the server's policy
    assert identities(c) == [sa("orders"), sa("orders-canary"), sa("orders-legacy"), sa("orders-vm")]
    assert messages(compiled) == []


def test_port_level_and_subset_tls() -> None:
    text = destination_rule(
        "{mode: ISTIO_MUTUAL}",
        """    portLevelSettings:
    - port: {number: 80}
      tls: {mode: DISABLE}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      tls: {mode: ISTIO_MUTUAL}
  - name: v2
    labels: {version: v2}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: orders, namespace: shop}
spec:
  hosts: [orders]
  http:
  - route:
    - {destination: {host: orders, subset: v1}, weight: 50}
    - {destination: {host: orders, subset: v2}, weight: 50}
""",
    )
    compiled = compile_shop(text)
    assert not any(e.mtls for e in orders(compiled).endpoints)  # the port's DISABLE replaces the top level's
    v1 = orders(compiled, f"outbound|80|v1|{ORDERS}")
    assert mtls_by_workload(v1) == {"orders-v1": True, "orders-plain": True}
    assert identities(v1) == [sa("orders")]
    v2 = orders(compiled, f"outbound|80|v2|{ORDERS}")
    assert mtls_by_workload(v2) == {"orders-v2": False} and v2.tls is None


def test_simple_and_mutual_are_not_supported_yet() -> None:
    for mode in ("SIMPLE", "MUTUAL"):
        compiled = compile_shop(destination_rule(f"{{mode: {mode}}}"))
        assert mtls_by_workload(orders(compiled)) == mtls_by_workload(orders(compile_shop()))  # as auto
        [warning] = compiled.warnings
        assert (warning.resource, warning.path) == (
            "DestinationRule shop/orders",
            "spec.trafficPolicy.tls.mode",
        )
        assert f"tls mode {mode}" in warning.message and "not supported yet" in warning.message


def test_unsupported_fields_under_istio_mutual_are_reported() -> None:
    compiled = compile_shop(destination_rule("{mode: ISTIO_MUTUAL, sni: orders.example.com}"))
    assert [(w.path, w.message) for w in compiled.warnings] == [
        ("spec.trafficPolicy.tls.sni", "`sni` is not supported; ignored")
    ]


EXTERNAL = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: billing, namespace: shop}
spec:
  hosts: [billing.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http}]
  endpoints:
  - {address: 10.6.0.1, labels: {security.istio.io/tlsMode: istio}, serviceAccount: billing}
  - {address: 10.6.0.2}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: payments, namespace: shop}
spec:
  hosts: [payments.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http}]
  endpoints:
  - {address: 10.7.0.1, labels: {security.istio.io/tlsMode: istio}, serviceAccount: payments}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: search, namespace: shop}
spec:
  hosts: [search.example.com]
  resolution: DNS
  ports: [{number: 80, name: http}]
"""


def test_service_entry_endpoints() -> None:
    compiled = compile_shop(EXTERNAL)
    billing = orders(compiled, "outbound|80||billing.internal")
    assert [(e.address, e.mtls) for e in billing.endpoints] == [("10.6.0.1", True), ("10.6.0.2", False)]
    assert identities(billing) == [sa("billing")]
    payments = orders(compiled, "outbound|80||payments.example.com")
    assert [e.mtls for e in payments.endpoints] == [False]  # MESH_EXTERNAL: no auto mTLS
    assert payments.tls is None


def test_istio_mutual_to_a_server_with_no_known_identity() -> None:
    rule = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: search, namespace: shop}
spec:
  host: search.example.com
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL}
"""
    compiled = compile_shop(EXTERNAL, rule)
    search = orders(compiled, "outbound|80||search.example.com")
    assert search.endpoints == [] and search.tls is None
    [warning] = [w for w in compiled.warnings if w.resource == "DestinationRule shop/search"]
    assert "no service account is known" in warning.message and "left out" in warning.message
    with_sans = rule.replace(
        "{mode: ISTIO_MUTUAL}", "{mode: ISTIO_MUTUAL, subjectAltNames: [search.example.com]}"
    )
    search = orders(compile_shop(EXTERNAL, with_sans), "outbound|80||search.example.com")
    assert [e.mtls for e in search.endpoints] == [True]
    assert identities(search) == ["search.example.com"]


def test_service_entry_subject_alt_names_are_trusted_too() -> None:
    text = EXTERNAL.replace(
        "  location: MESH_INTERNAL\n",
        "  location: MESH_INTERNAL\n  subjectAltNames: [spiffe://other.org/sa/billing]\n",
    )
    billing = orders(compile_shop(text), "outbound|80||billing.internal")
    assert identities(billing) == [sa("billing"), "spiffe://other.org/sa/billing"]


def test_mesh_config_trust_domain_and_auto_mtls_off() -> None:
    operator = """
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: {name: mesh, namespace: loom-system}
spec:
  meshConfig: {trustDomain: example.org, enableAutoMtls: false}
"""
    found = resources(SHOP, operator)
    inputs = MeshInputs.build(found, list(WORKLOADS), mtls_enabled=True)
    assert not inputs.mesh.auto_mtls
    c = cluster(compile_snapshot(inputs, CLIENT, version="1").snapshot, CLUSTER)
    assert not any(e.mtls for e in c.endpoints) and c.tls is None
    inputs = MeshInputs.build(
        [*found, *resources(destination_rule("{mode: ISTIO_MUTUAL}"))], list(WORKLOADS), mtls_enabled=True
    )
    c = cluster(compile_snapshot(inputs, CLIENT, version="1").snapshot, CLUSTER)
    assert all(e.mtls for e in c.endpoints)
    assert identities(c) == [sa(n, domain="example.org") for n in ("orders", "orders-canary", "orders-vm")]


def test_seed_reviews_destination_rule_is_istio_mutual() -> None:
    found = [*seed_mesh(), *load_file(SEED_EXAMPLES / "003-reviews.yaml")]
    compiled = compile_for(found, by_name("sleep"), mesh=MTLS)
    host = "reviews.default.svc.cluster.local"
    for subset, workload_name in (("v1", "reviews-v1"), ("v2", "reviews-v2")):
        c = cluster(round_trip(compiled.snapshot), f"outbound|9080|{subset}|{host}")
        assert [(e.workload, e.mtls) for e in c.endpoints] == [(workload_name, True)]
        assert identities(c) == [sa("reviews", "default")]
    assert compiled.warnings == ()


def test_with_mtls_off_snapshots_are_as_before() -> None:
    texts = (EXTERNAL, destination_rule("{mode: ISTIO_MUTUAL}"))
    off = compile_shop(*texts, mesh=MeshSettings())
    assert off == compile_for(resources(SHOP, *texts), CLIENT, WORKLOADS)
    for c in off.snapshot.clusters:
        assert c.tls is None and not any(e.mtls for e in c.endpoints)
    assert messages(off) == messages(compile_shop(*texts, mesh=MeshSettings()))


def _everything() -> list[Resource]:
    seeds = (r for path in sorted(SEED_EXAMPLES.glob("*.yaml")) for r in load_file(path))
    return [*seed_mesh(), *seeds, *resources(SHOP, EXTERNAL)]


def test_deterministic_whatever_the_order_of_resources_and_workloads() -> None:
    everything, workloads = _everything(), [*SEED_WORKLOADS, *WORKLOADS]
    expected = {
        proxy.key: compile_snapshot(
            MeshInputs.build(everything, workloads, mtls_enabled=True), proxy, version="1"
        )
        for proxy in (CLIENT, by_name("sleep"), by_name("api-service", "production"))
    }
    rng = random.Random(11)
    for _ in range(4):
        found, shuffled = list(everything), list(workloads)
        rng.shuffle(found)
        rng.shuffle(shuffled)
        inputs = MeshInputs.build(found, shuffled, mtls_enabled=True)
        for key, compiled in expected.items():
            proxy = next(w for w in workloads if w.key == key)
            again = compile_snapshot(inputs, proxy, version="1")
            assert again == compiled
            assert dump_snapshot(again.snapshot) == dump_snapshot(compiled.snapshot)
