"""Gateway API HTTPRoutes attached to Services (GAMMA)."""

from __future__ import annotations

from collections.abc import Callable

from loom.controlplane.compiler import Compiled
from loom.controlplane.workloads import Workload
from loom.proxy.codec.head import RequestHead
from loom.snapshot.model import HeaderMatch, RouteMatch, StringMatch
from tests.unit.compiler.support import (
    by_name,
    cluster,
    compile_for,
    messages,
    resources,
    round_trip,
    route_tables,
    routes,
    seed_mesh,
    svc,
    weights,
    workload,
)

MY_APP = svc("my-app")
V1 = f"outbound|80||{svc('my-app-v1')}"
V2 = f"outbound|80||{svc('my-app-v2')}"


def http_route(
    rules: str, *, name: str = "my-app", namespace: str = "default", parent: str = "my-app"
) -> str:
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  parentRefs:
  - {{group: "", kind: Service, name: {parent}, namespace: default, port: 80}}
  rules:
{rules}
"""


def compile_routes(*texts: str, proxy: Workload | None = None) -> Compiled:
    compiled = compile_for([*seed_mesh(), *resources(*texts)], proxy or by_name("sleep"))
    round_trip(compiled.snapshot)
    route_tables(compiled.snapshot)
    return compiled


def test_a_weighted_split() -> None:
    compiled = compile_routes(
        http_route("""
  - backendRefs:
    - {name: my-app-v1, port: 80, weight: 90}
    - {name: my-app-v2, port: 80, weight: 10}
    timeouts: {request: 5s}
""")
    )
    [route] = routes(compiled.snapshot, MY_APP)
    assert route.name == "default.my-app.0"
    assert route.matches == [RouteMatch(path=StringMatch(prefix="/"))]
    assert weights(route) == {V1: 90, V2: 10}
    assert route.route is not None and route.route.timeout == 5.0 and route.route.retry is None
    assert [e.workload for e in cluster(compiled.snapshot, V2).endpoints] == ["my-app-v2"]
    assert compiled.warnings == ()


def test_matches_are_ordered_by_precedence(make_head: Callable[..., RequestHead]) -> None:
    compiled = compile_routes(
        http_route("""
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: my-app-v1, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /api/}, headers: [{name: X-Canary, value: "yes"}]}]
    backendRefs: [{name: my-app-v2, port: 80}]
  - matches: [{path: {type: Exact, value: /api/health}}]
    backendRefs: [{name: my-app-v1, port: 80}]
  - matches:
    - path: {type: PathPrefix, value: /api}
      method: POST
      queryParams: [{name: q, value: "1", type: RegularExpression}]
    backendRefs: [{name: my-app-v2, port: 80}]
""")
    )
    found = routes(compiled.snapshot, MY_APP)
    assert [r.matches[0].path for r in found] == [
        StringMatch(exact="/api/health"),
        StringMatch(exact="/api"),  # PathPrefix /api with a method beats the one with a header
        StringMatch(exact="/api"),
        StringMatch(prefix="/"),
    ]
    with_method, with_header = found[1], found[2]
    assert [m.path for m in with_method.matches] == [StringMatch(exact="/api"), StringMatch(prefix="/api/")]
    assert with_method.matches[0].method == StringMatch(exact="POST")
    assert with_method.matches[0].query_params == {"q": StringMatch(regex="1")}
    assert with_header.matches[0].headers == {"x-canary": HeaderMatch(exact="yes")}
    vh = route_tables(compiled.snapshot)["outbound"].find(b"my-app", None)
    assert vh is not None
    # Path prefixes match whole path elements.
    for path, expected in ((b"/apix", V1), (b"/api/v1", V1), (b"/api/health", V1)):
        matched = vh.match(make_head(path=path), 80)
        assert matched is not None and matched.clusters == (expected,), path
    matched = vh.match(make_head(path=b"/api/v1", headers=[(b"x-canary", b"yes")]), 80)
    assert matched is not None and matched.clusters == (V2,)


def test_filters() -> None:
    compiled = compile_routes(
        http_route("""
  - matches: [{path: {type: PathPrefix, value: /old}}]
    filters:
    - type: RequestRedirect
      requestRedirect:
        scheme: https
        hostname: example.com
        path: {type: ReplaceFullPath, replaceFullPath: /new}
  - matches: [{path: {type: PathPrefix, value: /v1}}]
    filters:
    - type: URLRewrite
      urlRewrite: {hostname: internal, path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-a, value: "1"}], add: [{name: x-b, value: "2"}], remove: [x-c]}
    - type: ResponseHeaderModifier
      responseHeaderModifier: {set: [{name: x-served-by, value: loom}]}
    - type: RequestMirror
      requestMirror: {backendRef: {name: my-app-v2, port: 80}, percent: 25}
    backendRefs: [{name: my-app-v1, port: 80}]
