"""VirtualService rules → routes: matches, actions, precedence, host resolution, what is dropped."""

from __future__ import annotations

import pytest

from loom.controlplane.compiler import Compiled
from loom.controlplane.workloads import Workload
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

REVIEWS = svc("reviews")
SLEEP = by_name("sleep")


def vs(
    http: str, *, name: str = "reviews", namespace: str = "default", hosts: str = "[reviews]", extra: str = ""
) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  hosts: {hosts}
{extra}  http:
{http}
"""


SUBSETS = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
"""


def compile_vs(*texts: str, proxy: Workload = SLEEP) -> Compiled:
    compiled = compile_for([*seed_mesh(), *resources(SUBSETS, *texts)], proxy)
    round_trip(compiled.snapshot)
    route_tables(compiled.snapshot)
    return compiled


def test_match_conditions() -> None:
    compiled = compile_vs(
        vs("""
  - name: everything
    match:
    - uri: {prefix: /api}
      ignoreUriCase: true
      method: {exact: POST}
      authority: {regex: "reviews.*"}
      headers:
        x-user: {exact: jason}
        x-debug: {}
      withoutHeaders:
        x-skip: {prefix: "y"}
      queryParams:
        page: {regex: "[0-9]+"}
        any: {}
    - uri: {exact: /health}
    route:
    - destination: {host: reviews, subset: v2}
""")
    )
    [route] = routes(compiled.snapshot, REVIEWS, 9080)
    assert route.name == "everything"
    first, second = route.matches
    assert first.path == StringMatch(prefix="/api") and first.ignore_uri_case
    assert first.method == StringMatch(exact="POST")
    assert first.authority == StringMatch(regex="reviews.*")
    assert first.headers == {"x-user": HeaderMatch(exact="jason"), "x-debug": HeaderMatch()}
    assert first.without_headers == {"x-skip": HeaderMatch(prefix="y")}
    assert first.query_params == {"page": StringMatch(regex="[0-9]+"), "any": StringMatch(regex=".*")}
    assert second.path == StringMatch(exact="/health")
    assert compiled.warnings == ()


@pytest.mark.parametrize(
    ("condition", "kept"),
    [
        ("sourceLabels: {app: sleep}", True),
        ("sourceLabels: {app: other}", False),
        ("sourceNamespace: default", True),
        ("sourceNamespace: production", False),
        ("gateways: [mesh]", True),
        ("gateways: [my-gateway]", False),
        ("port: 9080", True),
        ("port: 80", False),
        ("scheme: {exact: http}", True),
        ("scheme: {exact: https}", False),
    ],
)
def test_caller_conditions_are_decided_for_this_proxy(condition: str, kept: bool) -> None:
    compiled = compile_vs(
        vs(f"""
  - match:
    - {condition}
    route:
    - destination: {{host: reviews, subset: v2}}
  - route:
    - destination: {{host: reviews, subset: v1}}
""")
    )
    found = routes(compiled.snapshot, REVIEWS, 9080)
    if kept:
        assert len(found) == 2
        assert found[0].matches == [RouteMatch()]  # the condition itself is decided here
    else:
        assert [weights(r) for r in found] == [{f"outbound|9080|v1|{REVIEWS}": 100}]


def test_a_virtual_host_whose_rules_are_all_for_others_is_left_out() -> None:
    compiled = compile_vs(
        vs("""
  - match: [{sourceLabels: {app: productpage}}]
    route:
    - destination: {host: reviews, subset: v2}
""")
    )
    names = [vh.name for vh in compiled.snapshot.route_configs[0].virtual_hosts]
    assert f"{REVIEWS}:9080" not in names
    assert cluster(compiled.snapshot, f"outbound|9080||{REVIEWS}")  # the default cluster is still there


