"""Schema validation: every rejected field is named by its path, with a message saying why."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from loom.snapshot import SnapshotError, parse_snapshot
from loom.snapshot.load import Problem, field_path
from tests.unit.snapshot.builders import ROUTE, Doc, http_sidecar, minimal, with_cluster, with_route

DEST = {"destinations": [{"cluster": "catalog-v1"}]}


def _set(path: str, value: Any) -> Callable[[], Doc]:
    """A valid http_sidecar() with the dotted ``path`` (list indexes as numbers) set to ``value``."""

    def build() -> Doc:
        doc = http_sidecar()
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value
        return doc

    return build


def _drop(path: str) -> Callable[[], Doc]:
    def build() -> Doc:
        doc = http_sidecar()
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[last]
        return doc

    return build


def _route(**route: Any) -> Callable[[], Doc]:
    return lambda: with_route(route)


def _cluster(**fields: Any) -> Callable[[], Doc]:
    return lambda: with_cluster(**fields)


# (id, document, the field path reported, words the message contains)
CASES: list[tuple[str, Callable[[], Doc], str, str]] = [
    ("port-too-big", _set("listeners.0.port", 70000), "listeners[0].port", "Expected `int` <= 65535"),
    ("port-negative", _set("listeners.0.port", -1), "listeners[0].port", "Expected `int` >= 0"),
    ("port-not-a-number", _set("listeners.0.port", "http"), "listeners[0].port", "Expected `int`, got `str`"),
    # Types are strict: no numeric strings, integral floats or booleans where an int belongs.
    ("port-numeric-string", _set("listeners.0.port", "15001"), "listeners[0].port",
     "Expected `int`, got `str`"),
    ("port-float", _set("listeners.0.port", 15001.0), "listeners[0].port", "Expected `int`, got `float`"),
    ("port-bool", _set("listeners.0.port", True), "listeners[0].port", "Expected `int`, got `bool`"),
    ("label-value", _set("node.labels", {"app": "web", "version": 2}), "node.labels.version",
     "Expected `str`, got `int`"),
    ("label-key", _set("node.labels", {"app": "web", 1: "x"}), "node.labels",
     "the key 1: Expected `str`, got `int`"),
    ("direction", _set("listeners.0.direction", "sideways"), "listeners[0].direction",
     "'outbound' or 'inbound'"),
    ("protocol", _set("listeners.0.protocol", "udp"), "listeners[0].protocol", "'http' or 'tcp'"),
    ("http-without-routes", _drop("listeners.0.route_config"), "listeners[0]", "needs route_config"),
    ("tcp-without-destinations", _drop("listeners.1.tcp"), "listeners[1]", "needs tcp.destinations"),
    ("tcp-empty-destinations", _set("listeners.1.tcp", {"destinations": []}), "listeners[1].tcp.destinations",
     "Expected `array` of length >= 1"),
    ("tcp-zero-weights", _set("listeners.1.tcp", {"destinations": [{"cluster": "db", "weight": 0}]}),
     "listeners[1].tcp.destinations", "all zero"),
    ("listener-name-empty", _set("listeners.0.name", ""), "listeners[0].name",
     "Expected `str` of length >= 1"),
    ("header-limit-too-small", _set("listeners.0.limits", {"max_request_header_bytes": 100}),
     "listeners[0].limits.max_request_header_bytes", "Expected `int` >= 1024"),
    ("url-limit-too-small", _set("listeners.0.limits", {"max_url_bytes": 10}),
     "listeners[0].limits.max_url_bytes", "Expected `int` >= 64"),
    ("max-connections-zero", _set("listeners.0.limits", {"max_connections": 0}),
     "listeners[0].limits.max_connections", "Expected `int` >= 1"),
    ("typo-is-an-error", _set("listeners.0.rout_config", "outbound"), "listeners[0].rout_config",
     "unknown field"),
    ("unknown-top-level", _set("listener", []), "listener", "unknown field"),
    ("workload-missing", _drop("node.workload"), "node.workload", "required field missing"),
    ("workload-empty", _set("node.workload", ""), "node.workload", "Expected `str` of length >= 1"),
    ("schema-version", _set("schema_version", 2), "schema_version", "Invalid enum value 2; expected 1"),
    ("admin-port", _set("admin", {"port": 65536}), "admin.port", "Expected `int` <= 65535"),
    ("no-action", _route(name="r"), ROUTE, "exactly one of route, redirect, direct_response"),
    ("two-actions", _route(route=DEST, direct_response={"status": 200}), ROUTE, "exactly one of route"),
    ("path-match-empty", _route(matches=[{"path": {}}], route=DEST), f"{ROUTE}.matches[0].path",
     "exactly one of exact, prefix, regex"),
    ("path-match-two", _route(matches=[{"path": {"exact": "/a", "prefix": "/"}}], route=DEST),
     f"{ROUTE}.matches[0].path", "exactly one of exact, prefix, regex"),
    ("method-match-two", _route(matches=[{"method": {"exact": "GET", "regex": "P.*"}}], route=DEST),
     f"{ROUTE}.matches[0].method", "exactly one"),
    ("query-match-empty", _route(matches=[{"query_params": {"v": {}}}], route=DEST),
     f"{ROUTE}.matches[0].query_params.v", "exactly one"),
    ("header-match-two", _route(matches=[{"headers": {"x-a": {"exact": "a", "prefix": "b"}}}], route=DEST),
     f"{ROUTE}.matches[0].headers.x-a", "at most one of exact, prefix, regex"),
    ("no-destinations", _route(route={"destinations": []}), f"{ROUTE}.route.destinations",
     "Expected `array` of length >= 1"),
    ("zero-weights", _route(route={"destinations": [{"cluster": "catalog-v1", "weight": 0}]}),
     f"{ROUTE}.route.destinations", "all zero"),
    ("negative-weight", _route(route={"destinations": [{"cluster": "catalog-v1", "weight": -1}]}),
     f"{ROUTE}.route.destinations[0].weight", "Expected `int` >= 0"),
    ("bad-timeout", _route(route={**DEST, "timeout": "5 seconds"}), f"{ROUTE}.route.timeout",
     "invalid duration"),
    ("retry-on-unknown", _route(route={**DEST, "retry": {"retry_on": ["5xx", "sometimes"]}}),
     f"{ROUTE}.route.retry.retry_on", "unknown retry_on condition 'sometimes'"),
    ("retry-on-status-out-of-range", _route(route={**DEST, "retry": {"retry_on": ["600"]}}),
     f"{ROUTE}.route.retry.retry_on", "unknown retry_on condition '600'"),
    ("retry-attempts-negative", _route(route={**DEST, "retry": {"attempts": -1}}),
     f"{ROUTE}.route.retry.attempts", "Expected `int` >= 0"),
    ("mirror-percentage", _route(route={**DEST, "mirror": {"cluster": "catalog-v2", "percentage": 101}}),
     f"{ROUTE}.route.mirror.percentage", "Expected `float` <= 100.0"),
    ("redirect-code", _route(redirect={"code": 200}), f"{ROUTE}.redirect.code",
     "Expected `int` >= 300"),
    ("direct-status", _route(direct_response={"status": 600}), f"{ROUTE}.direct_response.status",
     "Expected `int` <= 599"),
    ("abort-status", _route(route=DEST, fault={"abort": {"http_status": 100}}),
     f"{ROUTE}.fault.abort.http_status", "Expected `int` >= 200"),
    ("delay-without-fixed", _route(route=DEST, fault={"delay": {"percentage": 5}}),
     f"{ROUTE}.fault.delay.fixed", "required field missing"),
    ("domains-empty", _set("route_configs.0.virtual_hosts.0.domains", []),
     "route_configs[0].virtual_hosts[0].domains", "Expected `array` of length >= 1"),
    ("routes-empty", _set("route_configs.0.virtual_hosts.0.routes", []),
     "route_configs[0].virtual_hosts[0].routes", "Expected `array` of length >= 1"),
    ("hash-without-key", _cluster(lb_policy="CONSISTENT_HASH"), "clusters[0]",
     "lb_policy CONSISTENT_HASH needs consistent_hash"),
    ("hash-no-key", _cluster(lb_policy="CONSISTENT_HASH", consistent_hash={}), "clusters[0].consistent_hash",
     "exactly one hash key"),
    ("hash-two-keys", _cluster(consistent_hash={"header": "x-user", "source_ip": True}),
     "clusters[0].consistent_hash", "exactly one hash key"),
    ("hash-source-ip-false", _cluster(consistent_hash={"source_ip": False}), "clusters[0].consistent_hash",
     "exactly one hash key"),
    ("ring-size", _cluster(consistent_hash={"header": "x", "ring_size": 8}),
     "clusters[0].consistent_hash.ring_size", "Expected `int` >= 16"),
    ("lb-policy", _cluster(lb_policy="FASTEST"), "clusters[0].lb_policy", "PEAK_EWMA"),
    ("endpoint-port", _set("clusters.0.endpoints.0.port", 0), "clusters[0].endpoints[0].port",
     "Expected `int` >= 1"),
    ("endpoint-weight", _set("clusters.0.endpoints.0.weight", 0), "clusters[0].endpoints[0].weight",
     "Expected `int` >= 1"),
    ("endpoint-twice", _set("clusters.0.endpoints", [{"address": "127.0.0.1", "port": 9081}] * 2),
     "clusters[0].endpoints", "endpoint 127.0.0.1:9081 is listed twice"),
    ("endpoint-address-missing", _drop("clusters.0.endpoints.0.address"), "clusters[0].endpoints[0].address",
     "required field missing"),
    ("ejection-percent", _cluster(outlier_detection={"max_ejection_percent": 101}),
     "clusters[0].outlier_detection.max_ejection_percent", "Expected `int` <= 100"),
    ("consecutive-5xx", _cluster(outlier_detection={"consecutive_5xx": -1}),
     "clusters[0].outlier_detection.consecutive_5xx", "Expected `int` >= 0"),
    ("connect-timeout", _cluster(limits={"connect_timeout": "soon"}), "clusters[0].limits.connect_timeout",
     "invalid duration"),
    ("connect-timeout-bool", _cluster(limits={"connect_timeout": True}), "clusters[0].limits.connect_timeout",
     "not a boolean"),
    ("budget-negative", _cluster(retry_budget={"percent": -5}), "clusters[0].retry_budget.percent",
     "Expected `float` >= 0.0"),
    ("access-log-encoding", _set("telemetry", {"access_log": {"path": "/dev/stdout", "encoding": "XML"}}),
     "telemetry.access_log.encoding", "'JSON' or 'TEXT'"),
]  # fmt: skip


@pytest.mark.parametrize(("build", "field", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_rejected_field_is_named_by_its_path(build: Callable[[], Doc], field: str, words: str) -> None:
    with pytest.raises(SnapshotError) as caught:
        parse_snapshot(build(), "snap.yaml")
    problems = caught.value.problems
    assert [p.field for p in problems] == [field], problems
    assert words in problems[0].message
    assert caught.value.source == "snap.yaml"


def test_the_baseline_document_is_valid() -> None:
    snapshot = parse_snapshot(http_sidecar())
    assert snapshot.version == "7"
    assert [item.name for item in snapshot.listeners] == ["outbound", "db"]


def test_schema_problems_are_reported_one_at_a_time_in_document_order() -> None:
    # msgspec stops at the first schema problem; fixing it shows the next one.
    doc = http_sidecar()
    doc["listeners"][0]["port"] = 70000
    doc["clusters"][1]["endpoints"][0]["port"] = 0
    doc["admin"] = {"address": "0.0.0.0"}  # written last
    reported = []
    for fix in (
        lambda: doc["listeners"][0].update(port=15001),
        lambda: doc["clusters"][1]["endpoints"][0].update(port=9082),
        lambda: doc.update(admin={"address": "127.0.0.1"}),
    ):
        with pytest.raises(SnapshotError) as caught:
            parse_snapshot(doc)
        reported += [p.field for p in caught.value.problems]
        fix()
    parse_snapshot(doc)
    assert reported == ["listeners[0].port", "clusters[1].endpoints[0].port", "admin.address"]


def test_the_error_message_lists_each_problem_on_its_own_line() -> None:
    error = SnapshotError(
        "snap.yaml", [Problem("listeners[0].port", "too big"), Problem("", "not a mapping")]
    )
    assert str(error) == "invalid snapshot snap.yaml:\n  - listeners[0].port: too big\n  - not a mapping"


@pytest.mark.parametrize("data", [None, [], "node: {}", 42])
def test_the_top_level_must_be_a_mapping(data: object) -> None:
    with pytest.raises(SnapshotError) as caught:
        parse_snapshot(data)
    assert caught.value.problems == [Problem("", "the snapshot must be a mapping at the top level")]


def test_field_paths_join_names_with_dots_and_indexes_with_brackets() -> None:
    assert (
        field_path(("route_configs", 0, "virtual_hosts", 2, "domains", 1))
        == "route_configs[0].virtual_hosts[2].domains[1]"
    )
    assert field_path(("node",)) == "node"
    assert field_path(()) == ""


# --- the admin endpoint is loopback only ----------------------------------------------------


@pytest.mark.parametrize(
    ("address", "stored"),
    [("127.0.0.1", "127.0.0.1"), ("127.0.0.53", "127.0.0.53"), ("::1", "::1"), ("localhost", "127.0.0.1")],
)
def test_loopback_admin_addresses_are_accepted(address: str, stored: str) -> None:
    assert parse_snapshot({**minimal(), "admin": {"address": address}}).admin.address == stored


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "10.0.0.1", "192.168.1.10", "2001:db8::1"])
def test_non_loopback_admin_addresses_are_refused(address: str) -> None:
    with pytest.raises(SnapshotError) as caught:
        parse_snapshot({**minimal(), "admin": {"address": address}})
    [problem] = caught.value.problems
    assert problem.field == "admin.address" and "loopback only" in problem.message


@pytest.mark.parametrize("address", ["", "admin.local", "127.0.0.1:15000"])
def test_admin_addresses_must_be_ip_addresses(address: str) -> None:
    with pytest.raises(SnapshotError) as caught:
        parse_snapshot({**minimal(), "admin": {"address": address}})
    [problem] = caught.value.problems
    assert problem.field == "admin.address" and "is not an IP address" in problem.message


# --- one-of rules: each single choice is accepted -----------------------------------------


@pytest.mark.parametrize("kind", ["exact", "prefix", "regex"])
def test_a_string_match_takes_any_one_kind(kind: str) -> None:
    snapshot = parse_snapshot(with_route({"matches": [{"path": {kind: "/a"}}], "route": DEST}))
    path = snapshot.route_configs[0].virtual_hosts[0].routes[0].matches[0].path
    assert path is not None and getattr(path, kind) == "/a"


def test_a_header_match_with_nothing_set_checks_presence() -> None:
    snapshot = parse_snapshot(with_route({"matches": [{"headers": {"x-debug": {}}}], "route": DEST}))
    header = snapshot.route_configs[0].virtual_hosts[0].routes[0].matches[0].headers["x-debug"]
    assert (header.exact, header.prefix, header.regex) == (None, None, None)


@pytest.mark.parametrize(
    "action",
    [{"route": DEST}, {"redirect": {"uri": "/new"}}, {"direct_response": {"status": 204}}],
    ids=["route", "redirect", "direct_response"],
)
def test_a_route_takes_any_one_action(action: Doc) -> None:
    parse_snapshot(with_route(action))


@pytest.mark.parametrize(
    "key",
    [{"header": "x-user"}, {"cookie": {"name": "session"}}, {"source_ip": True}, {"query_param": "user"}],
    ids=["header", "cookie", "source_ip", "query_param"],
)
def test_a_consistent_hash_takes_any_one_key(key: Doc) -> None:
    snapshot = parse_snapshot(with_cluster(lb_policy="CONSISTENT_HASH", consistent_hash=key))
    assert snapshot.clusters[0].consistent_hash is not None


@pytest.mark.parametrize(
    "condition", ["5xx", "gateway-error", "reset", "connect-failure", "retriable-4xx", "503", "409"]
)
def test_known_retry_conditions_are_accepted(condition: str) -> None:
    parse_snapshot(with_route({"route": {**DEST, "retry": {"retry_on": [condition]}}}))


# --- defaults -------------------------------------------------------------------------------


def test_defaults_of_a_minimal_snapshot() -> None:
    snapshot = parse_snapshot(minimal())
    assert (snapshot.schema_version, snapshot.version) == (1, "0")
    node = snapshot.node
    assert (node.workload, node.namespace, node.service_account) == ("web", "default", "default")
    assert (node.trust_domain, node.cluster_domain, node.labels) == ("cluster.local", "cluster.local", {})
    assert (snapshot.admin.address, snapshot.admin.port) == ("127.0.0.1", 15000)
    assert snapshot.listeners == snapshot.route_configs == snapshot.clusters == []
    assert snapshot.telemetry.metrics is True and snapshot.telemetry.access_log is None


def test_listener_defaults() -> None:
    listener = parse_snapshot(http_sidecar()).listeners[0]
    assert listener.protocol.value == "http" and listener.address == "127.0.0.1" and not listener.original_dst
    limits = listener.limits
    assert limits.max_connections == 10_000
    assert limits.max_request_header_bytes == 60 * 1024
    assert limits.max_headers == 100
    assert limits.max_url_bytes == 8 * 1024
    assert limits.max_request_body_bytes is None
    assert (limits.request_header_timeout, limits.idle_timeout, limits.drain_timeout) == (10.0, 300.0, 10.0)
    tcp = parse_snapshot(http_sidecar()).listeners[1].tcp
    assert tcp is not None and tcp.idle_timeout == 3600.0 and tcp.destinations[0].weight == 1


def test_route_defaults() -> None:
    snapshot = parse_snapshot(
        with_route(
            {
                "route": {**DEST, "retry": {}, "mirror": {"cluster": "catalog-v2"}},
                "fault": {"delay": {"fixed": "1s"}},
            }
        )
    )
    route = snapshot.route_configs[0].virtual_hosts[0].routes[0]
    assert route.name == "" and route.matches == []
    action = route.route
    assert action is not None and action.timeout is None and action.rewrite is None
    retry = action.retry
    assert retry is not None
    assert retry.attempts == 2 and retry.per_try_timeout is None
    assert retry.retry_on == ["connect-failure", "refused-stream", "unavailable", "cancelled", "503"]
    assert retry.retriable_status_codes == []
    assert (retry.backoff_base, retry.backoff_max) == (0.025, 0.25)
    assert action.mirror is not None and action.mirror.percentage == 100.0
    assert route.fault is not None and route.fault.delay is not None and route.fault.delay.percentage == 100.0
    assert (
        parse_snapshot(with_route({"redirect": {}})).route_configs[0].virtual_hosts[0].routes[0].redirect.code
        == 301
    )  # type: ignore[union-attr]


def test_cluster_defaults() -> None:
    cluster = parse_snapshot(http_sidecar()).clusters[0]
    assert cluster.service == "unknown" and cluster.protocol.value == "http"
    assert cluster.lb_policy.value == "PEAK_EWMA" and cluster.consistent_hash is None
    assert cluster.outlier_detection is None and cluster.default_retry is None
    limits = cluster.limits
    assert limits.max_connections == limits.max_pending_requests == limits.max_requests == 1 << 32
    assert limits.max_requests_per_connection == 0
    assert (limits.connect_timeout, limits.idle_timeout) == (10.0, 3600.0)
    budget = cluster.retry_budget
    assert (budget.percent, budget.min_retries_per_second, budget.window) == (20.0, 10.0, 10.0)
    endpoint = cluster.endpoints[0]
    assert endpoint.weight == 1 and endpoint.labels == {}
    assert (endpoint.workload, endpoint.namespace, endpoint.service_account) == ("unknown",) * 3


def test_outlier_detection_and_hash_defaults() -> None:
    cluster = parse_snapshot(
        with_cluster(
            outlier_detection={}, lb_policy="CONSISTENT_HASH", consistent_hash={"cookie": {"name": "s"}}
        )
    ).clusters[0]
    od = cluster.outlier_detection
    assert od is not None
    assert (od.consecutive_5xx, od.consecutive_gateway_errors) == (5, None)
    assert (od.interval, od.base_ejection_time, od.max_ejection_percent) == (10.0, 30.0, 10)
    ch = cluster.consistent_hash
    assert ch is not None and ch.ring_size == 1024
    assert ch.cookie is not None and (ch.cookie.path, ch.cookie.ttl) == ("/", None)


def test_a_snapshot_is_immutable() -> None:
    snapshot = parse_snapshot(http_sidecar())
    with pytest.raises(AttributeError):
        snapshot.version = "8"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        snapshot.listeners[0].port = 1  # type: ignore[misc]
