"""The snapshot: everything one proxy must do, fully resolved.

A snapshot is produced by the control plane (or written by hand for ``loom proxy --config``)
and consumed by the proxy. It never refers to operator YAML: every subset is already an
endpoint list, every default is filled. See docs/snapshot.md for the format with examples.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loom.snapshot.durations import Duration

SCHEMA_VERSION = 1


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- node -----------------------------------------------------------------------------------


class Node(Model):
    """The workload this proxy stands beside."""

    workload: str = Field(min_length=1)
    namespace: str = "default"
    service_account: str = "default"
    labels: dict[str, str] = {}
    trust_domain: str = "cluster.local"
    cluster_domain: str = "cluster.local"


class Admin(Model):
    address: str = "127.0.0.1"
    port: int = Field(default=15000, ge=0, le=65535)

    @field_validator("address")
    @classmethod
    def _loopback_only(cls, value: str) -> str:
        if value == "localhost":
            return "127.0.0.1"
        try:
            ip = ipaddress.ip_address(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IP address") from exc
        if not ip.is_loopback:
            raise ValueError("the admin endpoint listens on loopback only (127.0.0.1 or ::1)")
        return value


# --- listeners ------------------------------------------------------------------------------


class Direction(StrEnum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class Protocol(StrEnum):
    HTTP = "http"
    TCP = "tcp"


class ListenerLimits(Model):
    max_connections: int = Field(default=10_000, ge=1)
    max_request_header_bytes: int = Field(default=60 * 1024, ge=1024)
    max_headers: int = Field(default=100, ge=1)
    max_url_bytes: int = Field(default=8 * 1024, ge=64)
    max_request_body_bytes: int | None = Field(default=None, ge=0)
    request_header_timeout: Duration = 10.0
    idle_timeout: Duration = 300.0
    drain_timeout: Duration = 10.0


class WeightedCluster(Model):
    cluster: str
    weight: int = Field(default=1, ge=0)


def _positive_total_weight(destinations: list[WeightedCluster]) -> list[WeightedCluster]:
    if sum(d.weight for d in destinations) <= 0:
        raise ValueError("the destination weights are all zero; give at least one a positive weight")
    return destinations


class TcpProxy(Model):
    destinations: list[WeightedCluster] = Field(min_length=1)
    idle_timeout: Duration = 3600.0

    _some_weight = field_validator("destinations")(_positive_total_weight)


class Listener(Model):
    name: str = Field(min_length=1)
    direction: Direction
    protocol: Protocol = Protocol.HTTP
    address: str = "127.0.0.1"
    port: int = Field(ge=0, le=65535)
    route_config: str | None = None
    """HTTP listeners: the name of the route configuration that routes their requests."""
    tcp: TcpProxy | None = None
    """TCP listeners: where the bytes go."""
    original_dst: bool = False
    """Transparent interception: route by the socket's original destination (SO_ORIGINAL_DST)."""
    limits: ListenerLimits = ListenerLimits()

    @model_validator(mode="after")
    def _protocol_fields(self) -> Listener:
        if self.protocol is Protocol.HTTP:
            if self.route_config is None:
                raise ValueError("an http listener needs route_config")
            if self.tcp is not None:
                raise ValueError("an http listener routes with route_config; remove tcp or set protocol: tcp")
        else:
            if self.tcp is None:
                raise ValueError("a tcp listener needs tcp.destinations")
            if self.route_config is not None:
                raise ValueError("a tcp listener has no routes; remove route_config or set protocol: http")
        return self


# --- routes ---------------------------------------------------------------------------------


class StringMatch(Model):
    """Exactly one of exact / prefix / regex (RE2-compatible Python regex, full match)."""

    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> StringMatch:
        if sum(v is not None for v in (self.exact, self.prefix, self.regex)) != 1:
            raise ValueError("set exactly one of exact, prefix, regex")
        return self


class HeaderMatch(Model):
    """Like StringMatch; with none set, the header only has to be present."""

    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def _at_most_one(self) -> HeaderMatch:
        if sum(v is not None for v in (self.exact, self.prefix, self.regex)) > 1:
            raise ValueError("set at most one of exact, prefix, regex")
        return self


