"""``networking.istio.io`` (v1alpha3, v1beta1, v1): VirtualService, DestinationRule, WorkloadEntry,
ServiceEntry.

Field names, types and enums follow Istio's reference (``networking/v1alpha3/*.proto``; the three
versions share one schema). Istio's defaults for absent fields are applied by the compiler, not
here: see ``loom.api.defaults``. The two fields Istio lacks but Loom accepts are marked with
:func:`extension` (``trafficPolicy.retryPolicy`` and ``connectionPool.http.pendingRequests``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from loom.api.resources.base import ApiModel, extension
from loom.api.resources.values import (
    Bool,
    Duration,
    Float,
    HttpStatus,
    Int,
    Int32,
    Labels,
    NonEmpty,
    Percent,
    Port,
    Str,
    StringMatch,
    UInt32,
    invalid,
    only_one,
)

# --- VirtualService ----------------------------------------------------------------------------


class PortSelector(ApiModel):
    number: Port | None = None


class Destination(ApiModel):
    host: Str
    subset: Str | None = None
    port: PortSelector | None = None


class HeaderOperations(ApiModel):
    set: dict[str, Str] = {}
    add: dict[str, Str] = {}
    remove: tuple[Str, ...] = ()


class Headers(ApiModel):
    request: HeaderOperations | None = None
    response: HeaderOperations | None = None


def _lowercase(name: str) -> str:
    if name != name.lower():
        raise invalid(
            f"header name {name!r} has upper-case letters",
            f"Istio matches header names in lower case: write {name.lower()!r}",
        )
    return name


HeaderName = Annotated[Str, AfterValidator(_lowercase)]


class HTTPMatchRequest(ApiModel):
    name: Str | None = None
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: dict[HeaderName, StringMatch] = {}
    port: Port | None = None
    source_labels: Labels = {}
    gateways: tuple[Str, ...] = ()
    query_params: dict[str, StringMatch] = {}
    ignore_uri_case: Bool | None = None
    without_headers: dict[HeaderName, StringMatch] = {}
    source_namespace: Str | None = None
    stat_prefix: Str | None = None


class HTTPRouteDestination(ApiModel):
    destination: Destination
    weight: Annotated[Int32, Field(ge=0)] | None = None
    headers: Headers | None = None


class RouteDestination(ApiModel):
    destination: Destination
    weight: Annotated[Int32, Field(ge=0)] | None = None


class HTTPRedirect(ApiModel):
    uri: Str | None = None
    authority: Str | None = None
    port: Port | None = None
    derive_port: Literal["FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"] | None = None
    scheme: Str | None = None
    redirect_code: Annotated[Int, Field(ge=300, le=399)] | None = None

    @model_validator(mode="after")
    def _port(self) -> HTTPRedirect:
        only_one(self, ("port", "derivePort"))
        return self


class HTTPBody(ApiModel):
    string: Str | None = None
    bytes: Str | None = None  # base64, as protobuf JSON writes bytes

    @model_validator(mode="after")
    def _one(self) -> HTTPBody:
        only_one(self, ("string", "bytes"))
        return self


class HTTPDirectResponse(ApiModel):
    status: Annotated[Int, Field(ge=200, le=599)]
    body: HTTPBody | None = None


class Delegate(ApiModel):
    name: Str | None = None
    namespace: Str | None = None


class RegexRewrite(ApiModel):
    match: Str | None = None
    rewrite: Str | None = None


class HTTPRewrite(ApiModel):
    uri: Str | None = None
    authority: Str | None = None
    uri_regex_rewrite: RegexRewrite | None = None

    @model_validator(mode="after")
    def _one_uri(self) -> HTTPRewrite:
        only_one(self, ("uri", "uriRegexRewrite"))
        return self


class HTTPRetry(ApiModel):
    """Retry policy; ``retryOn`` is Envoy's comma-separated list (``5xx,reset,503,...``)."""

    attempts: Annotated[Int32, Field(ge=0)] | None = None
    per_try_timeout: Duration | None = None
    retry_on: Str | None = None
    retry_remote_localities: Bool | None = None
    retry_ignore_previous_hosts: Bool | None = None
    backoff: Duration | None = None


