"""DestinationRules: which one applies (Istio's lookup order), how policies merge, what they become."""

from __future__ import annotations

import pytest

from loom.controlplane.workloads import Workload
from loom.snapshot.model import Cluster, ConsistentHash, HashCookie, LbPolicy
from tests.unit.compiler.support import (
    SEED_WORKLOADS,
    by_name,
    cluster,
    compile_for,
    messages,
    proxy_config,
    resources,
    round_trip,
    seed_mesh,
    svc,
    workload,
)

REVIEWS = svc("reviews")
DEFAULT_CLUSTER = f"outbound|9080||{REVIEWS}"
ELSEWHERE = workload("client", "elsewhere", {"app": "client"}, "10.9.0.1")
WORKLOADS = (*SEED_WORKLOADS, ELSEWHERE)


def dr(name: str, namespace: str, host: str, body: str = "", *, lb: str | None = None) -> str:
    policy = f"  trafficPolicy: {{loadBalancer: {{simple: {lb}}}}}\n" if lb else ""
    return f"""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  host: {host}
{policy}{body}"""


def lb_for(proxy: Workload, *texts: str) -> LbPolicy:
    compiled = compile_for([*seed_mesh(), *resources(*texts)], proxy, WORKLOADS)
    return cluster(compiled.snapshot, DEFAULT_CLUSTER).lb_policy


IN_DEFAULT = dr("reviews", "default", "reviews", lb="ROUND_ROBIN")
IN_PRODUCTION = dr("reviews", "production", "reviews.default.svc.cluster.local", lb="RANDOM")
IN_ROOT = dr("all", "loom-system", "'*.svc.cluster.local'", lb="LEAST_REQUEST")


def test_the_proxys_namespace_first() -> None:
    assert lb_for(by_name("api-service", "production"), IN_DEFAULT, IN_PRODUCTION, IN_ROOT) is LbPolicy.RANDOM


def test_then_the_services_namespace() -> None:
    assert lb_for(by_name("sleep"), IN_DEFAULT, IN_PRODUCTION, IN_ROOT) is LbPolicy.ROUND_ROBIN
    assert lb_for(ELSEWHERE, IN_DEFAULT, IN_PRODUCTION, IN_ROOT) is LbPolicy.ROUND_ROBIN


def test_then_the_root_namespace() -> None:
    assert lb_for(ELSEWHERE, IN_PRODUCTION, IN_ROOT) is LbPolicy.LEAST_REQUEST
    assert lb_for(ELSEWHERE) is LbPolicy.PEAK_EWMA


def test_a_short_host_means_the_rules_own_namespace() -> None:
    # `reviews` written in production is reviews.production: it does not apply to reviews.default.
    short = dr("reviews", "production", "reviews", lb="RANDOM")
    assert lb_for(by_name("api-service", "production"), short, IN_DEFAULT) is LbPolicy.ROUND_ROBIN


def test_export_to_hides_a_rule() -> None:
    hidden = dr("reviews", "default", "reviews", "  exportTo: ['.']\n", lb="ROUND_ROBIN")
    assert lb_for(by_name("sleep"), hidden, IN_ROOT) is LbPolicy.ROUND_ROBIN
    assert lb_for(ELSEWHERE, hidden, IN_ROOT) is LbPolicy.LEAST_REQUEST


def test_a_workload_selector_applies_to_the_proxies_it_selects_first() -> None:
    selected = dr(
        "for-sleep", "default", "reviews", "  workloadSelector: {matchLabels: {app: sleep}}\n", lb="RANDOM"
    )
    assert lb_for(by_name("sleep"), IN_DEFAULT, selected) is LbPolicy.RANDOM
    assert lb_for(by_name("my-app-v1"), IN_DEFAULT, selected) is LbPolicy.ROUND_ROBIN
    assert lb_for(ELSEWHERE, selected) is LbPolicy.PEAK_EWMA


def test_an_exact_host_beats_a_wildcard_in_one_namespace() -> None:
    wildcard = dr("all", "default", "'*.default.svc.cluster.local'", lb="RANDOM")
    assert lb_for(by_name("sleep"), wildcard, IN_DEFAULT) is LbPolicy.ROUND_ROBIN


def test_rules_for_one_host_in_one_namespace_merge() -> None:
    first = dr(
        "a", "default", "reviews", "  subsets: [{name: v1, labels: {version: v1}}]\n", lb="ROUND_ROBIN"
    )
    second = dr("b", "default", "reviews", "  subsets: [{name: v2, labels: {version: v2}}]\n", lb="RANDOM")
    route = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 50}
    - {destination: {host: reviews, subset: v2}, weight: 50}
"""
    compiled = compile_for([*seed_mesh(), *resources(first, second, route)], by_name("sleep"))
    v1 = cluster(compiled.snapshot, f"outbound|9080|v1|{REVIEWS}")
    v2 = cluster(compiled.snapshot, f"outbound|9080|v2|{REVIEWS}")
    assert [e.workload for e in v1.endpoints] == ["reviews-v1"]
    assert [e.workload for e in v2.endpoints] == ["reviews-v2"]
    assert v1.lb_policy is v2.lb_policy is LbPolicy.ROUND_ROBIN  # the first traffic policy counts
    assert any("already sets the traffic policy" in m for m in messages(compiled))


MERGE = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool: {tcp: {maxConnections: 10}, http: {http1MaxPendingRequests: 7}}
    outlierDetection: {consecutive5xxErrors: 3}
    portLevelSettings:
    - port: {number: 9080}
      connectionPool: {http: {http2MaxRequests: 50}}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      loadBalancer: {simple: LEAST_CONN}
  - name: v2
    labels: {version: v2}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 50}
    - {destination: {host: reviews, subset: v2}, weight: 50}
"""


