"""``loom explain`` compiles the caller's snapshot as the control plane does: with mutual TLS on."""

from __future__ import annotations

from loom.cli.explain import explain_request
from loom.controlplane.compiler import MeshInputs, compile_snapshot
from tests.unit.compiler.support import cluster, resources
from tests.unit.compiler.test_mtls import CLIENT, EXTERNAL, SHOP, WORKLOADS

ISTIO_MUTUAL_WITHOUT_IDENTITY = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: search, namespace: shop}
spec:
  host: search.example.com
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL}
"""
SEARCH = "outbound|80||search.example.com"


def test_explain_shows_the_endpoints_the_pushed_snapshot_has() -> None:
    found = resources(SHOP, EXTERNAL, ISTIO_MUTUAL_WITHOUT_IDENTITY)
    # What the control plane pushes (mutual TLS on): no certificate could pass the server check, so
    # the endpoints are left out; compiled with mutual TLS off they would still be there.
    inputs = MeshInputs.build(found, list(WORKLOADS), mtls_enabled=True)
    pushed = compile_snapshot(inputs, CLIENT, version="1")
    assert cluster(pushed.snapshot, SEARCH).endpoints == []
    plain = compile_snapshot(MeshInputs.build(found, list(WORKLOADS)), CLIENT, version="1")
    assert cluster(plain.snapshot, SEARCH).endpoints != []

    result = explain_request(found, list(WORKLOADS), CLIENT, "GET", "http://search.example.com/", [])
    assert result["result"] == "route"
    [destination] = result["destinations"]
    assert destination["cluster"] == SEARCH and destination["endpoints"] == []
    assert any("left out" in w for w in result["warnings"])


def test_explain_routes_to_sidecars_with_mutual_tls_as_before() -> None:
    result = explain_request(resources(SHOP), list(WORKLOADS), CLIENT, "GET", "http://orders.shop/", [])
    assert result["result"] == "route"
    [destination] = result["destinations"]
    assert {e["workload"] for e in destination["endpoints"]} == {
        "orders-v1",
        "orders-v2",
        "orders-plain",
        "orders-vm",
        "orders-old-vm",
    }
