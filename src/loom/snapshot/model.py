"""The snapshot: everything one proxy must do, fully resolved.

A snapshot is produced by the control plane (or written by hand for ``loom proxy --config``)
and consumed by the proxy. It never refers to operator YAML: every subset is already an
endpoint list, every default is filled. See docs/snapshot.md for the format with examples.

The classes are msgspec Structs rather than pydantic models: the sidecar imports this schema,
and msgspec adds about 1 MB to its memory where pydantic added about 11 MB. Types, ranges and
lengths are checked by msgspec while it decodes (``loom.snapshot.load``); the other rules are
``__post_init__`` methods, which raise ``FieldError`` for a rule about one field (reported at
that field) and ``ValueError`` for a rule about the object as a whole.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Annotated, Literal

from msgspec import Meta, field
from msgspec.structs import force_setattr

from loom.snapshot.base import FieldError, Model, NonEmptyStr, Percentage, Port
from loom.snapshot.durations import Duration
from loom.snapshot.security import Identity, MtlsMode, Security, UpstreamTls

SCHEMA_VERSION = 1


# --- node -----------------------------------------------------------------------------------


class Node(Model, kw_only=True):
    """The workload this proxy stands beside."""

    workload: NonEmptyStr
    namespace: str = "default"
    service_account: str = "default"
    labels: dict[str, str] = {}
    trust_domain: str = "cluster.local"
    cluster_domain: str = "cluster.local"


class Admin(Model, kw_only=True):
    address: str = "127.0.0.1"
    port: Port = 15000

    def __post_init__(self) -> None:
        if self.address == "localhost":
            force_setattr(self, "address", "127.0.0.1")
            return
        try:
            ip = ipaddress.ip_address(self.address)
        except ValueError as exc:
            raise FieldError("address", f"{self.address!r} is not an IP address") from exc
        if not ip.is_loopback:
            raise FieldError("address", "the admin endpoint listens on loopback only (127.0.0.1 or ::1)")


# --- listeners ------------------------------------------------------------------------------


class Direction(StrEnum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class Protocol(StrEnum):
    HTTP = "http"
    TCP = "tcp"


class ListenerLimits(Model, kw_only=True):
    max_connections: Annotated[int, Meta(ge=1)] = 10_000
    max_request_header_bytes: Annotated[int, Meta(ge=1024)] = 60 * 1024
    max_headers: Annotated[int, Meta(ge=1)] = 100
    max_url_bytes: Annotated[int, Meta(ge=64)] = 8 * 1024
    max_request_body_bytes: Annotated[int, Meta(ge=0)] | None = None
    request_header_timeout: Duration = Duration(10.0)
    idle_timeout: Duration = Duration(300.0)
    drain_timeout: Duration = Duration(10.0)


class WeightedCluster(Model, kw_only=True):
    cluster: str
    weight: Annotated[int, Meta(ge=0)] = 1


def _check_total_weight(destinations: list[WeightedCluster]) -> None:
    if sum(d.weight for d in destinations) <= 0:
        raise FieldError(
            "destinations", "the destination weights are all zero; give at least one a positive weight"
        )


class TcpProxy(Model, kw_only=True):
    destinations: Annotated[list[WeightedCluster], Meta(min_length=1)]
    idle_timeout: Duration = Duration(3600.0)

    def __post_init__(self) -> None:
        _check_total_weight(self.destinations)


class Listener(Model, kw_only=True):
    name: NonEmptyStr
    direction: Direction
    protocol: Protocol = Protocol.HTTP
    address: str = "127.0.0.1"
    port: Port
    route_config: str | None = None
    """HTTP listeners: the name of the route configuration that routes their requests."""
    tcp: TcpProxy | None = None
    """TCP listeners: where the bytes go."""
    original_dst: bool = False
    """Transparent interception: route by the socket's original destination (SO_ORIGINAL_DST)."""
    limits: ListenerLimits = ListenerLimits()
    mtls: MtlsMode = MtlsMode.DISABLE
    """Inbound listeners: STRICT, PERMISSIVE or DISABLE (outbound listeners take plaintext from
    their app and must say DISABLE)."""

    def __post_init__(self) -> None:
        if self.direction is Direction.OUTBOUND and self.mtls is not MtlsMode.DISABLE:
            raise FieldError("mtls", "mtls applies to inbound listeners; an outbound one takes plaintext")
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


# --- routes ---------------------------------------------------------------------------------


class StringMatch(Model, kw_only=True):
    """Exactly one of exact / prefix / regex (RE2-compatible Python regex, full match)."""

    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None

    def __post_init__(self) -> None:
        if sum(v is not None for v in (self.exact, self.prefix, self.regex)) != 1:
            raise ValueError("set exactly one of exact, prefix, regex")


class HeaderMatch(Model, kw_only=True):
    """Like StringMatch; with none set, the header only has to be present."""

    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None

    def __post_init__(self) -> None:
        if sum(v is not None for v in (self.exact, self.prefix, self.regex)) > 1:
            raise ValueError("set at most one of exact, prefix, regex")