""")
    )
    found = routes(compiled.snapshot, MY_APP)
    redirects = [r.redirect for r in found if r.redirect is not None]
    assert {(r.uri, r.authority, r.scheme, r.port, r.code) for r in redirects} == {
        ("/new", "example.com", "https", 443, 302)
    }
    rewrites = [r for r in found if r.route is not None]
    # /v1 → /v2 and /v1/x → /v2/x: one route per half of the path prefix.
    assert [
        (r.matches[0].path, r.route.rewrite and r.route.rewrite.uri_prefix) for r in rewrites if r.route
    ] == [
        (StringMatch(exact="/v1"), "/v2"),
        (StringMatch(prefix="/v1/"), "/v2/"),
    ]
    first = rewrites[0]
    assert first.route is not None and first.route.rewrite is not None
    assert first.route.rewrite.authority == "internal"
    assert first.request_headers is not None
    assert (first.request_headers.set, first.request_headers.add, first.request_headers.remove) == (
        {"x-a": "1"},
        {"x-b": "2"},
        ["x-c"],
    )
    assert first.response_headers is not None and first.response_headers.set == {"x-served-by": "loom"}
    assert first.route.mirror is not None
    assert (first.route.mirror.cluster, first.route.mirror.percentage) == (V2, 25.0)
    assert compiled.warnings == ()


def test_replace_full_path_under_a_prefix_becomes_a_regex(make_head: Callable[..., RequestHead]) -> None:
    compiled = compile_routes(
        http_route("""
  - matches: [{path: {type: PathPrefix, value: /a.b}}]
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /fixed}}}]
    backendRefs: [{name: my-app-v1, port: 80}]
""")
    )
    exact, prefix = routes(compiled.snapshot, MY_APP)
    assert exact.matches[0].path == StringMatch(exact="/a.b")
    assert prefix.matches[0].path == StringMatch(regex=r"/a\.b/.*")
    vh = route_tables(compiled.snapshot)["outbound"].find(b"my-app", None)
    assert vh is not None
    matched = vh.match(make_head(path=b"/a.b/c/d"), 80)
    assert matched is not None and matched.rewrite_path(b"/a.b/c/d") == b"/fixed"


def test_no_backend_answers_500() -> None:
    compiled = compile_routes(
        http_route("""
  - matches: [{path: {type: Exact, value: /nothing}}]
  - backendRefs: [{name: my-app-v1, port: 80, weight: 0}]
""")
    )
    first, second = routes(compiled.snapshot, MY_APP)
    assert first.direct_response is not None and first.direct_response.status == 500
    assert second.direct_response is not None and second.direct_response.status == 500


def test_backends_that_cannot_be_used_are_dropped_with_a_warning() -> None:
    compiled = compile_routes(
        http_route("""
  - backendRefs:
    - {name: orders-api, namespace: production, port: 80}
    - {name: bucket, group: storage.example.com, kind: Bucket}
    - {name: my-app-v1}
    - name: my-app-v2
      port: 80
      filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: a, value: b}]}}]