class Delay(ApiModel):
    fixed_delay: Duration | None = None
    exponential_delay: Duration | None = None
    percentage: Percent | None = None
    percent: Annotated[Int32, Field(ge=0, le=100)] | None = None  # deprecated by Istio: use percentage

    @model_validator(mode="after")
    def _one_delay(self) -> Delay:
        only_one(self, ("fixedDelay", "exponentialDelay"), required=True)
        return self


class Abort(ApiModel):
    http_status: HttpStatus | None = None
    grpc_status: Str | None = None
    http2_error: Str | None = None
    percentage: Percent | None = None

    @model_validator(mode="after")
    def _one_error(self) -> Abort:
        only_one(self, ("httpStatus", "grpcStatus", "http2Error"), required=True)
        return self


class HTTPFaultInjection(ApiModel):
    delay: Delay | None = None
    abort: Abort | None = None


class HTTPMirrorPolicy(ApiModel):
    destination: Destination
    percentage: Percent | None = None


class CorsPolicy(ApiModel):
    allow_origins: tuple[StringMatch, ...] = ()
    allow_origin: tuple[Str, ...] = ()  # deprecated by Istio: use allowOrigins
    allow_methods: tuple[Str, ...] = ()
    allow_headers: tuple[Str, ...] = ()
    expose_headers: tuple[Str, ...] = ()
    max_age: Duration | None = None
    allow_credentials: Bool | None = None
    unmatched_preflights: Literal["UNSPECIFIED", "FORWARD", "IGNORE"] | None = None


class HTTPRoute(ApiModel):
    """One HTTP rule; rules are tried in order and the first match wins."""

    name: Str | None = None
    match: tuple[HTTPMatchRequest, ...] = ()
    route: tuple[HTTPRouteDestination, ...] = ()
    redirect: HTTPRedirect | None = None
    direct_response: HTTPDirectResponse | None = None
    delegate: Delegate | None = None
    rewrite: HTTPRewrite | None = None
    timeout: Duration | None = None
    retries: HTTPRetry | None = None
    fault: HTTPFaultInjection | None = None
    mirror: Destination | None = None
    mirrors: tuple[HTTPMirrorPolicy, ...] = ()
    mirror_percentage: Percent | None = None
    mirror_percent: Annotated[Int, Field(ge=0, le=100)] | None = None  # deprecated: use mirrorPercentage
    cors_policy: CorsPolicy | None = None
    headers: Headers | None = None

    @model_validator(mode="after")
    def _one_action(self) -> HTTPRoute:
        actions = [
            name
            for name, given in (
                ("route", bool(self.route)),
                ("redirect", self.redirect is not None),
                ("directResponse", self.direct_response is not None),
                ("delegate", self.delegate is not None),
            )
            if given
        ]
        if not actions:
            raise invalid(
                "an HTTP rule needs `route`, `redirect`, `directResponse` or `delegate`",
                "add `route:` with at least one `- destination: {host: ...}`",
            )
        if len(actions) > 1:
            raise invalid(
                " and ".join(f"`{name}`" for name in actions) + " cannot be used in the same rule",
                "a rule either forwards (route), redirects, answers directly or delegates: keep one",
            )
        if self.redirect is not None and self.rewrite is not None:
            raise invalid("`rewrite` cannot be used with `redirect`", "remove `rewrite` or `redirect`")
        if self.mirror is not None and self.mirrors:
            raise invalid("`mirror` and `mirrors` cannot be used together", "move `mirror` into `mirrors`")
        return self


class L4MatchAttributes(ApiModel):
    destination_subnets: tuple[Str, ...] = ()
    port: Port | None = None
    source_labels: Labels = {}
    gateways: tuple[Str, ...] = ()
    source_namespace: Str | None = None


class TLSMatchAttributes(ApiModel):
    sni_hosts: Annotated[tuple[Str, ...], NonEmpty]
    destination_subnets: tuple[Str, ...] = ()
    port: Port | None = None
    source_labels: Labels = {}
    gateways: tuple[Str, ...] = ()
    source_namespace: Str | None = None


class TCPRoute(ApiModel):
    """A rule for opaque TCP traffic (ports that are not HTTP or TLS)."""

    match: tuple[L4MatchAttributes, ...] = ()
    route: tuple[RouteDestination, ...] = ()


class TLSRoute(ApiModel):
    match: Annotated[tuple[TLSMatchAttributes, ...], NonEmpty]
    route: tuple[RouteDestination, ...] = ()


