"""PeerAuthentication → each inbound listener's mTLS mode: precedence, inheritance, port-level modes."""

from __future__ import annotations

from loom.api import Resource
from loom.controlplane.compiler import Compiled, CompileWarning, MeshInputs, MeshSettings, compile_snapshot
from loom.controlplane.workloads import Workload
from loom.snapshot.model import Direction
from loom.snapshot.security import MtlsMode
from tests.unit.compiler.support import (
    SEED_EXAMPLES,
    SEED_WORKLOADS,
    by_name,
    compile_for,
    listener,
    load_file,
    messages,
    resources,
    round_trip,
    seed_mesh,
    workload,
)

MTLS = MeshSettings(mtls_enabled=True)

SHOP = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}, {name: http-admin, port: 9000, targetPort: 9000}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec:
  selector: {app: db}
  ports: [{name: tcp-pg, port: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: other}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
"""

WEB = workload("web-0", "shop", {"app": "web", "tier": "front"}, "10.3.0.1", app_ports=(8080, 9000))
DB = workload("db-0", "shop", {"app": "db"}, "10.3.0.2", app_ports=(5432,))
OTHER = workload("web-0", "other", {"app": "web"}, "10.4.0.1")
SHOP_WORKLOADS = (WEB, DB, OTHER)


def policy(name: str, namespace: str, mode: str | None = None, *, selector: str = "", ports: str = "") -> str:
    lines = [
        "apiVersion: security.istio.io/v1",
        "kind: PeerAuthentication",
        f"metadata: {{name: {name}, namespace: {namespace}}}",
        "spec:",
    ]
    if selector:
        lines.append(f"  selector: {{matchLabels: {{{selector}}}}}")
    lines.append(f"  mtls: {{mode: {mode}}}" if mode is not None else "  mtls: {}")
    if ports:
        lines.append(f"  portLevelMtls: {{{ports}}}")
    return "\n".join(lines) + "\n"


def compile_shop(*policies: str, proxy: Workload = WEB) -> Compiled:
    return compile_for(resources(SHOP, *policies), proxy, SHOP_WORKLOADS, mesh=MTLS)


def mtls_warnings(compiled: Compiled) -> list[CompileWarning]:
    """The warnings about PeerAuthentications (the shop's TCP port has one of its own)."""
    return [w for w in compiled.warnings if (w.resource or "").startswith("PeerAuthentication")]


def modes(compiled: Compiled) -> dict[str, MtlsMode]:
    snapshot = round_trip(compiled.snapshot)
    return {li.name: li.mtls for li in snapshot.listeners if li.direction is Direction.INBOUND}


def test_without_a_policy_inbound_listeners_are_permissive() -> None:
    compiled = compile_shop()
    assert modes(compiled) == {"inbound-8080": MtlsMode.PERMISSIVE, "inbound-9000": MtlsMode.PERMISSIVE}
    assert listener(compiled.snapshot, "outbound").mtls is MtlsMode.DISABLE
    assert mtls_warnings(compiled) == []


def test_mesh_namespace_and_workload_policies_in_that_order_of_precedence() -> None:
    mesh = policy("default", "loom-system", "STRICT")
    namespace = policy("default", "shop", "PERMISSIVE")
    selected = policy("web", "shop", "DISABLE", selector="app: web")
    assert set(modes(compile_shop(mesh)).values()) == {MtlsMode.STRICT}
    assert set(modes(compile_shop(mesh, namespace)).values()) == {MtlsMode.PERMISSIVE}
    assert set(modes(compile_shop(mesh, namespace, selected)).values()) == {MtlsMode.DISABLE}
    # The workload policy selects web only; db keeps the namespace's mode.
    assert modes(compile_shop(mesh, namespace, selected, proxy=DB)) == {"inbound-5432": MtlsMode.PERMISSIVE}
    # The mesh-wide policy reaches other namespaces; the shop's do not.
    assert set(modes(compile_shop(mesh, namespace, selected, proxy=OTHER)).values()) == {MtlsMode.STRICT}


def test_unset_inherits_from_the_level_above() -> None:
    mesh = policy("default", "loom-system", "STRICT")
    assert set(modes(compile_shop(mesh, policy("default", "shop", "UNSET"))).values()) == {MtlsMode.STRICT}
    assert set(modes(compile_shop(mesh, policy("default", "shop"))).values()) == {MtlsMode.STRICT}
    namespace = policy("default", "shop", "DISABLE")
    unset = policy("web", "shop", "UNSET", selector="app: web")
    assert set(modes(compile_shop(mesh, namespace, unset)).values()) == {MtlsMode.DISABLE}
    absent = policy("web", "shop", selector="app: web")
    assert set(modes(compile_shop(mesh, namespace, absent)).values()) == {MtlsMode.DISABLE}


def test_port_level_mtls_is_keyed_by_the_target_port() -> None:
    compiled = compile_shop(
        policy("default", "shop", "STRICT"),
        policy("web", "shop", ports="9000: {mode: DISABLE}, 8080: {mode: UNSET}", selector="app: web"),
    )
    # 8080 UNSET inherits the workload's mode (no mode of its own: the namespace's STRICT).
    assert modes(compiled) == {"inbound-8080": MtlsMode.STRICT, "inbound-9000": MtlsMode.DISABLE}
    assert mtls_warnings(compiled) == []


def test_port_level_mtls_on_a_service_port_is_reported() -> None:
    compiled = compile_shop(
        policy("web", "shop", "STRICT", ports="80: {mode: PERMISSIVE}", selector="app: web")
    )
    assert set(modes(compiled).values()) == {MtlsMode.STRICT}
    [warning] = mtls_warnings(compiled)
    assert warning.resource == "PeerAuthentication shop/web"
    assert warning.path == "spec.portLevelMtls[80]"
    assert "not a port the sidecar of shop/web-0 fronts (its app ports: 8080, 9000)" in warning.message


def test_tcp_inbound_listeners_get_their_mode_too() -> None:
    compiled = compile_shop(policy("default", "shop", "STRICT"), proxy=DB)
    assert modes(compiled) == {"inbound-5432": MtlsMode.STRICT}


def test_the_root_namespace_comes_from_mesh_config() -> None:
    operator = """
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: {name: mesh, namespace: istio-system}
spec:
  meshConfig: {rootNamespace: istio-system}
"""
    found = resources(SHOP, operator, policy("default", "istio-system", "STRICT"))
    inputs = MeshInputs.build(found, list(SHOP_WORKLOADS), mtls_enabled=True)
    assert inputs.mesh.root_namespace == "istio-system" and inputs.mesh.mtls_enabled
    assert set(modes(compile_snapshot(inputs, WEB, version="1")).values()) == {MtlsMode.STRICT}
    # Under the default root namespace, the same policy is only istio-system's own.
    found = resources(SHOP, policy("default", "istio-system", "STRICT"))
    inputs = MeshInputs.build(found, list(SHOP_WORKLOADS), mtls_enabled=True)
    assert set(modes(compile_snapshot(inputs, WEB, version="1")).values()) == {MtlsMode.PERMISSIVE}


def test_a_selector_policy_in_the_root_namespace_applies_to_nothing() -> None:
    compiled = compile_shop(policy("web", "loom-system", "STRICT", selector="app: web"))
    assert set(modes(compiled).values()) == {MtlsMode.PERMISSIVE}
    [warning] = mtls_warnings(compiled)
    assert (warning.resource, warning.path) == ("PeerAuthentication loom-system/web", "spec.selector")
    assert "applies to no workload" in warning.message


def test_an_empty_selector_is_a_namespace_wide_policy() -> None:
    text = policy("default", "shop", "STRICT").replace("spec:\n", "spec:\n  selector: {matchLabels: {}}\n")
    assert set(modes(compile_shop(text, proxy=DB)).values()) == {MtlsMode.STRICT}


def test_competing_policies_keep_the_first_by_file_order_and_say_so() -> None:
    # Each text is its own file (t1.yaml, t2.yaml, ...): the first written wins, whatever its name.
    compiled = compile_shop(policy("zz-strict", "shop", "STRICT"), policy("aa-disable", "shop", "DISABLE"))
    assert set(modes(compiled).values()) == {MtlsMode.STRICT}
    [warning] = mtls_warnings(compiled)
    assert warning.resource == "PeerAuthentication shop/aa-disable"
    assert "PeerAuthentication shop/zz-strict (t1.yaml:1) is already the policy of namespace shop" in (
        warning.message
    )
    compiled = compile_shop(
        policy("by-app", "shop", "DISABLE", selector="app: web"),
        policy("by-tier", "shop", "STRICT", selector="tier: front"),
    )
    assert set(modes(compiled).values()) == {MtlsMode.DISABLE}
    [warning] = mtls_warnings(compiled)
    assert warning.resource == "PeerAuthentication shop/by-tier"
    assert "is already the workload policy for shop/web-0" in warning.message
    # The competition is reported to the proxies it is about only.
    both = (
        policy("by-app", "shop", "DISABLE", selector="app: web"),
        policy("by-tier", "shop", "STRICT", selector="tier: front"),
    )
    assert mtls_warnings(compile_shop(*both, proxy=DB)) == []


def test_competing_mesh_wide_policies() -> None:
    compiled = compile_shop(policy("b", "loom-system", "DISABLE"), policy("a", "loom-system", "STRICT"))
    assert set(modes(compiled).values()) == {MtlsMode.DISABLE}
    [warning] = mtls_warnings(compiled)
    assert warning.resource == "PeerAuthentication loom-system/a"
    assert "is already the mesh-wide policy" in warning.message


def _seed(*names: str) -> list[Resource]:
    return [*seed_mesh(), *(r for name in names for r in load_file(SEED_EXAMPLES / name))]


def test_seed_strict_mtls_in_production() -> None:
    for name in ("002-strict-mtls.yaml", "003-default-strict.yaml"):
        inputs = MeshInputs.build(_seed(name), list(SEED_WORKLOADS), mtls_enabled=True)
        assert inputs.warnings == ()  # enforced now: no "not enforced" warning
        for proxy in SEED_WORKLOADS:
            expected = MtlsMode.STRICT if proxy.namespace == "production" else MtlsMode.PERMISSIVE
            compiled = compile_snapshot(inputs, proxy, version="1")
            assert set(modes(compiled).values()) == {expected}, proxy.key


def test_both_seed_policies_together_compete_for_production() -> None:
    inputs = MeshInputs.build(
        _seed("002-strict-mtls.yaml", "003-default-strict.yaml"), list(SEED_WORKLOADS), mtls_enabled=True
    )
    [warning] = inputs.warnings
    assert warning.resource == "PeerAuthentication production/default"
    assert "production/strict-mtls" in warning.message
    compiled = compile_snapshot(inputs, by_name("api-service", "production"), version="1")
    assert modes(compiled) == {"inbound-8080": MtlsMode.STRICT}


def test_with_mtls_off_every_listener_is_disable_and_the_policy_is_reported() -> None:
    found = _seed("002-strict-mtls.yaml")
    proxy = by_name("api-service", "production")
    off = compile_for(found, proxy)
    assert off == compile_for(found, proxy, mesh=MeshSettings(mtls_enabled=False))
    assert {li.mtls for li in off.snapshot.listeners} == {MtlsMode.DISABLE}
    assert any("not enforced" in m for m in messages(off))
    on = compile_for(found, proxy, mesh=MTLS)
    assert not any("not enforced" in m and "PeerAuthentication" in m for m in messages(on))