class RouteMatch(Model):
    """All conditions must hold (AND). A route matches if any of its matches does (OR)."""

    path: StringMatch | None = None
    ignore_uri_case: bool = False
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: dict[str, HeaderMatch] = {}
    without_headers: dict[str, HeaderMatch] = {}
    query_params: dict[str, StringMatch] = {}
    source_labels: dict[str, str] = {}
    port: int | None = None


class RetryPolicy(Model):
    attempts: int = Field(default=2, ge=0)
    """Retries after the first try (Istio's meaning: attempts=2 → up to 3 tries)."""
    per_try_timeout: Duration | None = None
    retry_on: list[str] = ["connect-failure", "refused-stream", "unavailable", "cancelled", "503"]
    retriable_status_codes: list[int] = []
    backoff_base: Duration = 0.025
    backoff_max: Duration = 0.25

    @field_validator("retry_on")
    @classmethod
    def _known_conditions(cls, values: list[str]) -> list[str]:
        known = {
            "5xx",
            "gateway-error",
            "reset",
            "connect-failure",
            "refused-stream",
            "retriable-4xx",
            "retriable-status-codes",
            "unavailable",
            "cancelled",
            "deadline-exceeded",
            "resource-exhausted",
            "internal",
        }
        for value in values:
            if value not in known and not (value.isdigit() and 100 <= int(value) <= 599):
                raise ValueError(f"unknown retry_on condition {value!r}; known: {', '.join(sorted(known))}")
        return values


class Rewrite(Model):
    uri_prefix: str | None = None
    """Replace the matched path prefix (or the whole path for exact/regex matches)."""
    authority: str | None = None


class Mirror(Model):
    cluster: str
    percentage: float = Field(default=100.0, ge=0, le=100)


class RouteAction(Model):
    destinations: list[WeightedCluster] = Field(min_length=1)
    timeout: Duration | None = None
    """Covers all tries; None or 0 means no timeout (Istio's default)."""
    retry: RetryPolicy | None = None
    rewrite: Rewrite | None = None
    mirror: Mirror | None = None

    _some_weight = field_validator("destinations")(_positive_total_weight)


class Redirect(Model):
    uri: str | None = None
    authority: str | None = None
    scheme: str | None = None
    port: int | None = None
    code: int = Field(default=301, ge=300, le=399)


class DirectResponse(Model):
    status: int = Field(ge=100, le=599)
    body: str = ""


class FaultDelay(Model):
    fixed: Duration
    percentage: float = Field(default=100.0, ge=0, le=100)


class FaultAbort(Model):
    http_status: int = Field(ge=200, le=599)
    percentage: float = Field(default=100.0, ge=0, le=100)


class Fault(Model):
    delay: FaultDelay | None = None
    abort: FaultAbort | None = None


class HeaderOps(Model):
    set: dict[str, str] = {}
    add: dict[str, str] = {}
    remove: list[str] = []


class Route(Model):
    name: str = ""
    matches: list[RouteMatch] = []
    """Empty: matches every request."""
    route: RouteAction | None = None
    redirect: Redirect | None = None
    direct_response: DirectResponse | None = None
    fault: Fault | None = None
    request_headers: HeaderOps | None = None
    response_headers: HeaderOps | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Route:
        if sum(a is not None for a in (self.route, self.redirect, self.direct_response)) != 1:
            raise ValueError("set exactly one of route, redirect, direct_response")
        return self


class VirtualHost(Model):
    name: str = Field(min_length=1)
    domains: list[str] = Field(min_length=1)
    """Host names this virtual host answers. A Kubernetes-style FQDN (name.ns.svc.<cluster domain>)
    also answers to its short forms; ``*`` answers everything not matched elsewhere."""
    port: int | None = None
    """The service port; None answers on any port."""
    routes: list[Route] = Field(min_length=1)


class RouteConfig(Model):
    name: str = Field(min_length=1)
    virtual_hosts: list[VirtualHost]


# --- clusters -------------------------------------------------------------------------------