class RouteMatch(Model, kw_only=True):
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


RETRY_ON_CONDITIONS = frozenset(
    {
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
)
"""``retry_on`` conditions besides status codes ("503", any 100–599)."""

DEFAULT_RETRY_ON = ("connect-failure", "refused-stream", "unavailable", "cancelled", "503")


class RetryPolicy(Model, kw_only=True):
    attempts: Annotated[int, Meta(ge=0)] = 2
    """Retries after the first try (Istio's meaning: attempts=2 → up to 3 tries)."""
    per_try_timeout: Duration | None = None
    retry_on: list[str] = field(default_factory=lambda: list(DEFAULT_RETRY_ON))
    retriable_status_codes: list[int] = []
    backoff_base: Duration = Duration(0.025)
    backoff_max: Duration = Duration(0.25)

    def __post_init__(self) -> None:
        for value in self.retry_on:
            if value not in RETRY_ON_CONDITIONS and not (value.isdigit() and 100 <= int(value) <= 599):
                known = ", ".join(sorted(RETRY_ON_CONDITIONS))
                raise FieldError("retry_on", f"unknown retry_on condition {value!r}; known: {known}")


class Rewrite(Model, kw_only=True):
    uri_prefix: str | None = None
    """Replace the matched path prefix (or the whole path for exact/regex matches)."""
    authority: str | None = None


class Mirror(Model, kw_only=True):
    cluster: str
    percentage: Percentage = 100.0


class RouteAction(Model, kw_only=True):
    destinations: Annotated[list[WeightedCluster], Meta(min_length=1)]
    timeout: Duration | None = None
    """Covers all tries; None or 0 means no timeout (Istio's default)."""
    retry: RetryPolicy | None = None
    rewrite: Rewrite | None = None
    mirror: Mirror | None = None

    def __post_init__(self) -> None:
        _check_total_weight(self.destinations)


class Redirect(Model, kw_only=True):
    uri: str | None = None
    authority: str | None = None
    scheme: str | None = None
    port: int | None = None
    code: Annotated[int, Meta(ge=300, le=399)] = 301


class DirectResponse(Model, kw_only=True):
    status: Annotated[int, Meta(ge=100, le=599)]
    body: str = ""


class FaultDelay(Model, kw_only=True):
    fixed: Duration
    percentage: Percentage = 100.0


class FaultAbort(Model, kw_only=True):
    http_status: Annotated[int, Meta(ge=200, le=599)]
    percentage: Percentage = 100.0


class Fault(Model, kw_only=True):
    delay: FaultDelay | None = None
    abort: FaultAbort | None = None


class HeaderOps(Model, kw_only=True):
    set: dict[str, str] = {}
    add: dict[str, str] = {}
    remove: list[str] = []


class Route(Model, kw_only=True):
    name: str = ""
    matches: list[RouteMatch] = []
    """Empty: matches every request."""
    route: RouteAction | None = None
    redirect: Redirect | None = None
    direct_response: DirectResponse | None = None
    fault: Fault | None = None
    request_headers: HeaderOps | None = None
    response_headers: HeaderOps | None = None

    def __post_init__(self) -> None:
        if sum(a is not None for a in (self.route, self.redirect, self.direct_response)) != 1:
            raise ValueError("set exactly one of route, redirect, direct_response")


class VirtualHost(Model, kw_only=True):
    name: NonEmptyStr
    domains: Annotated[list[str], Meta(min_length=1)]
    """Host names this virtual host answers. A Kubernetes-style FQDN (name.ns.svc.<cluster domain>)
    also answers to its short forms; ``*`` answers everything not matched elsewhere."""
    port: int | None = None
    """The service port; None answers on any port."""
    routes: Annotated[list[Route], Meta(min_length=1)]


class RouteConfig(Model, kw_only=True):
    name: NonEmptyStr
    virtual_hosts: list[VirtualHost]


# --- clusters -------------------------------------------------------------------------------


class LbPolicy(StrEnum):
    PEAK_EWMA = "PEAK_EWMA"
    ROUND_ROBIN = "ROUND_ROBIN"
    LEAST_REQUEST = "LEAST_REQUEST"
    RANDOM = "RANDOM"
    CONSISTENT_HASH = "CONSISTENT_HASH"


class HashCookie(Model, kw_only=True):
    name: str
    path: str = "/"
    ttl: Duration | None = None


class ConsistentHash(Model, kw_only=True):
    header: str | None = None
    cookie: HashCookie | None = None
    source_ip: bool = False
    query_param: str | None = None
    ring_size: Annotated[int, Meta(ge=16, le=1 << 20)] = 1024

    def __post_init__(self) -> None:
        keys = (self.header, self.cookie, self.query_param, self.source_ip or None)
        if sum(k is not None for k in keys) != 1:
            raise ValueError("set exactly one hash key: header, cookie, source_ip or query_param")


class ClusterLimits(Model, kw_only=True):
    max_connections: Annotated[int, Meta(ge=1)] = 1 << 32
    max_pending_requests: Annotated[int, Meta(ge=1)] = 1 << 32
    max_requests: Annotated[int, Meta(ge=1)] = 1 << 32
    max_requests_per_connection: Annotated[int, Meta(ge=0)] = 0
    """0: unlimited."""
    connect_timeout: Duration = Duration(10.0)
    idle_timeout: Duration = Duration(3600.0)


class OutlierDetection(Model, kw_only=True):
    consecutive_5xx: Annotated[int, Meta(ge=0)] | None = 5
    consecutive_gateway_errors: Annotated[int, Meta(ge=0)] | None = None
    interval: Duration = Duration(10.0)
    base_ejection_time: Duration = Duration(30.0)
    max_ejection_percent: Annotated[int, Meta(ge=0, le=100)] = 10


class RetryBudget(Model, kw_only=True):
    """Retries may add at most ``percent`` to the request rate, plus ``min_retries_per_second``."""

    percent: Annotated[float, Meta(ge=0)] = 20.0
    min_retries_per_second: Annotated[float, Meta(ge=0)] = 10.0
    window: Duration = Duration(10.0)


class Endpoint(Model, kw_only=True):
    address: str
    port: Annotated[int, Meta(ge=1, le=65535)]
    weight: Annotated[int, Meta(ge=1)] = 1
    labels: dict[str, str] = {}
    workload: str = "unknown"
    namespace: str = "unknown"
    service_account: str = "unknown"
    mtls: bool = False
    """Talk mutual TLS to this endpoint (it has a sidecar); the cluster's ``tls`` says whom to trust."""


class Cluster(Model, kw_only=True):
    name: NonEmptyStr
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
    tls: UpstreamTls | None = None

    def __post_init__(self) -> None:
        seen: set[tuple[str, int]] = set()
        for endpoint in self.endpoints:
            if endpoint.mtls and self.tls is None:
                raise FieldError("tls", "endpoints with mtls: true need tls.server_identities")
            key = (endpoint.address, endpoint.port)
            if key in seen:
                raise FieldError("endpoints", f"endpoint {endpoint.address}:{endpoint.port} is listed twice")
            seen.add(key)
        if self.lb_policy is LbPolicy.CONSISTENT_HASH and self.consistent_hash is None:
            raise ValueError("lb_policy CONSISTENT_HASH needs consistent_hash")


# --- telemetry ------------------------------------------------------------------------------


class AccessLog(Model, kw_only=True):
    path: str
    """A file path, or /dev/stdout."""
    encoding: Literal["JSON", "TEXT"] = "JSON"


class TracingCollector(Model, kw_only=True):
    """Where sampled spans go: OTLP/HTTP protobuf (``…/v1/traces``) or Zipkin JSON v2 (``…/api/v2/spans``)."""

    protocol: Literal["otlp", "zipkin"]
    url: NonEmptyStr
    """``http://host:port/path``: the full URL spans are POSTed to."""

    def __post_init__(self) -> None:
        if not self.url.startswith("http://"):
            raise FieldError("url", f"{self.url!r}: a collector URL starts with http://")


class Tracing(Model, kw_only=True):
    """Distributed tracing: the sidecar starts or continues a trace on every HTTP request."""

    sampling: Percentage = 1.0
    """Percent of the requests that start a trace here; an upstream decision is honoured."""
    collectors: list[TracingCollector] = []
    control_plane: bool = False
    """Also send spans to the control plane this sidecar is connected to (OTLP/HTTP)."""
    report: bool = True
    """False: propagate and sample, but send no spans (Telemetry ``disableSpanReporting``)."""
    max_batch: Annotated[int, Meta(ge=1, le=10_000)] = 256
    """Spans per POST; a full batch is sent at once, else every ``flush_interval``."""
    max_queue: Annotated[int, Meta(ge=1, le=1_000_000)] = 4096
    """Spans held waiting for export; beyond it new spans are dropped (counted)."""
    flush_interval: Duration = 1.0
    export_timeout: Duration = 2.0


class Telemetry(Model, kw_only=True):
    metrics: bool = True
    access_log: AccessLog | None = None
    tracing: Tracing | None = None
    """None: no tracing (trace headers pass through untouched)."""


# --- the snapshot ---------------------------------------------------------------------------


class Snapshot(Model, kw_only=True):
    schema_version: Literal[1] = SCHEMA_VERSION
    version: str = "0"
    node: Node
    admin: Admin = Admin()
    listeners: list[Listener] = []
    route_configs: list[RouteConfig] = []
    clusters: list[Cluster] = []
    telemetry: Telemetry = Telemetry()
    identity: Identity | None = None
    """A proxy run from a file: its certificate files. Needed when any listener or endpoint uses mTLS
    and no control plane provides the certificate."""
    security: Security = Security()
