"""AuthorizationPolicy → ``security.authorization``: which policies apply to a workload, and how they read."""

from __future__ import annotations

from loom.controlplane.compiler import MeshSettings
from loom.snapshot.security import AuthzAction, AuthzPolicy
from tests.unit.compiler.support import compile_for, messages, proxy_config, resources, round_trip, workload

WEB = workload("web-0", "shop", {"app": "web", "version": "v1"}, "10.3.0.1", app_ports=(8080, 9090))
"""Its sidecar fronts 8080 on 15006 and 9090 on 15007."""
CART = workload("cart-0", "shop", {"app": "cart"}, "10.3.0.2")
BILLING = workload("billing-0", "billing", {"app": "web"}, "10.4.0.1")
WORKLOADS = (WEB, CART, BILLING)

SELECTION = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: mesh-deny, namespace: loom-system}
spec:
  action: DENY
  rules: [{from: [{source: {notPrincipals: ["*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: every-web, namespace: loom-system}
spec:
  selector: {matchLabels: {app: web}}
  action: AUDIT
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: shop-wide, namespace: shop}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: web-only, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  rules: [{to: [{operation: {methods: [GET]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: everything, namespace: shop}
spec:
  selector: {}
  action: DENY
"""


def policies(found: list, proxy=WEB, mesh: MeshSettings | None = None) -> list[AuthzPolicy]:  # type: ignore[type-arg]
    compiled = compile_for(found, proxy, WORKLOADS, mesh=mesh)
    round_trip(compiled.snapshot)
    proxy_config(compiled.snapshot)  # the proxy compiles them
    return compiled.snapshot.security.authorization


def names(found: list[AuthzPolicy]) -> list[str]:
    return [p.name for p in found]


def test_selection_follows_istio() -> None:
    found = resources(SELECTION)
    assert names(policies(found, WEB)) == [
        "loom-system/every-web",  # root namespace + selector: workloads of any namespace
        "loom-system/mesh-deny",  # root namespace, no selector: the whole mesh
        "shop/everything",  # an empty selector selects every workload of its namespace
        "shop/shop-wide",
        "shop/web-only",
    ]
    assert names(policies(found, CART)) == ["loom-system/mesh-deny", "shop/everything", "shop/shop-wide"]
    assert names(policies(found, BILLING)) == ["loom-system/every-web", "loom-system/mesh-deny"]


def test_the_root_namespace_comes_from_the_mesh_settings() -> None:
    found = resources(SELECTION.replace("loom-system", "istio-system"))
    assert names(policies(found, CART)) == ["shop/everything", "shop/shop-wide"]
    istio = MeshSettings(root_namespace="istio-system")
    assert names(policies(found, CART, istio)) == [
        "istio-system/mesh-deny",
        "shop/everything",
        "shop/shop-wide",
    ]


def test_actions_and_empty_specs() -> None:
    by_name = {p.name: p for p in policies(resources(SELECTION), WEB)}
    assert by_name["shop/shop-wide"].action is AuthzAction.ALLOW
    assert by_name["shop/shop-wide"].rules == []  # spec: {} — deny-all
    assert by_name["shop/everything"].action is AuthzAction.DENY
    assert by_name["loom-system/every-web"].action is AuthzAction.AUDIT
    assert len(by_name["loom-system/every-web"].rules) == 1


FULL = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: full, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  rules:
  - from:
    - source:
        principals: [cluster.local/ns/shop/sa/front]
        notPrincipals: ["*/sa/batch"]
        requestPrincipals: ["https://idp/*"]
        namespaces: [shop]
        ipBlocks: ["10.0.0.0/8"]
        remoteIpBlocks: ["203.0.113.7"]
    - source: {serviceAccounts: [front, ops/cron], notServiceAccounts: [shop/batch]}
    to:
    - operation:
        hosts: [web.shop.svc.cluster.local]
        ports: ["8080", "9999"]
        notPorts: ["9090"]
        methods: [GET]
        paths: ["/api/{*}/items", "/static/*"]
        notPaths: [/api/internal]
    when:
    - {key: "request.headers[X-Env]", values: [prod]}
    - {key: destination.port, values: ["8080"], notValues: ["9090"]}
    - {key: "request.auth.claims[groups]", values: [admin]}
"""


def test_fields_translate_and_ports_become_the_sidecars() -> None:
    (policy,) = policies(resources(FULL))
    assert policy.name == "shop/full"
    (rule,) = policy.rules
    first, second = rule.sources
    assert first.principals == ["cluster.local/ns/shop/sa/front"]
    assert first.not_principals == ["*/sa/batch"]
    assert first.request_principals == ["https://idp/*"]
    assert first.namespaces == ["shop"]
    assert first.ip_blocks == ["10.0.0.0/8"]
    assert first.remote_ip_blocks == ["203.0.113.7"]
    assert second.principals == ["*/ns/shop/sa/front", "*/ns/ops/sa/cron"]
    assert second.not_principals == ["*/ns/shop/sa/batch"]
    (operation,) = rule.operations
    assert operation.hosts == ["web.shop.svc.cluster.local"]
    # 8080 and 9090 are fronted by the sidecar on 15006 and 15007; 9999 is not fronted.
    assert operation.ports == [15006, 9999]
    assert operation.not_ports == [15007]
    assert operation.methods == ["GET"]
    assert operation.paths == ["/api/{*}/items", "/static/*"]
    assert operation.not_paths == ["/api/internal"]
    headers, port, claims = rule.conditions
    assert (headers.key, headers.values) == ("request.headers[X-Env]", ["prod"])
    assert (port.key, port.values, port.not_values) == ("destination.port", ["15006"], ["15007"])
    assert (claims.key, claims.values) == ("request.auth.claims[groups]", ["admin"])


UNSUPPORTED = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext-authz, namespace: shop}
spec:
  action: CUSTOM
  provider: {name: opa}
  rules: [{to: [{operation: {paths: [/admin]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: at-gateway, namespace: shop}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: ingress}]
  rules: [{}]
"""


def test_custom_and_target_refs_are_reported_and_left_out() -> None:
    compiled = compile_for(resources(UNSUPPORTED), WEB, WORKLOADS)
    assert compiled.snapshot.security.authorization == []
    found = {w.resource: w for w in compiled.warnings}
    custom = found["AuthorizationPolicy shop/ext-authz"]
    assert custom.path == "spec.action" and custom.line == 6
    assert 'action CUSTOM (external authorizer "opa") is not supported' in custom.message
    assert "LM1003" in custom.message
    gateway = found["AuthorizationPolicy shop/at-gateway"]
    assert gateway.path == "spec.targetRefs"
    assert "not to sidecars" in gateway.message


INVALID = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow, namespace: shop}
spec:
  rules:
  - to: [{operation: {ports: [http]}}]
  - from: [{source: {ipBlocks: [10.0.0.0/8, not-an-ip]}}]
  - to: [{operation: {paths: ["/a/{**}/b/{*}"]}}]
  - when: [{key: "request.header[x]", values: ["1"]}]
  - to: [{operation: {methods: [GET]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny, namespace: shop}
spec:
  action: DENY
  rules:
  - from: [{source: {ipBlocks: [not-an-ip], namespaces: [evil]}}]
    when: [{key: "experimental.envoy.filters.x[y]", values: ["1"]}]
"""


def test_values_the_proxy_cannot_use_follow_istio_and_err_towards_refusing() -> None:
    compiled = compile_for(resources(INVALID), WEB, WORKLOADS)
    by_name = {p.name: p for p in compiled.snapshot.security.authorization}
    allow, deny = by_name["shop/allow"], by_name["shop/deny"]
    # ALLOW: each rule with an unusable value is left out (it would match nothing).
    assert len(allow.rules) == 1
    assert allow.rules[0].operations[0].methods == ["GET"]
    # DENY: the unusable value (and the unknown condition) is left out; the rest still denies.
    (rule,) = deny.rules
    assert rule.sources[0].ip_blocks == []
    assert rule.sources[0].namespaces == ["evil"]
    assert rule.conditions == []
    text = messages(compiled)
    assert any("'http' is not a port number" in m and "the rule is left out" in m for m in text)
    assert any("'not-an-ip' is not an IP address" in m and "the rule is left out" in m for m in text)
    assert any("{**} must be the last operator" in m for m in text)
    assert any("unknown condition key 'request.header[x]'" in m for m in text)
    assert any("'not-an-ip' is not an IP address" in m and "this DENY rule matches more" in m for m in text)
    assert any("Envoy filter metadata" in m for m in text)
    proxy_config(compiled.snapshot)


def test_authorization_policies_are_no_longer_reported_as_not_enforced() -> None:
    compiled = compile_for(resources(SELECTION), WEB, WORKLOADS)
    assert not [m for m in messages(compiled) if "not enforced" in m]


def test_the_same_inputs_give_the_same_policies() -> None:
    found = resources(SELECTION, FULL)
    once = compile_for(found, WEB, WORKLOADS).snapshot.security
    again = compile_for(list(reversed(found)), WEB, WORKLOADS).snapshot.security
    assert once == again