class VirtualServiceSpec(ApiModel):
    hosts: tuple[Str, ...] = ()
    gateways: tuple[Str, ...] = ()
    http: tuple[HTTPRoute, ...] = ()
    tls: tuple[TLSRoute, ...] = ()
    tcp: tuple[TCPRoute, ...] = ()
    export_to: tuple[Str, ...] = ()


# --- DestinationRule ---------------------------------------------------------------------------


class HTTPCookieAttribute(ApiModel):
    name: Str
    value: Str | None = None


class HTTPCookie(ApiModel):
    name: Str
    path: Str | None = None
    ttl: Duration | None = None
    attributes: tuple[HTTPCookieAttribute, ...] = ()


class RingHash(ApiModel):
    minimum_ring_size: UInt32 | None = None


class MagLev(ApiModel):
    table_size: UInt32 | None = None


class ConsistentHashLB(ApiModel):
    http_header_name: Str | None = None
    http_cookie: HTTPCookie | None = None
    use_source_ip: Bool | None = None
    http_query_parameter_name: Str | None = None
    ring_hash: RingHash | None = None
    maglev: MagLev | None = None
    minimum_ring_size: UInt32 | None = None  # deprecated by Istio: use ringHash

    @model_validator(mode="after")
    def _one_key(self) -> ConsistentHashLB:
        only_one(
            self, ("httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName"), required=True
        )
        only_one(self, ("ringHash", "maglev"))
        return self


class LocalityDistribute(ApiModel):
    from_: Str | None = Field(default=None, alias="from")
    to: dict[str, UInt32] = {}


class LocalityFailover(ApiModel):
    from_: Str | None = Field(default=None, alias="from")
    to: Str | None = None


class LocalityLoadBalancerSetting(ApiModel):
    distribute: tuple[LocalityDistribute, ...] = ()
    failover: tuple[LocalityFailover, ...] = ()
    failover_priority: tuple[Str, ...] = ()
    enabled: Bool | None = None


class WarmupConfiguration(ApiModel):
    duration: Duration
    minimum_percent: Annotated[Float, Field(ge=0.0, le=100.0)] | None = None
    aggression: Annotated[Float, Field(ge=1.0)] | None = None