class LbPolicy(StrEnum):
    PEAK_EWMA = "PEAK_EWMA"
    ROUND_ROBIN = "ROUND_ROBIN"
    LEAST_REQUEST = "LEAST_REQUEST"
    RANDOM = "RANDOM"
    CONSISTENT_HASH = "CONSISTENT_HASH"


class HashCookie(Model):
    name: str
    path: str = "/"
    ttl: Duration | None = None


class ConsistentHash(Model):
    header: str | None = None
    cookie: HashCookie | None = None
    source_ip: bool = False
    query_param: str | None = None
    ring_size: int = Field(default=1024, ge=16, le=1 << 20)

    @model_validator(mode="after")
    def _one_key(self) -> ConsistentHash:
        keys = (self.header, self.cookie, self.query_param, self.source_ip or None)
        if sum(k is not None for k in keys) != 1:
            raise ValueError("set exactly one hash key: header, cookie, source_ip or query_param")
        return self


class ClusterLimits(Model):
    max_connections: int = Field(default=1 << 32, ge=1)
    max_pending_requests: int = Field(default=1 << 32, ge=1)
    max_requests: int = Field(default=1 << 32, ge=1)
    max_requests_per_connection: int = Field(default=0, ge=0)
    """0: unlimited."""
    connect_timeout: Duration = 10.0
    idle_timeout: Duration = 3600.0


class OutlierDetection(Model):
    consecutive_5xx: int | None = Field(default=5, ge=0)
    consecutive_gateway_errors: int | None = Field(default=None, ge=0)
    interval: Duration = 10.0
    base_ejection_time: Duration = 30.0
    max_ejection_percent: int = Field(default=10, ge=0, le=100)


class RetryBudget(Model):
    """Retries may add at most ``percent`` to the request rate, plus ``min_retries_per_second``."""

    percent: float = Field(default=20.0, ge=0)
    min_retries_per_second: float = Field(default=10.0, ge=0)
    window: Duration = 10.0


class Endpoint(Model):
    address: str
    port: int = Field(ge=1, le=65535)
    weight: int = Field(default=1, ge=1)
    labels: dict[str, str] = {}
    workload: str = "unknown"
    namespace: str = "unknown"
    service_account: str = "unknown"


class Cluster(Model):
    name: str = Field(min_length=1)
    service: str = "unknown"
    """The destination service's FQDN, for telemetry."""
    protocol: Protocol = Protocol.HTTP
    lb_policy: LbPolicy = LbPolicy.PEAK_EWMA
    consistent_hash: ConsistentHash | None = None
    limits: ClusterLimits = ClusterLimits()
    outlier_detection: OutlierDetection | None = None
    retry_budget: RetryBudget = RetryBudget()
    default_retry: RetryPolicy | None = None
    """Retries for routes that set none (the destination's own default)."""
    endpoints: list[Endpoint] = []

    @field_validator("endpoints")
    @classmethod
    def _unique_endpoints(cls, value: list[Endpoint]) -> list[Endpoint]:
        seen: set[tuple[str, int]] = set()
        for endpoint in value:
            key = (endpoint.address, endpoint.port)
            if key in seen:
                raise ValueError(f"endpoint {endpoint.address}:{endpoint.port} is listed twice")
            seen.add(key)
        return value

    @model_validator(mode="after")
    def _hash_needs_key(self) -> Cluster:
        if self.lb_policy is LbPolicy.CONSISTENT_HASH and self.consistent_hash is None:
            raise ValueError("lb_policy CONSISTENT_HASH needs consistent_hash")
        return self


# --- telemetry ------------------------------------------------------------------------------


class AccessLog(Model):
    path: str
    """A file path, or /dev/stdout."""
    encoding: Literal["JSON", "TEXT"] = "JSON"


class Telemetry(Model):
    metrics: bool = True
    access_log: AccessLog | None = None


# --- the snapshot ---------------------------------------------------------------------------


class Snapshot(Model):
    schema_version: Literal[1] = SCHEMA_VERSION
    version: str = "0"
    node: Node
    admin: Admin = Admin()
    listeners: list[Listener] = []
    route_configs: list[RouteConfig] = []
    clusters: list[Cluster] = []
    telemetry: Telemetry = Telemetry()