def test_port_level_settings_and_subsets_replace_whole_fields() -> None:
    snapshot = compile_for([*seed_mesh(), *resources(MERGE)], by_name("sleep")).snapshot
    round_trip(snapshot)
    v1 = cluster(snapshot, f"outbound|9080|v1|{REVIEWS}")
    v2 = cluster(snapshot, f"outbound|9080|v2|{REVIEWS}")
    plain = cluster(snapshot, DEFAULT_CLUSTER)
    for c in (v1, v2, plain):
        # The port-level connectionPool replaces the top-level one whole.
        assert (c.limits.max_requests, c.limits.max_connections, c.limits.max_pending_requests) == (
            50,
            1 << 32,
            1 << 32,
        )
        assert c.outlier_detection is not None and c.outlier_detection.consecutive_5xx == 3
    assert v1.lb_policy is LbPolicy.LEAST_REQUEST  # LEAST_CONN is Istio's old name
    assert v2.lb_policy is LbPolicy.ROUND_ROBIN
    assert plain.lb_policy is LbPolicy.ROUND_ROBIN


def policy(body: str) -> tuple[Cluster, list[str]]:
    text = f"""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews, namespace: default}}
spec:
  host: reviews
  trafficPolicy:
{body}"""
    compiled = compile_for([*seed_mesh(), *resources(text)], by_name("sleep"))
    round_trip(compiled.snapshot)
    proxy_config(compiled.snapshot)
    return cluster(compiled.snapshot, DEFAULT_CLUSTER), messages(compiled)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("{httpHeaderName: X-User}", ConsistentHash(header="x-user")),
        (
            "{httpCookie: {name: session, ttl: 0s}}",
            ConsistentHash(cookie=HashCookie(name="session", ttl=0.0)),
        ),
        (
            "{useSourceIp: true, ringHash: {minimumRingSize: 4096}}",
            ConsistentHash(source_ip=True, ring_size=4096),
        ),
        (
            "{httpQueryParameterName: user, maglev: {tableSize: 65537}}",
            ConsistentHash(query_param="user", ring_size=65537),
        ),
        ("{useSourceIp: true, ringHash: {minimumRingSize: 4}}", ConsistentHash(source_ip=True, ring_size=16)),
    ],
)
def test_consistent_hash(given: str, expected: ConsistentHash) -> None:
    c, _ = policy(f"    loadBalancer: {{consistentHash: {given}}}\n")
    assert c.lb_policy is LbPolicy.CONSISTENT_HASH
    assert c.consistent_hash == expected


def test_passthrough_is_reported() -> None:
    c, found = policy("    loadBalancer: {simple: PASSTHROUGH}\n")
    assert c.lb_policy is LbPolicy.PEAK_EWMA
    assert any("PASSTHROUGH" in m for m in found)


def test_connection_pool() -> None:
    c, found = policy(
        "    connectionPool:\n"
        "      tcp: {maxConnections: 5, connectTimeout: 250ms, idleTimeout: 10m}\n"
        "      http: {http1MaxPendingRequests: 6, http2MaxRequests: 7, maxRequestsPerConnection: 8, "
        "idleTimeout: 30s, maxRetries: 3}\n"
    )
    limits = c.limits
    assert (limits.max_connections, limits.connect_timeout, limits.idle_timeout) == (5, 0.25, 30.0)
    assert (limits.max_pending_requests, limits.max_requests, limits.max_requests_per_connection) == (6, 7, 8)
    assert any("maxRetries" in m for m in found)


def test_zero_limits_mean_istios_default() -> None:
    c, _ = policy("    connectionPool: {tcp: {maxConnections: 0}, http: {http2MaxRequests: 0}}\n")
    assert (c.limits.max_connections, c.limits.max_requests) == (1 << 32, 1 << 32)


def test_outlier_detection_defaults_apply_only_when_present() -> None:
    c, _ = policy("    outlierDetection: {}\n")
    od = c.outlier_detection
    assert od is not None
    assert (od.consecutive_5xx, od.consecutive_gateway_errors, od.interval, od.base_ejection_time) == (
        5,
        None,
        10.0,
        30.0,
    )
    assert od.max_ejection_percent == 10
    c, _ = policy("    loadBalancer: {simple: RANDOM}\n")
    assert c.outlier_detection is None


def test_retry_budget_and_retry_policy_extension() -> None:
    c, found = policy(
        "    retryBudget: {percent: 5}\n    retryPolicy: {attempts: 1, retryOn: 'reset,envoy-ratelimited'}\n"
    )
    assert c.retry_budget.percent == 5.0
    assert c.default_retry is not None
    assert (c.default_retry.attempts, c.default_retry.retry_on) == (1, ["reset"])
    assert any("envoy-ratelimited" in m for m in found)