def test_route_actions() -> None:
    compiled = compile_vs(
        vs("""
  - name: all-the-things
    route:
    - destination: {host: reviews, subset: v1}
      weight: 3
    - destination: {host: reviews, subset: v2}
      weight: 1
    timeout: 3s
    retries:
      attempts: 4
      perTryTimeout: 500ms
      retryOn: "gateway-error,reset,502,retriable-headers"
      backoff: 10ms
    rewrite: {uri: /v2, authority: reviews.internal:9080}
    mirror: {host: reviews, subset: v2}
    mirrorPercentage: {value: 12.5}
    fault:
      delay: {fixedDelay: 2s, percentage: {value: 50}}
      abort: {httpStatus: 418, percentage: {value: 1.5}}
    headers:
      request: {set: {x-a: "1"}, add: {x-b: "2"}, remove: [x-c]}
      response: {set: {x-served-by: loom}}
""")
    )
    [route] = routes(compiled.snapshot, REVIEWS, 9080)
    action = route.route
    assert action is not None
    assert weights(route) == {f"outbound|9080|v1|{REVIEWS}": 3, f"outbound|9080|v2|{REVIEWS}": 1}
    assert action.timeout == 3.0
    retry = action.retry
    assert retry is not None
    assert (retry.attempts, retry.per_try_timeout, retry.retry_on) == (
        4,
        0.5,
        ["gateway-error", "reset", "502"],
    )
    assert (retry.backoff_base, retry.backoff_max) == (0.01, 0.1)
    assert action.rewrite is not None
    assert (action.rewrite.uri_prefix, action.rewrite.authority) == ("/v2", "reviews.internal:9080")
    assert action.mirror is not None
    assert (action.mirror.cluster, action.mirror.percentage) == (f"outbound|9080|v2|{REVIEWS}", 12.5)
    assert route.fault is not None and route.fault.delay is not None and route.fault.abort is not None
    assert (route.fault.delay.fixed, route.fault.delay.percentage) == (2.0, 50.0)
    assert (route.fault.abort.http_status, route.fault.abort.percentage) == (418, 1.5)
    assert route.request_headers is not None and route.response_headers is not None
    assert (route.request_headers.set, route.request_headers.add, route.request_headers.remove) == (
        {"x-a": "1"},
        {"x-b": "2"},
        ["x-c"],
    )
    assert route.response_headers.set == {"x-served-by": "loom"}
    [warning] = compiled.warnings
    assert warning.path == "spec.http[0].retries.retryOn"
    assert "'retriable-headers'" in warning.message
    assert (warning.file, warning.line) == ("t1.yaml", 19)


def test_retries_off() -> None:
    compiled = compile_vs(
        vs("""
  - route: [{destination: {host: reviews}}]
    retries: {attempts: 0}
  - route: [{destination: {host: reviews}}]
    retries: {perTryTimeout: 1s}
""")
    )
    first, second = routes(compiled.snapshot, REVIEWS, 9080)
    assert first.route is not None and first.route.retry is not None and first.route.retry.attempts == 0
    assert second.route is not None and second.route.retry is not None and second.route.retry.attempts == 0
    assert any("`attempts` is not set" in m for m in messages(compiled))


def test_fault_without_percentage_affects_no_request() -> None:
    compiled = compile_vs(
        vs("""
  - route: [{destination: {host: reviews}}]
    fault: {abort: {httpStatus: 503}, delay: {fixedDelay: 1s, percent: 20}}
""")
    )
    [route] = routes(compiled.snapshot, REVIEWS, 9080)
    assert route.fault is not None and route.fault.abort is not None and route.fault.delay is not None
    assert route.fault.abort.percentage == 0.0
    assert route.fault.delay.percentage == 20.0
    assert any("no request is aborted" in m for m in messages(compiled))


def test_redirect_and_direct_response() -> None:
    compiled = compile_vs(
        vs("""
  - match: [{uri: {exact: /old}}]
    redirect: {uri: /new, authority: example.com, scheme: https, derivePort: FROM_PROTOCOL_DEFAULT}
  - match: [{uri: {exact: /teapot}}]
    directResponse: {status: 418, body: {bytes: "aSdtIGEgdGVhcG90"}}
    headers: {response: {set: {content-type: text/plain}}}
  - match: [{uri: {exact: /gone}}]
    redirect: {uri: /x}
  - directResponse: {status: 503, body: {string: unavailable}}
""")
    )
    first, second, third, fourth = routes(compiled.snapshot, REVIEWS, 9080)
    assert first.redirect is not None
    assert (
        first.redirect.uri,
        first.redirect.authority,
        first.redirect.scheme,
        first.redirect.port,
        first.redirect.code,
    ) == (
        "/new",
        "example.com",
        "https",
        443,
        301,
    )
    assert second.direct_response is not None
    assert (second.direct_response.status, second.direct_response.body) == (418, "i'm a teapot")
    assert second.response_headers is not None and second.response_headers.set == {
        "content-type": "text/plain"
    }
    assert third.redirect is not None and third.redirect.code == 301 and third.redirect.port is None
    assert fourth.direct_response is not None and fourth.direct_response.body == "unavailable"