SimpleLB = Literal["UNSPECIFIED", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST", "LEAST_CONN"]


class LoadBalancerSettings(ApiModel):
    simple: SimpleLB | None = None
    consistent_hash: ConsistentHashLB | None = None
    locality_lb_setting: LocalityLoadBalancerSetting | None = None
    warmup_duration_secs: Duration | None = None
    warmup: WarmupConfiguration | None = None

    @model_validator(mode="after")
    def _one_policy(self) -> LoadBalancerSettings:
        only_one(self, ("simple", "consistentHash"))
        only_one(self, ("warmupDurationSecs", "warmup"))
        return self


class TcpKeepalive(ApiModel):
    probes: UInt32 | None = None
    time: Duration | None = None
    interval: Duration | None = None


class TCPSettings(ApiModel):
    max_connections: Int32 | None = None
    connect_timeout: Duration | None = None
    tcp_keepalive: TcpKeepalive | None = None
    max_connection_duration: Duration | None = None
    idle_timeout: Duration | None = None


class HTTPSettings(ApiModel):
    http1_max_pending_requests: Int32 | None = None
    http2_max_requests: Int32 | None = None
    max_requests_per_connection: Int32 | None = None
    max_retries: Int32 | None = None
    idle_timeout: Duration | None = None
    h2_upgrade_policy: Literal["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"] | None = None
    use_client_protocol: Bool | None = None
    max_concurrent_streams: Int32 | None = None
    pending_requests: Int32 | None = extension(
        "Istio's name is http1MaxPendingRequests; Loom reads pendingRequests as the pending-request limit"
    )

    @model_validator(mode="after")
    def _one_pending_limit(self) -> HTTPSettings:
        only_one(self, ("http1MaxPendingRequests", "pendingRequests"))
        return self


class ConnectionPoolSettings(ApiModel):
    tcp: TCPSettings | None = None
    http: HTTPSettings | None = None


class OutlierDetection(ApiModel):
    split_external_local_origin_errors: Bool | None = None
    consecutive_local_origin_failures: UInt32 | None = None
    consecutive_gateway_errors: UInt32 | None = None
    consecutive_5xx_errors: UInt32 | None = None
    interval: Duration | None = None
    base_ejection_time: Duration | None = None
    max_ejection_percent: Annotated[Int32, Field(ge=0, le=100)] | None = None
    min_health_percent: Annotated[Int32, Field(ge=0, le=100)] | None = None
    consecutive_errors: Int32 | None = None  # deprecated by Istio: use consecutive5xxErrors


class ClientTLSSettings(ApiModel):
    mode: Literal["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"] | None = None
    client_certificate: Str | None = None
    private_key: Str | None = None
    ca_certificates: Str | None = None
    credential_name: Str | None = None
    subject_alt_names: tuple[Str, ...] = ()
    sni: Str | None = None
    insecure_skip_verify: Bool | None = None
    ca_crl: Str | None = None


class TunnelSettings(ApiModel):
    protocol: Str | None = None
    target_host: Str
    target_port: Port


class ProxyProtocol(ApiModel):
    version: Literal["V1", "V2"] | None = None


class RetryBudget(ApiModel):
    percent: Annotated[Float, Field(ge=0.0, le=100.0)] | None = None
    min_retry_concurrency: UInt32 | None = None
    budget_interval: Duration | None = None


class PortTrafficPolicy(ApiModel):
    port: PortSelector | None = None
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None


class TrafficPolicy(ApiModel):
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None
    port_level_settings: tuple[PortTrafficPolicy, ...] = ()
    tunnel: TunnelSettings | None = None
    proxy_protocol: ProxyProtocol | None = None
    retry_budget: RetryBudget | None = None
    retry_policy: HTTPRetry | None = extension(
        "Istio sets retries on VirtualService routes (http[].retries); Loom uses retryPolicy as the "
        "destination's default retry policy for routes that set none"
    )


class Subset(ApiModel):
    name: Str
    labels: Labels = {}
    traffic_policy: TrafficPolicy | None = None


class WorkloadSelector(ApiModel):
    """A selector by labels, as ``DestinationRule.workloadSelector`` writes it (``matchLabels``)."""

    match_labels: Labels = {}


class DestinationRuleSpec(ApiModel):
    host: Str
    traffic_policy: TrafficPolicy | None = None
    subsets: tuple[Subset, ...] = ()
    export_to: tuple[Str, ...] = ()
    workload_selector: WorkloadSelector | None = None

    @field_validator("subsets")
    @classmethod
    def _unique_subsets(cls, subsets: tuple[Subset, ...]) -> tuple[Subset, ...]:
        seen: set[str] = set()
        for subset in subsets:
            if subset.name in seen:
                raise invalid(f"subset {subset.name!r} is defined twice", "give each subset a different name")
            seen.add(subset.name)
        return subsets


# --- WorkloadEntry and ServiceEntry ------------------------------------------------------------


class WorkloadEntrySpec(ApiModel):
    address: Str | None = None
    ports: dict[str, Port] = {}
    labels: Labels = {}
    network: Str | None = None
    locality: Str | None = None
    weight: UInt32 | None = None
    service_account: Str | None = None


class ServicePort(ApiModel):
    number: Port
    protocol: Str | None = None  # HTTP, HTTPS, GRPC, HTTP2, MONGO, TCP, TLS (Istio accepts any case)
    name: Str | None = None
    target_port: Port | None = None


class ServiceEntryWorkloadSelector(ApiModel):
    """``ServiceEntry.workloadSelector`` uses ``labels`` (not ``matchLabels``)."""

    labels: Labels = {}


class ServiceEntrySpec(ApiModel):
    hosts: Annotated[tuple[Str, ...], NonEmpty]
    addresses: tuple[Str, ...] = ()
    ports: tuple[ServicePort, ...] = ()
    location: Literal["MESH_EXTERNAL", "MESH_INTERNAL"] | None = None
    resolution: Literal["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"] | None = None
    endpoints: tuple[WorkloadEntrySpec, ...] = ()
    workload_selector: ServiceEntryWorkloadSelector | None = None
    export_to: tuple[Str, ...] = ()
    subject_alt_names: tuple[Str, ...] = ()

    @model_validator(mode="after")
    def _endpoints_or_selector(self) -> ServiceEntrySpec:
        if self.endpoints and self.workload_selector is not None:
            raise invalid(
                "`endpoints` and `workloadSelector` cannot be used together",
                "list the endpoints, or select WorkloadEntries by labels, not both",
            )
        return self