""")
    )
    [route] = routes(compiled.snapshot, MY_APP)
    assert weights(route) == {V1: 1, V2: 1}  # my-app-v1 has a single port: no `port` needed
    found = " | ".join(messages(compiled))
    for expected in ("ReferenceGrant", "only Service backends", "filters on one backend"):
        assert expected in found


def test_a_consumer_route_applies_only_in_its_namespace_and_first() -> None:
    producer = http_route("  - backendRefs: [{name: my-app-v1, port: 80}]")
    consumer = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: my-view, namespace: production}
spec:
  parentRefs: [{group: "", kind: Service, name: my-app, namespace: default}]
  rules:
  - backendRefs: [{name: orders-api, port: 80}]
"""
    in_production = compile_routes(producer, consumer, proxy=by_name("api-service", "production"))
    in_default = compile_routes(producer, consumer)
    orders = f"outbound|80||{svc('orders-api', 'production')}"
    assert weights(routes(in_production.snapshot, MY_APP)[0]) == {orders: 1}
    assert weights(routes(in_default.snapshot, MY_APP)[0]) == {V1: 1}


def test_a_gateway_parent_is_not_the_meshs() -> None:
    text = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: edge, namespace: default}
spec:
  parentRefs: [{name: my-gateway}]
  rules:
  - backendRefs: [{name: my-app-v2, port: 80}]
"""
    compiled = compile_routes(text)
    assert routes(compiled.snapshot, MY_APP)[0].name == "default"


def test_a_virtual_service_takes_precedence_over_an_http_route() -> None:
    vs = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: my-app, namespace: default}
spec:
  hosts: [my-app]
  http:
  - route: [{destination: {host: my-app-v2}}]
"""
    compiled = compile_routes(vs, http_route("  - backendRefs: [{name: my-app-v1, port: 80}]"))
    assert weights(routes(compiled.snapshot, MY_APP)[0]) == {V2: 100}
    [warning] = compiled.warnings
    assert warning.resource == "HTTPRoute default/my-app"


def test_retry_and_backend_timeout() -> None:
    compiled = compile_routes(
        http_route("""
  - backendRefs: [{name: my-app-v1, port: 80}]
    timeouts: {request: 10s, backendRequest: 2s}
    retry: {attempts: 3, codes: [502, 503], backoff: 100ms}
  - matches: [{path: {type: Exact, value: /x}}]
    backendRefs: [{name: my-app-v1, port: 80}]
    timeouts: {backendRequest: 1s}
""")
    )
    exact, catch_all = routes(compiled.snapshot, MY_APP)
    assert catch_all.route is not None and exact.route is not None
    retry = catch_all.route.retry
    assert retry is not None
    assert (retry.attempts, retry.per_try_timeout, retry.backoff_base) == (3, 2.0, 0.1)
    assert retry.retry_on == ["connect-failure", "refused-stream", "unavailable", "cancelled", "502", "503"]
    default = exact.route.retry
    assert default is not None and (default.attempts, default.per_try_timeout) == (2, 1.0)


def test_an_unknown_parent_is_reported_when_indexing() -> None:
    from loom.controlplane.compiler import MeshInputs

    inputs = MeshInputs.build(
        [*seed_mesh(), *resources(http_route("  - backendRefs: [{name: x, port: 1}]", parent="ghost"))], []
    )
    assert any("no known Service" in w.message for w in inputs.warnings)


def test_section_name_selects_a_port() -> None:
    multi = """
apiVersion: v1
kind: Service
metadata: {name: multi, namespace: default}
spec:
  selector: {app: multi}
  ports: [{name: http, port: 80}, {name: http-admin, port: 9000}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: multi-admin, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: multi, sectionName: http-admin}]
  rules:
  - backendRefs: [{name: my-app-v2, port: 80}]
"""
    proxy = workload("c", "default", {"app": "c"}, "10.0.0.99")
    compiled = compile_for([*seed_mesh(), *resources(multi)], proxy)
    assert routes(compiled.snapshot, svc("multi"), 80)[0].name == "default"
    assert weights(routes(compiled.snapshot, svc("multi"), 9000)[0]) == {V2: 1}
