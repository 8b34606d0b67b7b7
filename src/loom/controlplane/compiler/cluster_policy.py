"""A DestinationRule traffic policy (``Policy``) → the snapshot Cluster's fields.

| Istio | snapshot |
| --- | --- |
| ``loadBalancer.simple`` ROUND_ROBIN, LEAST_REQUEST, RANDOM | ``lb_policy`` the same |
| ``loadBalancer.simple`` LEAST_CONN (Istio's old name) | ``LEAST_REQUEST`` |
| absent, UNSPECIFIED | ``PEAK_EWMA`` (Loom's default) |
| PASSTHROUGH | not supported: the default, with a warning |
| ``loadBalancer.consistentHash`` | ``CONSISTENT_HASH``; ``ring_size`` (see below) |
| ``connectionPool.tcp.maxConnections`` | ``limits.max_connections`` |
| ``connectionPool.tcp.connectTimeout`` | ``limits.connect_timeout`` |
| ``connectionPool.http.http1MaxPendingRequests`` | ``limits.max_pending_requests`` |
| ``connectionPool.http.pendingRequests`` (Loom) | ``limits.max_pending_requests`` |
| ``connectionPool.http.http2MaxRequests`` | ``limits.max_requests`` |
| ``connectionPool.http.maxRequestsPerConnection`` | ``limits.max_requests_per_connection`` |
| ``connectionPool.http.idleTimeout`` (else ``tcp``'s) | ``limits.idle_timeout`` |
| ``outlierDetection`` | ``outlier_detection`` (defaults below) |
| ``retryBudget.percent`` | ``retry_budget.percent`` |
| ``retryPolicy`` (Loom's extension) | ``default_retry``; without it, Istio's default retry policy |

The ring size is ``ringHash.minimumRingSize`` or ``maglev.tableSize``, clamped to 16–1048576. When
``outlierDetection`` is present, absent fields take Envoy's defaults: 5 consecutive 5xx, interval
10s, base ejection time 30s, at most 10% ejected. Zero or negative limits mean Istio's default
(unlimited), as in Istio. ``tls`` is read by ``mtls.upstream_tls``, not here. Fields with no
snapshot equivalent are reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loom.api import defaults
from loom.api.resources.istio_networking import (
    ConnectionPoolSettings,
    LoadBalancerSettings,
)
from loom.api.resources.istio_networking import (
    OutlierDetection as IstioOutlierDetection,
)
from loom.api.resources.istio_networking import (
    RetryBudget as IstioRetryBudget,
)
from loom.controlplane.compiler.destination_rules import Located, Policy
from loom.controlplane.compiler.diagnostics import Warnings
from loom.controlplane.compiler.retries import default_retry_policy, retry_policy
from loom.snapshot.durations import Duration
from loom.snapshot.model import (
    ClusterLimits,
    ConsistentHash,
    HashCookie,
    LbPolicy,
    OutlierDetection,
    RetryBudget,
    RetryPolicy,
)

MIN_RING_SIZE = 16
MAX_RING_SIZE = 1 << 20

_SIMPLE = {
    "ROUND_ROBIN": LbPolicy.ROUND_ROBIN,
    "LEAST_REQUEST": LbPolicy.LEAST_REQUEST,
    "LEAST_CONN": LbPolicy.LEAST_REQUEST,
    "RANDOM": LbPolicy.RANDOM,
    "UNSPECIFIED": LbPolicy.PEAK_EWMA,
}


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    lb_policy: LbPolicy = LbPolicy.PEAK_EWMA
    consistent_hash: ConsistentHash | None = None
    limits: ClusterLimits = field(default_factory=ClusterLimits)
    outlier_detection: OutlierDetection | None = None
    retry_budget: RetryBudget = field(default_factory=RetryBudget)
    default_retry: RetryPolicy | None = None


def cluster_settings(policy: Policy, warnings: Warnings) -> ClusterSettings:
    lb_policy, consistent_hash = _load_balancer(policy.load_balancer, warnings)
    retry = (
        retry_policy(
            policy.retry_policy.value, policy.retry_policy.resource, policy.retry_policy.path, warnings
        )
        if policy.retry_policy is not None
        else default_retry_policy()
    )
    for name, what in ((policy.tunnel, "tunnel"), (policy.proxy_protocol, "proxyProtocol")):
        if name is not None:
            warnings.add(f"`{what}` is not supported; ignored", name.resource, name.path)
    return ClusterSettings(
        lb_policy=lb_policy,
        consistent_hash=consistent_hash,
        limits=_limits(policy.connection_pool, warnings),
        outlier_detection=_outlier(policy.outlier_detection, warnings),
        retry_budget=_retry_budget(policy.retry_budget, warnings),
        default_retry=retry,
    )


def _load_balancer(found: Located | None, warnings: Warnings) -> tuple[LbPolicy, ConsistentHash | None]:
    if found is None:
        return LbPolicy.PEAK_EWMA, None
    lb: LoadBalancerSettings = found.value
    for name, given in (
        ("localityLbSetting", lb.locality_lb_setting),
        ("warmupDurationSecs", lb.warmup_duration_secs),
        ("warmup", lb.warmup),
    ):
        if given is not None:
            warnings.add(f"`{name}` is not supported; ignored", found.resource, f"{found.path}.{name}")
    if lb.consistent_hash is not None:
        return LbPolicy.CONSISTENT_HASH, _consistent_hash(found, warnings)
    if lb.simple is None:
        return LbPolicy.PEAK_EWMA, None
    if lb.simple == "PASSTHROUGH":
        warnings.add(
            "PASSTHROUGH load balancing is not supported; using the default (PEAK_EWMA)",
            found.resource,
            f"{found.path}.simple",
        )
        return LbPolicy.PEAK_EWMA, None
    return _SIMPLE[lb.simple], None


def _consistent_hash(found: Located, warnings: Warnings) -> ConsistentHash:
    ch = found.value.consistent_hash
    path = f"{found.path}.consistentHash"
    size: int | None = None
    if ch.ring_hash is not None and ch.ring_hash.minimum_ring_size:
        size = ch.ring_hash.minimum_ring_size
    elif ch.maglev is not None and ch.maglev.table_size:
        size = ch.maglev.table_size
    elif ch.minimum_ring_size:
        size = ch.minimum_ring_size
    ring_size = defaults.RING_HASH_MINIMUM_RING_SIZE
    if size is not None:
        ring_size = min(max(size, MIN_RING_SIZE), MAX_RING_SIZE)
        if ring_size != size:
            warnings.add(
                f"ring size {size} is outside {MIN_RING_SIZE}-{MAX_RING_SIZE}; using {ring_size}",
                found.resource,
                path,
            )
    if ch.http_header_name is not None:
        return ConsistentHash(header=ch.http_header_name.lower(), ring_size=ring_size)
    if ch.http_cookie is not None:
        cookie = HashCookie(name=ch.http_cookie.name, path=ch.http_cookie.path or "/", ttl=ch.http_cookie.ttl)
        return ConsistentHash(cookie=cookie, ring_size=ring_size)
    if ch.http_query_parameter_name is not None:
        return ConsistentHash(query_param=ch.http_query_parameter_name, ring_size=ring_size)
    if not ch.use_source_ip:
        warnings.add("`useSourceIp: false` leaves no hash key; hashing by source IP", found.resource, path)
    return ConsistentHash(source_ip=True, ring_size=ring_size)


def _positive(value: int | None) -> int | None:
    return value if value is not None and value > 0 else None


def _limits(found: Located | None, warnings: Warnings) -> ClusterLimits:
    if found is None:
        return ClusterLimits()
    pool: ConnectionPoolSettings = found.value
    values: dict[str, object] = {}
    tcp, http = pool.tcp, pool.http
    if tcp is not None:
        if (n := _positive(tcp.max_connections)) is not None:
            values["max_connections"] = n
        if tcp.connect_timeout:
            values["connect_timeout"] = tcp.connect_timeout
        if tcp.idle_timeout:
            values["idle_timeout"] = tcp.idle_timeout
        for name, given in (
            ("tcpKeepalive", tcp.tcp_keepalive),
            ("maxConnectionDuration", tcp.max_connection_duration),
        ):
            if given is not None:
                warnings.add(
                    f"`{name}` is not supported; ignored", found.resource, f"{found.path}.tcp.{name}"
                )
    if http is not None:
        pending = (
            http.http1_max_pending_requests
            if http.http1_max_pending_requests is not None
            else http.pending_requests
        )
        if (n := _positive(pending)) is not None:
            values["max_pending_requests"] = n
        if (n := _positive(http.http2_max_requests)) is not None:
            values["max_requests"] = n
        if http.max_requests_per_connection is not None and http.max_requests_per_connection >= 0:
            values["max_requests_per_connection"] = http.max_requests_per_connection
        if http.idle_timeout:
            values["idle_timeout"] = http.idle_timeout
        if http.max_retries is not None:
            warnings.add(
                "`maxRetries` has no equivalent: the cluster's retry budget bounds retries instead",
                found.resource,
                f"{found.path}.http.maxRetries",
            )
        for name, given in (
            ("h2UpgradePolicy", http.h2_upgrade_policy if http.h2_upgrade_policy == "UPGRADE" else None),
            ("useClientProtocol", http.use_client_protocol or None),
            ("maxConcurrentStreams", http.max_concurrent_streams),
        ):
            if given is not None:
                warnings.add(
                    f"`{name}` is not supported (upstreams are HTTP/1.1); ignored",
                    found.resource,
                    f"{found.path}.http.{name}",
                )
    return ClusterLimits(**values)  # type: ignore[arg-type]


def _outlier(found: Located | None, warnings: Warnings) -> OutlierDetection | None:
    if found is None:
        return None
    od: IstioOutlierDetection = found.value
    consecutive_5xx = od.consecutive_5xx_errors
    if consecutive_5xx is None and od.consecutive_errors is not None:
        consecutive_5xx = max(od.consecutive_errors, 0)
    if consecutive_5xx is None:
        consecutive_5xx = defaults.OUTLIER_CONSECUTIVE_5XX_ERRORS
    for name, given in (
        ("splitExternalLocalOriginErrors", od.split_external_local_origin_errors or None),
        ("consecutiveLocalOriginFailures", od.consecutive_local_origin_failures),
        ("minHealthPercent", od.min_health_percent),
    ):
        if given is not None:
            warnings.add(f"`{name}` is not supported; ignored", found.resource, f"{found.path}.{name}")
    return OutlierDetection(
        consecutive_5xx=consecutive_5xx,
        consecutive_gateway_errors=od.consecutive_gateway_errors or None,
        interval=od.interval if od.interval else Duration(defaults.OUTLIER_INTERVAL),
        base_ejection_time=(
            od.base_ejection_time if od.base_ejection_time else Duration(defaults.OUTLIER_BASE_EJECTION_TIME)
        ),
        max_ejection_percent=(
            od.max_ejection_percent
            if od.max_ejection_percent is not None
            else defaults.OUTLIER_MAX_EJECTION_PERCENT
        ),
    )


def _retry_budget(found: Located | None, warnings: Warnings) -> RetryBudget:
    if found is None:
        return RetryBudget()
    budget: IstioRetryBudget = found.value
    if budget.min_retry_concurrency is not None:
        warnings.add(
            "`minRetryConcurrency` has no equivalent (the budget has min_retries_per_second); ignored",
            found.resource,
            f"{found.path}.minRetryConcurrency",
        )
    values: dict[str, object] = {}
    if budget.percent is not None:
        values["percent"] = budget.percent
    if budget.budget_interval:
        values["window"] = budget.budget_interval
    return RetryBudget(**values)  # type: ignore[arg-type]
