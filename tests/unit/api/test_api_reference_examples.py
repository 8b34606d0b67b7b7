"""Every kind, with a representative full example from its reference docs (fixtures/api/valid/)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from loom.api import KINDS, load_paths, load_text
from loom.api.kinds import Resource
from loom.api.resources import core, gateway, istio_networking, istio_security, mesh, runtime, smi
from tests.unit.api.fixtures import FIXTURES

VALID = FIXTURES / "valid"
EXPECTED_KINDS = {
    "virtualservice.yaml": ["VirtualService"] * 4,
    "destinationrule.yaml": ["DestinationRule"] * 5,
    "workloadentry.yaml": ["WorkloadEntry", "ServiceEntry", "ServiceEntry", "ServiceEntry"],
    "security.yaml": [
        "PeerAuthentication",
        "AuthorizationPolicy",
        "AuthorizationPolicy",
        "RequestAuthentication",
    ],
    "httproute.yaml": ["HTTPRoute", "HTTPRoute"],
    "trafficsplit.yaml": ["TrafficSplit"] * 3,
    "service.yaml": ["Service", "Service"],
    "istiooperator.yaml": ["IstioOperator"],
    "workload.yaml": ["Workload", "Workload"],
    "telemetry.yaml": ["Telemetry", "Telemetry"],
}


def load(name: str) -> list[Resource]:
    result = load_paths([VALID / name])
    assert [str(problem) for problem in result.problems] == []
    return result.resources


def by_name(name: str, resource_name: str) -> Resource:
    return next(r for r in load(name) if r.name == resource_name)


@pytest.mark.parametrize("name", sorted(EXPECTED_KINDS))
def test_reference_example_loads(name: str) -> None:
    assert [r.kind for r in load(name)] == EXPECTED_KINDS[name]


def test_every_kind_has_a_reference_example() -> None:
    covered = {kind for kinds in EXPECTED_KINDS.values() for kind in kinds}
    assert covered == {info.kind for info in KINDS}


def test_virtual_service_fields() -> None:
    spec = by_name("virtualservice.yaml", "ratings-route").spec
    assert isinstance(spec, istio_networking.VirtualServiceSpec)
    first, faulty, redirect, direct = spec.http
    match = first.match[0]
    assert match.uri is not None and match.uri.prefix == "/ratings/v2/"
    assert match.headers["end-user"].exact == "jason"
    assert match.without_headers["x-skip"] == istio_networking.StringMatch()
    assert (match.ignore_uri_case, match.port, dict(match.source_labels)) == (True, 9080, {"app": "reviews"})
    assert [d.weight for d in first.route] == [75, 25]
    assert first.route[0].destination.port == istio_networking.PortSelector(number=9080)
    assert first.timeout == 10.0
    retries = first.retries
    assert retries is not None
    assert (retries.attempts, retries.per_try_timeout, retries.retry_remote_localities) == (3, 2.0, True)
    assert retries.retry_on == "gateway-error,connect-failure,refused-stream"
    assert first.headers is not None and first.headers.request is not None
    assert dict(first.headers.request.set) == {"test": "true"}
    assert faulty.fault is not None and faulty.fault.delay is not None and faulty.fault.abort is not None
    assert faulty.fault.delay.fixed_delay == 5.0
    assert faulty.fault.abort.http_status == 400
    assert faulty.mirror_percentage is not None and faulty.mirror_percentage.value == 50.0
    assert faulty.cors_policy is not None and faulty.cors_policy.max_age == 86400.0
    assert (
        redirect.redirect is not None
        and redirect.redirect.authority == "newratings.default.svc.cluster.local"
    )
    assert direct.direct_response is not None and direct.direct_response.status == 503


def test_virtual_service_tcp_and_tls_routes() -> None:
    tcp = by_name("virtualservice.yaml", "bookinfo-mongo").spec
    assert isinstance(tcp, istio_networking.VirtualServiceSpec)
    assert tcp.tcp[0].match[0].port == 27017
    assert tcp.tcp[0].route[0].destination.port == istio_networking.PortSelector(number=5555)
    tls = by_name("virtualservice.yaml", "bookinfo-sni").spec
    assert isinstance(tls, istio_networking.VirtualServiceSpec)
    assert tls.tls[0].match[0].sni_hosts == ("login.bookinfo.com",)


def test_destination_rule_fields() -> None:
    spec = by_name("destinationrule.yaml", "reviews-cb-policy").spec
    assert isinstance(spec, istio_networking.DestinationRuleSpec)
    policy = spec.traffic_policy
    assert policy is not None and policy.connection_pool is not None and policy.outlier_detection is not None
    assert policy.connection_pool.tcp is not None and policy.connection_pool.http is not None
    assert policy.connection_pool.tcp.connect_timeout == 0.03
    assert policy.connection_pool.http.idle_timeout == 3600.0
    assert policy.connection_pool.http.http1_max_pending_requests == 64
    assert policy.outlier_detection.consecutive_5xx_errors == 7
    assert policy.outlier_detection.base_ejection_time == 900.0
    assert policy.tls is not None and policy.tls.mode == "ISTIO_MUTUAL"
    assert spec.export_to == (".",)

    hashed = by_name("destinationrule.yaml", "bookinfo-ratings-hash").spec
    assert isinstance(hashed, istio_networking.DestinationRuleSpec)
    lb = hashed.traffic_policy.load_balancer  # type: ignore[union-attr]
    assert lb is not None and lb.consistent_hash is not None and lb.locality_lb_setting is not None
    cookie = lb.consistent_hash.http_cookie
    assert cookie is not None and (cookie.name, cookie.ttl) == ("user", 0.0)
    assert lb.locality_lb_setting.distribute[0].to == {"us-west/zone1/*": 80, "us-west/zone2/*": 20}
    assert lb.locality_lb_setting.failover[0].from_ == "us-east"


def test_workload_and_service_entries() -> None:
    entry = by_name("workloadentry.yaml", "external-svc-mongocluster").spec
    assert isinstance(entry, istio_networking.ServiceEntrySpec)
    assert (entry.location, entry.resolution) == ("MESH_INTERNAL", "STATIC")
    assert [e.address for e in entry.endpoints] == ["2.2.2.2", "3.3.3.3"]
    assert entry.endpoints[1].ports == {"mongodb": 27019}
    workload = load("workloadentry.yaml")[0].spec
    assert isinstance(workload, istio_networking.WorkloadEntrySpec)
    assert (workload.address, workload.service_account, workload.weight) == ("2.2.2.2", "details-legacy", 10)


def test_security_fields() -> None:
    peer, allow, custom, jwt = load("security.yaml")
    assert isinstance(peer.spec, istio_security.PeerAuthenticationSpec)
    assert peer.spec.port_level_mtls == {8080: istio_security.MutualTLS(mode="DISABLE")}
    assert isinstance(allow.spec, istio_security.AuthorizationPolicySpec)
    rule = allow.spec.rules[0]
    assert rule.from_[0].source.principals == ("cluster.local/ns/default/sa/sleep",)
    assert rule.from_[1].source.not_ip_blocks == ("10.0.0.0/8",)
    assert rule.to[0].operation.not_ports == ("8443",)
    assert rule.when[1].not_values == ("10.1.2.3",)
    assert allow.field_lines["spec.rules[0].from[1].source.notIpBlocks"] == 34
    assert isinstance(custom.spec, istio_security.AuthorizationPolicySpec)
    assert custom.spec.target_ref == istio_security.PolicyTargetReference(
        group="", kind="Service", name="httpbin"
    )
    assert isinstance(jwt.spec, istio_security.RequestAuthenticationSpec)
    first = jwt.spec.jwt_rules[0]
    assert first.from_headers[0] == istio_security.JWTHeader(
        name="x-goog-iap-jwt-assertion", prefix="Bearer "
    )
    assert (first.forward_original_token, first.output_payload_to_header) == (True, "x-jwt-payload")


def test_http_route_attached_to_a_service() -> None:
    route = by_name("httproute.yaml", "reviews")
    spec = route.spec
    assert isinstance(spec, gateway.HTTPRouteSpec)
    assert spec.parent_refs[0] == gateway.ParentReference(group="", kind="Service", name="reviews", port=9080)
    rule = spec.rules[0]
    assert rule.matches[0].path == gateway.HTTPPathMatch(type="PathPrefix", value="/reviews")
    assert [f.type for f in rule.filters] == [
        "RequestHeaderModifier",
        "ResponseHeaderModifier",
        "RequestMirror",
    ]
    assert [(b.name, b.weight) for b in rule.backend_refs] == [("reviews-v1", 90), ("reviews-v2", 10)]
    assert rule.timeouts is not None
    assert (rule.timeouts.request, rule.timeouts.backend_request) == (10.0, 2.0)
    assert spec.rules[2].filters[0].url_rewrite is not None


def test_traffic_split_weights_are_exact_quantities() -> None:
    canary, _, linkerd = load("trafficsplit.yaml")
    assert isinstance(canary.spec, smi.TrafficSplitSpec) and isinstance(linkerd.spec, smi.TrafficSplitSpec)
    assert [b.weight for b in canary.spec.backends] == [Decimal(90), Decimal(10)]
    assert [b.weight for b in linkerd.spec.backends] == [Decimal("0.5"), Decimal("0.5")]


def test_service_fields() -> None:
    reviews, ratings = load("service.yaml")
    assert isinstance(reviews.spec, core.ServiceSpec) and isinstance(ratings.spec, core.ServiceSpec)
    assert reviews.spec.cluster_ip == "10.96.0.12"
    assert [(p.name, p.port, p.target_port, p.app_protocol) for p in reviews.spec.ports] == [
        ("http", 9080, 9080, "http"),
        ("grpc-admin", 9090, "admin", None),
    ]
    assert ratings.spec.cluster_ip is None
    assert ratings.spec.ports[0].target_port is None  # defaults to the port, in the compiler


def test_mesh_config() -> None:
    (operator,) = load("istiooperator.yaml")
    assert isinstance(operator.spec, mesh.IstioOperatorSpec)
    config = operator.spec.mesh_config
    assert config is not None and config.default_config is not None
    tracing = config.default_config.tracing
    assert tracing is not None and tracing.zipkin is not None
    assert (config.enable_tracing, tracing.sampling, tracing.zipkin.address) == (
        True,
        10.0,
        "zipkin.istio-system:9411",
    )
    assert (config.root_namespace, config.trust_domain, config.access_log_encoding) == (
        "loom-system",
        "example.org",
        "TEXT",
    )
    assert config.outbound_traffic_policy == {"mode": "REGISTRY_ONLY"}  # accepted as written, not interpreted


@pytest.mark.parametrize("info", KINDS, ids=[info.kind for info in KINDS])
def test_every_served_version_of_every_kind_is_accepted(info: object) -> None:
    for api_version in info.api_versions():  # type: ignore[attr-defined]
        text = f"apiVersion: {api_version}\nkind: {info.kind}\nmetadata: {{name: x}}\nspec: {{}}\n"  # type: ignore[attr-defined]
        problems = load_text(text).problems
        assert all(p.field_path not in {"apiVersion", "kind"} for p in problems), [str(p) for p in problems]


def test_models_can_be_built_in_python_by_field_name() -> None:
    policy = istio_networking.HTTPSettings(http1_max_pending_requests=10)
    assert policy.http1_max_pending_requests == 10
    assert policy.model_dump(by_alias=True, exclude_none=True)["http1MaxPendingRequests"] == 10


def test_workload_fields_and_defaults() -> None:
    spec = by_name("workload.yaml", "catalog-v2").spec
    assert isinstance(spec, runtime.WorkloadSpec)
    assert (spec.service_account, spec.replicas, spec.port, spec.working_dir) == ("catalog", 2, 9080, "apps")
    assert spec.command == ("python", "catalog.py") and spec.readiness is not None
    assert (dict(spec.labels), dict(spec.env)) == (
        {"app": "catalog", "version": "v2"},
        {"CATALOG_VERSION": "v2"},
    )
    client = by_name("workload.yaml", "traffic").spec
    assert isinstance(client, runtime.WorkloadSpec)
    assert (client.service_account, client.replicas, client.port, client.readiness) == ("default", 1, 0, None)