def test_mirrors_keep_the_first() -> None:
    compiled = compile_vs(
        vs("""
  - route: [{destination: {host: reviews, subset: v1}}]
    mirrors:
    - {destination: {host: reviews, subset: v2}}
    - {destination: {host: sleep}, percentage: {value: 5}}
""")
    )
    [route] = routes(compiled.snapshot, REVIEWS, 9080)
    assert route.route is not None and route.route.mirror is not None
    assert (route.route.mirror.cluster, route.route.mirror.percentage) == (
        f"outbound|9080|v2|{REVIEWS}",
        100.0,
    )
    assert any("only the first mirror" in m for m in messages(compiled))


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("[{destination: {host: reviews}, weight: 30}]", [100]),  # one destination gets everything
        (
            "[{destination: {host: reviews, subset: v1}, weight: 60},"
            " {destination: {host: reviews, subset: v2}, weight: 60}]",
            [60, 60],
        ),
        (
            "[{destination: {host: reviews, subset: v1}},"
            " {destination: {host: reviews, subset: v2}, weight: 1}]",
            [0, 1],
        ),
        ("[{destination: {host: reviews, subset: v1}}, {destination: {host: reviews, subset: v2}}]", [1, 1]),
    ],
)
def test_weights_are_relative_shares(given: str, expected: list[int]) -> None:
    compiled = compile_vs(vs(f"  - route: {given}"))
    [route] = routes(compiled.snapshot, REVIEWS, 9080)
    assert route.route is not None
    assert [d.weight for d in route.route.destinations] == expected


def test_headers_of_a_single_destination_join_the_rules() -> None:
    compiled = compile_vs(
        vs("""
  - route:
    - destination: {host: reviews}
      headers: {request: {set: {x-dest: "1"}}}
    headers: {request: {set: {x-rule: "1"}}}
""")
    )
    [route] = routes(compiled.snapshot, REVIEWS, 9080)
    assert route.request_headers is not None and route.request_headers.set == {"x-rule": "1", "x-dest": "1"}


def test_the_first_virtual_service_for_a_host_wins() -> None:
    first = vs("  - route: [{destination: {host: reviews, subset: v1}}]", name="first")
    second = vs("  - route: [{destination: {host: reviews, subset: v2}}]", name="second")
    compiled = compile_vs(first, second)
    [route] = routes(compiled.snapshot, REVIEWS, 9080)
    assert weights(route) == {f"outbound|9080|v1|{REVIEWS}": 100}
    [warning] = compiled.warnings
    assert warning.resource == "VirtualService default/second"
    assert "already routed by VirtualService default/first" in warning.message
    # By file, then document, whatever order the resources are given in.
    again = compile_for([*seed_mesh(), *reversed(resources(SUBSETS, first, second))], SLEEP)
    assert again.snapshot == compiled.snapshot


def test_an_exact_host_beats_a_wildcard() -> None:
    wildcard = vs(
        "  - route: [{destination: {host: reviews, subset: v2}}]",
        name="all",
        hosts='["*.default.svc.cluster.local"]',
    )
    exact = vs("  - route: [{destination: {host: reviews, subset: v1}}]", name="exact")
    compiled = compile_vs(wildcard, exact)
    assert weights(routes(compiled.snapshot, REVIEWS, 9080)[0]) == {f"outbound|9080|v1|{REVIEWS}": 100}
    # The wildcard still routes the other services of the namespace.
    assert weights(routes(compiled.snapshot, svc("my-app"))[0]) == {f"outbound|9080|v2|{REVIEWS}": 100}


@pytest.mark.parametrize(
    ("host", "namespace"),
    [
        ("reviews", "default"),
        ("reviews.default", "production"),
        ("reviews.default.svc", "production"),
        ("reviews.default.svc.cluster.local", "production"),
    ],
)
def test_host_names_resolve_relative_to_the_virtual_services_namespace(host: str, namespace: str) -> None:
    text = vs(
        f"  - route: [{{destination: {{host: {host}, subset: v2}}}}]", namespace=namespace, hosts=f"[{host}]"
    )
    compiled = compile_vs(text)
    assert weights(routes(compiled.snapshot, REVIEWS, 9080)[0]) == {f"outbound|9080|v2|{REVIEWS}": 100}


def test_export_to_hides_a_virtual_service_from_other_namespaces() -> None:
    text = vs("  - route: [{destination: {host: reviews, subset: v2}}]", extra="  exportTo: ['.']\n")
    inside = compile_vs(text)
    outside = compile_vs(text, proxy=by_name("api-service", "production"))
    assert weights(routes(inside.snapshot, REVIEWS, 9080)[0]) == {f"outbound|9080|v2|{REVIEWS}": 100}
    assert routes(outside.snapshot, REVIEWS, 9080)[0].name == "default"


