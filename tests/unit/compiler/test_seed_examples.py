"""Every seed example compiles, loads back, compiles in the proxy's router, and says what its YAML means."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from loom.controlplane.compiler import Compiled, MeshInputs, compile_snapshot
from loom.proxy.codec.head import RequestHead
from loom.snapshot.model import LbPolicy
from tests.unit.compiler.support import (
    SEED_EXAMPLES,
    SEED_WORKLOADS,
    by_name,
    cluster,
    compile_for,
    endpoint_names,
    load_file,
    proxy_config,
    round_trip,
    route_tables,
    routes,
    seed_mesh,
    svc,
    vhost,
    weights,
)

SEED_FILES = sorted(SEED_EXAMPLES.glob("*.yaml"))
ORDERS = svc("orders-api", "production")


def test_the_seed_examples_are_there() -> None:
    assert len(SEED_FILES) >= 10


@pytest.mark.parametrize("path", SEED_FILES, ids=lambda p: p.name)
def test_every_seed_example_compiles_for_every_workload(path: Path) -> None:
    inputs = MeshInputs.build([*seed_mesh(), *load_file(path)], list(SEED_WORKLOADS))
    for proxy in SEED_WORKLOADS:
        snapshot = compile_snapshot(inputs, proxy, version="7").snapshot
        round_trip(snapshot)
        proxy_config(snapshot)
        assert snapshot.version == "7"


def test_all_seed_examples_together() -> None:
    found = [*seed_mesh(), *(r for path in SEED_FILES for r in load_file(path))]
    inputs = MeshInputs.build(found, list(SEED_WORKLOADS))
    for proxy in SEED_WORKLOADS:
        compiled = compile_snapshot(inputs, proxy, version="1")
        round_trip(compiled.snapshot)
        proxy_config(compiled.snapshot)


def _orders(*names: str) -> Compiled:
    found = [*seed_mesh(), *(r for name in names for r in load_file(SEED_EXAMPLES / name))]
    return compile_for(found, by_name("api-service", "production"))


def test_orders_canary_splits_90_10_over_the_subsets() -> None:
    compiled = _orders("002-orders-canary.yaml", "002-orders-destinationrule.yaml")
    snapshot = compiled.snapshot
    [route] = routes(snapshot, ORDERS)
    assert route.matches == []
    assert weights(route) == {f"outbound|80|v1|{ORDERS}": 90, f"outbound|80|v2|{ORDERS}": 10}
    assert endpoint_names(cluster(snapshot, f"outbound|80|v1|{ORDERS}")) == ["orders-api-v1"]
    assert endpoint_names(cluster(snapshot, f"outbound|80|v2|{ORDERS}")) == ["orders-api-v2"]
    assert endpoint_names(cluster(snapshot, f"outbound|80||{ORDERS}")) == ["orders-api-v1", "orders-api-v2"]
    # Endpoints are the workloads' sidecars (their inbound listeners), not the app ports.
    assert [(e.address, e.port) for e in cluster(snapshot, f"outbound|80|v1|{ORDERS}").endpoints] == [
        ("10.1.0.1", 15006)
    ]
    assert compiled.warnings == ()


def test_orders_destination_rule_sets_every_cluster_of_the_host() -> None:
    snapshot = _orders("002-orders-canary.yaml", "002-orders-destinationrule.yaml").snapshot
    for name in (f"outbound|80|v1|{ORDERS}", f"outbound|80|v2|{ORDERS}", f"outbound|80||{ORDERS}"):
        c = cluster(snapshot, name)
        assert c.service == ORDERS
        assert c.lb_policy is LbPolicy.PEAK_EWMA
        assert c.limits.max_connections == 100
        assert c.limits.max_requests == 1000
        assert c.limits.max_pending_requests == 100  # the `pendingRequests` extension
        od = c.outlier_detection
        assert od is not None
        assert (od.consecutive_gateway_errors, od.consecutive_5xx) == (5, 5)
        assert (od.interval, od.base_ejection_time, od.max_ejection_percent) == (10.0, 30.0, 50)
        retry = c.default_retry  # the `retryPolicy` extension
        assert retry is not None
        assert (retry.attempts, retry.per_try_timeout, retry.retry_on) == (
            3,
            5.0,
            ["5xx", "reset", "connect-failure"],
        )


def test_a_route_without_retries_leaves_them_to_the_cluster() -> None:
    snapshot = _orders("002-orders-canary.yaml", "002-orders-destinationrule.yaml").snapshot
    [route] = routes(snapshot, ORDERS)
    assert route.route is not None and route.route.retry is None
    # Without the DestinationRule's extension, the cluster carries Istio's default policy.
    other = cluster(snapshot, f"outbound|80||{svc('api-service', 'production')}").default_retry
    assert other is not None
    assert (other.attempts, other.retry_on) == (
        2,
        ["connect-failure", "refused-stream", "unavailable", "cancelled", "503"],
    )
    assert route.route.timeout is None


def test_header_routing_puts_the_canary_header_route_first() -> None:
    found = [*seed_mesh(), *load_file(SEED_EXAMPLES / "002-orders-header-routing.yaml")]
    compiled = compile_for(found, by_name("sleep"))
    host = svc("orders-api")
    first, second = routes(compiled.snapshot, host)
    assert [m.headers["x-version"].exact for m in first.matches] == ["canary"]
    assert weights(first) == {f"outbound|80|v2|{host}": 100}
    assert second.matches == []
    assert weights(second) == {f"outbound|80|v1|{host}": 100}
    assert endpoint_names(cluster(compiled.snapshot, f"outbound|80|v2|{host}")) == ["orders-api-v2"]


def test_header_routing_in_the_proxy_router(make_head: Callable[..., RequestHead]) -> None:
    found = [*seed_mesh(), *load_file(SEED_EXAMPLES / "002-orders-header-routing.yaml")]
    snapshot = compile_for(found, by_name("sleep")).snapshot
    table = route_tables(snapshot)["outbound"]
    host = svc("orders-api")
    vh = table.find(b"orders-api", None)  # the short name, from the same namespace
    assert vh is not None
    canary = vh.match(make_head(headers=[(b"x-version", b"canary")]), 80)
    plain = vh.match(make_head(), 80)
    assert canary is not None and canary.clusters == (f"outbound|80|v2|{host}",)
    assert plain is not None and plain.clusters == (f"outbound|80|v1|{host}",)


def test_canary_virtual_service_for_my_app() -> None:
    found = [*seed_mesh(), *load_file(SEED_EXAMPLES / "000-canary-virtualservice.yaml")]
    snapshot = compile_for(found, by_name("sleep")).snapshot
    host = svc("my-app")
    [route] = routes(snapshot, host)
    assert weights(route) == {f"outbound|80|v1|{host}": 90, f"outbound|80|v2|{host}": 10}
    assert endpoint_names(cluster(snapshot, f"outbound|80|v2|{host}")) == ["my-app-v2"]


def test_smi_traffic_split_keeps_the_9_to_1_ratio() -> None:
    found = [*seed_mesh(), *load_file(SEED_EXAMPLES / "000-smi-trafficsplit.yaml")]
    compiled = compile_for(found, by_name("sleep"))
    snapshot = compiled.snapshot
    [route] = routes(snapshot, svc("my-app"))
    assert weights(route) == {f"outbound|80||{svc('my-app-v1')}": 90, f"outbound|80||{svc('my-app-v2')}": 10}
    assert endpoint_names(cluster(snapshot, f"outbound|80||{svc('my-app-v1')}")) == ["my-app-v1"]
    assert endpoint_names(cluster(snapshot, f"outbound|80||{svc('my-app-v2')}")) == ["my-app-v2"]
    assert compiled.warnings == ()


def test_reviews_virtual_service_and_destination_rule() -> None:
    found = [*seed_mesh(), *load_file(SEED_EXAMPLES / "003-reviews.yaml")]
    compiled = compile_for(found, by_name("sleep"))
    host = svc("reviews")
    [route] = routes(compiled.snapshot, host, 9080)
    assert weights(route) == {f"outbound|9080|v1|{host}": 90, f"outbound|9080|v2|{host}": 10}
    v1 = cluster(compiled.snapshot, f"outbound|9080|v1|{host}")
    assert [(e.workload, e.port) for e in v1.endpoints] == [("reviews-v1", 15006)]
    assert compiled.warnings == ()  # `tls` ISTIO_MUTUAL is supported (test_mtls.py): no warning


def test_mesh_telemetry_turns_on_the_json_access_log() -> None:
    found = [*seed_mesh(), *load_file(SEED_EXAMPLES / "002-mesh-telemetry.yaml")]
    inputs = MeshInputs.build(found, list(SEED_WORKLOADS))
    snapshot = compile_snapshot(inputs, by_name("sleep"), version="1").snapshot
    access_log = snapshot.telemetry.access_log
    assert access_log is not None
    assert (access_log.path, access_log.encoding) == ("/dev/stdout", "JSON")
    # Tracing as written: on, `sampling: 1.0` is a percentage (1 %), spans to the Zipkin address.
    tracing = snapshot.telemetry.tracing
    assert tracing is not None and tracing.sampling == 1.0 and tracing.control_plane
    assert [(c.protocol, c.url) for c in tracing.collectors] == [
        ("zipkin", "http://jaeger-collector.istio-system:9411/api/v2/spans")
    ]
    assert not any("tracing" in w.message for w in inputs.warnings)


def test_security_kinds_are_reported_as_not_enforced() -> None:
    found = [*seed_mesh(), *load_file(SEED_EXAMPLES / "002-strict-mtls.yaml")]
    inputs = MeshInputs.build(found, list(SEED_WORKLOADS))
    [warning] = inputs.warnings
    assert warning.resource == "PeerAuthentication production/strict-mtls"
    assert "not enforced" in warning.message


def test_inbound_listener_for_the_proxys_own_service() -> None:
    snapshot = _orders("002-orders-canary.yaml").snapshot
    api = svc("api-service", "production")
    [inbound] = [li for li in snapshot.listeners if li.direction == "inbound"]
    assert (inbound.name, inbound.address, inbound.port, inbound.route_config) == (
        "inbound-8080",
        "10.1.0.3",
        15006,
        "inbound-8080",
    )
    local = cluster(snapshot, "inbound|8080||")
    assert local.service == api
    assert [(e.address, e.port, e.workload, e.service_account) for e in local.endpoints] == [
        ("10.1.0.3", 8080, "api-service", "api-service")
    ]
    rc = next(rc for rc in snapshot.route_configs if rc.name == "inbound-8080")
    [vh] = rc.virtual_hosts
    assert vh.domains == ["*"]
    [route] = vh.routes
    assert route.route is not None and route.route.retry is not None and route.route.retry.attempts == 0


def test_node_and_admin_come_from_the_workload() -> None:
    snapshot = _orders("002-orders-canary.yaml").snapshot
    node = snapshot.node
    assert (node.workload, node.namespace, node.service_account) == (
        "api-service",
        "production",
        "api-service",
    )
    assert node.labels == {"app": "api-service", "version": "v1"}
    assert (node.trust_domain, node.cluster_domain) == ("cluster.local", "cluster.local")
    assert snapshot.admin.port == 15000
    outbound = next(li for li in snapshot.listeners if li.name == "outbound")
    assert (outbound.address, outbound.port, outbound.route_config) == ("127.0.0.1", 15001, "outbound")


def test_the_short_name_resolves_in_the_vs_namespace_not_the_callers() -> None:
    # 002-orders-canary lives in production: a proxy in `default` still routes production's orders-api.
    found = [
        *seed_mesh(),
        *load_file(SEED_EXAMPLES / "002-orders-canary.yaml"),
        *load_file(SEED_EXAMPLES / "002-orders-destinationrule.yaml"),
    ]
    snapshot = compile_for(found, by_name("sleep")).snapshot
    assert len(weights(routes(snapshot, ORDERS)[0])) == 2
    assert routes(snapshot, svc("orders-api"))[0].name == "default"
    assert vhost(snapshot, ORDERS).domains == [ORDERS]
