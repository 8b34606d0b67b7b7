"""One trust domain: the control plane's (its CA signs every workload certificate in it) is the one
snapshots use, for the node and for the SPIFFE IDs a cluster expects; a ``meshConfig.trustDomain``
that differs is overruled with a warning that names both."""

from __future__ import annotations

import json

from loom.controlplane.compiler import MeshInputs, MeshSettings, compile_snapshot
from loom.controlplane.push import PushEngine
from loom.controlplane.registry import WorkloadRegistry
from tests.unit.compiler.support import cluster, resources
from tests.unit.compiler.test_mtls import CLIENT, CLUSTER, SHOP, WORKLOADS, sa

OPERATOR = """
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: {{name: mesh, namespace: loom-system}}
spec:
  meshConfig:
    accessLogFile: /dev/stdout
    trustDomain: {domain}
"""
NOT_SET = """
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: {name: mesh, namespace: loom-system}
spec:
  meshConfig: {accessLogFile: /dev/stdout}
"""


def compiled_in(found, trust_domain: str | None, mesh: MeshSettings | None = None):
    inputs = MeshInputs.build(found, list(WORKLOADS), mesh, mtls_enabled=True, trust_domain=trust_domain)
    return inputs, compile_snapshot(inputs, CLIENT, version="1")


def server_identities(compiled) -> list[str]:
    tls = cluster(compiled.snapshot, CLUSTER).tls
    assert tls is not None
    return tls.server_identities


def trust_warnings(compiled) -> list[str]:
    return [str(w) for w in compiled.warnings if "trust" in w.message]


def test_the_control_plane_s_trust_domain_is_the_snapshots() -> None:
    _, compiled = compiled_in(resources(SHOP), "example.org")
    assert compiled.snapshot.node.trust_domain == "example.org"
    expected = [sa(n, domain="example.org") for n in ("orders", "orders-canary", "orders-vm")]
    assert server_identities(compiled) == expected
    assert trust_warnings(compiled) == []  # nothing said otherwise


def test_a_mesh_config_trust_domain_that_differs_is_overruled_with_a_warning() -> None:
    found = resources(SHOP, OPERATOR.format(domain="example.org"))
    inputs, compiled = compiled_in(found, "cluster.local")
    assert inputs.mesh.trust_domain == compiled.snapshot.node.trust_domain == "cluster.local"
    assert server_identities(compiled) == [sa(n) for n in ("orders", "orders-canary", "orders-vm")]
    assert inputs.mesh.access_log_file == "/dev/stdout"  # the rest of meshConfig still applies
    [warning] = [w for w in compiled.warnings if "trust" in w.message]
    assert (warning.file, warning.line) == ("t1.yaml", 8)
    assert warning.resource == "IstioOperator loom-system/mesh"
    assert warning.path == "spec.meshConfig.trustDomain"
    assert "meshConfig.trustDomain 'example.org'" in warning.message
    assert "control plane's trust domain 'cluster.local'" in warning.message
    assert "--trust-domain example.org" in warning.message


def test_the_same_trust_domain_in_both_is_no_warning() -> None:
    for operator in (OPERATOR.format(domain="example.org"), NOT_SET):
        found = resources(SHOP, operator)
        domain = "example.org"
        _, compiled = compiled_in(found, domain)
        assert compiled.snapshot.node.trust_domain == domain and trust_warnings(compiled) == []
    # a meshConfig that sets cluster.local explicitly is a choice too
    _, compiled = compiled_in(resources(SHOP, OPERATOR.format(domain="cluster.local")), "example.org")
    assert compiled.snapshot.node.trust_domain == "example.org"
    assert len(trust_warnings(compiled)) == 1


def test_without_the_control_plane_s_the_mesh_config_s_applies() -> None:
    _, compiled = compiled_in(resources(SHOP, OPERATOR.format(domain="example.org")), None)
    assert compiled.snapshot.node.trust_domain == "example.org" and trust_warnings(compiled) == []


def test_settings_given_with_another_trust_domain_are_overruled_too() -> None:
    _, compiled = compiled_in(resources(SHOP), "cluster.local", MeshSettings(trust_domain="example.org"))
    assert compiled.snapshot.node.trust_domain == "cluster.local"
    [warning] = trust_warnings(compiled)
    assert "'example.org'" in warning and "'cluster.local'" in warning


async def test_the_push_engine_compiles_in_its_trust_domain() -> None:
    registry = WorkloadRegistry()
    for w in WORKLOADS:
        registry.register(w)
    push = PushEngine(registry, mtls_enabled=True, trust_domain="example.org")
    push.resources = resources(SHOP, OPERATOR.format(domain="cluster.local"))
    push.recompile()
    state = push.proxies[CLIENT.key]
    sent = json.loads(state.payload.joined())["snapshot"]
    assert sent["node"]["trust_domain"] == "example.org"
    [orders] = [c for c in sent["clusters"] if c["name"] == CLUSTER]
    assert sa("orders", domain="example.org") in orders["tls"]["server_identities"]
    assert any("meshConfig.trustDomain 'cluster.local'" in w for w in state.warnings)