def test_a_gateway_only_virtual_service_is_not_the_sidecars() -> None:
    text = vs("  - route: [{destination: {host: reviews, subset: v2}}]", extra="  gateways: [ingress]\n")
    compiled = compile_vs(text)
    assert routes(compiled.snapshot, REVIEWS, 9080)[0].name == "default"
    assert compiled.warnings == ()


def test_unknown_destinations_get_an_empty_cluster_and_a_warning() -> None:
    compiled = compile_vs(
        vs("""
  - match: [{uri: {prefix: /a}}]
    route: [{destination: {host: nowhere}}]
  - route: [{destination: {host: reviews, subset: v9}}]
""")
    )
    missing = cluster(compiled.snapshot, "outbound|9080||nowhere.default.svc.cluster.local")
    assert missing.endpoints == []
    assert cluster(compiled.snapshot, f"outbound|9080|v9|{REVIEWS}").endpoints == []
    found = messages(compiled)
    assert any("no service nowhere.default.svc.cluster.local" in m for m in found)
    assert any("subset 'v9'" in m for m in found)


def test_destination_port_when_the_service_has_several() -> None:
    multi = """
apiVersion: v1
kind: Service
metadata: {name: multi, namespace: default}
spec:
  selector: {app: multi}
  ports: [{name: http, port: 80, targetPort: 8080}, {name: http-admin, port: 9000, targetPort: 9000}]
"""
    text = vs(
        """
  - match: [{uri: {prefix: /admin}}]
    route: [{destination: {host: multi, port: {number: 9000}}}]
  - route: [{destination: {host: multi}}]
""",
        name="multi",
        hosts="[multi]",
    )
    compiled = compile_vs(multi, text)
    host = svc("multi")
    admin, rest = routes(compiled.snapshot, host, 80)
    assert weights(admin) == {f"outbound|9000||{host}": 100}
    assert weights(rest) == {f"outbound|80||{host}": 100}
    assert weights(routes(compiled.snapshot, host, 9000)[1]) == {f"outbound|9000||{host}": 100}


def test_unsupported_parts_are_dropped_with_a_warning() -> None:
    compiled = compile_vs(
        vs(
            """
  - match: [{uri: {regex: "/(?=x)"}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - delegate: {name: other}
  - route: [{destination: {host: reviews, subset: v1}}]
    corsPolicy: {allowOrigins: [{exact: "https://x"}]}
    rewrite: {uriRegexRewrite: {match: "^/a", rewrite: "/b"}}
""",
            extra="  tcp:\n  - route: [{destination: {host: reviews}}]\n",
        )
    )
    [route] = routes(compiled.snapshot, REVIEWS, 9080)
    assert weights(route) == {f"outbound|9080|v1|{REVIEWS}": 100}
    assert route.route is not None and route.route.rewrite is None
    found = " | ".join(messages(compiled))
    for expected in ("lookahead", "delegate", "corsPolicy", "uriRegexRewrite"):
        assert expected in found


def test_a_tcp_route_is_reported_when_indexing() -> None:
    from loom.controlplane.compiler import MeshInputs

    text = vs(
        "  - route: [{destination: {host: reviews}}]",
        extra="  tcp:\n  - route: [{destination: {host: reviews}}]\n",
    )
    inputs = MeshInputs.build([*seed_mesh(), *resources(text)], [])
    assert [w.path for w in inputs.warnings] == ["spec.tcp"]


def test_source_labels_route_only_for_matching_callers() -> None:
    text = vs(
        """
  - match: [{sourceLabels: {app: productpage}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
"""
    )
    productpage = workload("productpage", "default", {"app": "productpage"}, "10.0.0.9")
    for proxy, expected in ((productpage, "v2"), (SLEEP, "v1")):
        compiled = compile_for([*seed_mesh(), *resources(SUBSETS, text)], proxy)
        assert weights(routes(compiled.snapshot, REVIEWS, 9080)[0]) == {
            f"outbound|9080|{expected}|{REVIEWS}": 100
        }


def test_what_the_proxy_would_refuse_is_dropped_not_sent() -> None:
    compiled = compile_vs(
        vs("""
  - match: [{headers: {"x user": {exact: a}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
    headers: {request: {set: {"bad name": x, x-good: y}}}
    rewrite: {uri: no-slash}
""")
    )
    [route] = routes(compiled.snapshot, REVIEWS, 9080)
    assert route.request_headers is not None and route.request_headers.set == {"x-good": "y"}
    assert route.route is not None and route.route.rewrite is None
    assert len(compiled.warnings) == 3
