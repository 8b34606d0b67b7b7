"""``install.istio.io/v1alpha1`` IstioOperator: the mesh-wide settings in ``spec.meshConfig``.

Loom reads tracing (``enableTracing``, ``defaultConfig.tracing.sampling``, ``...zipkin.address``,
``extensionProviders`` of kind ``zipkin`` and ``opentelemetry``, ``defaultProviders.tracing``),
access logs (``accessLogFile``, ``accessLogEncoding``, ``accessLogFormat``), ``rootNamespace`` and
``trustDomain``; those are typed and checked.

The rest of Istio's ``MeshConfig`` and ``ProxyConfig`` is accepted leniently: every key Istio defines
loads (so an existing IstioOperator file works) with its value unchecked, and a key Istio does not
define is an error with a "did you mean". The same holds for the IstioOperator fields outside
``meshConfig`` (``profile``, ``components``, ``values``, ...), which are about installing Istio.
Key lists: ``mesh/v1alpha1/config.proto`` and ``proxy.proto`` in Istio's API.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from loom.api.resources.base import ApiModel
from loom.api.resources.istio_networking import ClientTLSSettings
from loom.api.resources.values import Bool, Float, Int, Port, Str


class Zipkin(ApiModel):
    address: Str | None = None


class TracerAddress(ApiModel):
    address: Str | None = None
    access_token: Str | None = None


class Tracing(ApiModel):
    zipkin: Zipkin | None = None
    sampling: Annotated[Float, Field(ge=0.0, le=100.0)] | None = None  # percent of requests
    max_path_tag_length: Int | None = None
    tls_settings: ClientTLSSettings | None = None
    # Other tracers Istio defines; accepted, not used by Loom (which exports Zipkin and OTLP).
    lightstep: TracerAddress | None = None
    datadog: TracerAddress | None = None
    stackdriver: Any = None
    open_census_agent: Any = None
    custom_tags: Any = None
    enable_istio_tags: Any = None


class ProxyConfig(ApiModel):
    """``meshConfig.defaultConfig``: Loom reads ``tracing``; Istio's other keys are accepted."""

    tracing: Tracing | None = None
    config_path: Any = None
    binary_path: Any = None
    service_cluster: Any = None
    tracing_service_name: Any = None
    drain_duration: Any = None
    parent_shutdown_duration: Any = None
    discovery_address: Any = None
    discovery_refresh_delay: Any = None
    zipkin_address: Any = None
    statsd_udp_address: Any = None
    envoy_metrics_service_address: Any = None
    proxy_admin_port: Any = None
    availability_zone: Any = None
    control_plane_auth_policy: Any = None
    custom_config_file: Any = None
    stat_name_length: Any = None
    concurrency: Any = None
    proxy_bootstrap_template_path: Any = None
    interception_mode: Any = None
    sds: Any = None
    envoy_access_log_service: Any = None
    envoy_metrics_service: Any = None
    proxy_metadata: Any = None
    runtime_values: Any = None
    status_port: Any = None
    extra_stat_tags: Any = None
    gateway_topology: Any = None
    termination_drain_duration: Any = None
    mesh_id: Any = None
    readiness_probe: Any = None
    proxy_stats_matcher: Any = None
    hold_application_until_proxy_starts: Any = None
    ca_certificates_pem: Any = None
    image: Any = None
    private_key_provider: Any = None
    proxy_headers: Any = None
    file_flush_interval: Any = None
    file_flush_min_size_kb: Any = None


class ZipkinProvider(ApiModel):
    service: Str
    port: Port
    max_tag_length: Int | None = None
    enable_64bit_trace_id: Bool | None = None
    trace_context_option: Any = None
    timeout: Any = None
    headers: Any = None


class OtlpHttp(ApiModel):
    path: Str | None = None
    timeout: Any = None
    headers: Any = None


class OpenTelemetryProvider(ApiModel):
    service: Str
    port: Port
    max_tag_length: Int | None = None
    http: OtlpHttp | None = None
    grpc: Any = None
    resource_detectors: Any = None
    dynamic_sampler: Any = None


class ExtensionProvider(ApiModel):
    """``meshConfig.extensionProviders[]``: Loom sends spans to ``zipkin`` and ``opentelemetry`` (OTLP/HTTP)
    providers; Istio's other kinds are accepted and not used."""

    name: Str
    zipkin: ZipkinProvider | None = None
    opentelemetry: OpenTelemetryProvider | None = None
    envoy_ext_authz_http: Any = None
    envoy_ext_authz_grpc: Any = None
    lightstep: Any = None
    datadog: Any = None
    stackdriver: Any = None
    opencensus: Any = None
    skywalking: Any = None
    prometheus: Any = None
    envoy_file_access_log: Any = None
    envoy_http_als: Any = None
    envoy_tcp_als: Any = None
    envoy_otel_als: Any = None
    sds: Any = None


class DefaultProviders(ApiModel):
    tracing: tuple[Str, ...] = ()
    metrics: Any = None
    access_logging: Any = None


class MeshConfig(ApiModel):
    enable_tracing: Bool | None = None
    default_config: ProxyConfig | None = None
    access_log_file: Str | None = None
    access_log_encoding: Literal["TEXT", "JSON"] | None = None
    access_log_format: Str | None = None
    root_namespace: Str | None = None
    trust_domain: Str | None = None
    trust_domain_aliases: tuple[Str, ...] = ()
    # Istio's other MeshConfig keys: accepted, not interpreted.
    proxy_listen_port: Any = None
    proxy_inbound_listen_port: Any = None
    proxy_http_port: Any = None
    connect_timeout: Any = None
    protocol_detection_timeout: Any = None
    tcp_keepalive: Any = None
    ingress_class: Any = None
    ingress_service: Any = None
    ingress_controller_mode: Any = None
    ingress_selector: Any = None
    enable_envoy_access_log_service: Any = None
    disable_envoy_listener_log: Any = None
    outbound_traffic_policy: Any = None
    inbound_traffic_policy: Any = None
    config_sources: Any = None
    enable_auto_mtls: Any = None
    ca_certificates: Any = None
    default_service_export_to: Any = None
    default_virtual_service_export_to: Any = None
    default_destination_rule_export_to: Any = None
    locality_lb_setting: Any = None
    dns_refresh_rate: Any = None
    h2_upgrade_policy: Any = None
    inbound_cluster_stat_name: Any = None
    outbound_cluster_stat_name: Any = None
    certificates: Any = None
    service_settings: Any = None
    enable_prometheus_merge: Any = None
    verify_certificate_at_client: Any = None
    ca: Any = None
    extension_providers: tuple[ExtensionProvider, ...] = ()
    default_providers: DefaultProviders | None = None
    discovery_selectors: Any = None
    path_normalization: Any = None
    default_http_retry_policy: Any = None
    mesh_mtls: Any = Field(default=None, alias="meshMTLS")
    tls_defaults: Any = None
    compliance_policy: Any = None
    service_scope_configs: Any = None


class IstioOperatorSpec(ApiModel):
    mesh_config: MeshConfig | None = None
    # About installing Istio itself: accepted, not interpreted.
    profile: Any = None
    install_package_path: Any = None
    hub: Any = None
    tag: Any = None
    resource_suffix: Any = None
    namespace: Any = None
    revision: Any = None
    compatibility_version: Any = None
    default_revision: Any = None
    components: Any = None
    values: Any = None
    unvalidated_values: Any = None
