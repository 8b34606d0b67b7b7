"""The mesh-wide tracing settings an IstioOperator's ``meshConfig`` gives.

| setting | IstioOperator | default |
| --- | --- | --- |
| ``enabled`` | ``meshConfig.enableTracing`` | off (a Telemetry ``tracing`` turns it on where it applies) |
| ``sampling`` | ``meshConfig.defaultConfig.tracing.sampling`` (percent, 0–100) | 1 % (Istio's) |
| ``zipkin`` | ``meshConfig.defaultConfig.tracing.zipkin.address`` (``host:port``) | none |
| ``providers`` | ``meshConfig.extensionProviders[]`` of kind ``zipkin`` or ``opentelemetry`` | none |
| ``default_providers`` | ``meshConfig.defaultProviders.tracing`` | none |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from loom.api import Resource
from loom.api.resources.mesh import MeshConfig
from loom.controlplane.compiler.diagnostics import Warnings
from loom.snapshot.model import TracingCollector

DEFAULT_SAMPLING = 1.0
OTLP_PATH = "/v1/traces"
ZIPKIN_PATH = "/api/v2/spans"


@dataclass(frozen=True, slots=True)
class MeshTracing:
    enabled: bool = False
    sampling: float = DEFAULT_SAMPLING
    zipkin: TracingCollector | None = None
    """``defaultConfig.tracing.zipkin.address``: where spans go when no Telemetry names providers."""
    providers: Mapping[str, TracingCollector] = field(default_factory=lambda: MappingProxyType({}))
    """Extension provider name → its collector."""
    default_providers: tuple[str, ...] = ()


def mesh_tracing(resource: Resource, mesh: MeshConfig, warnings: Warnings) -> MeshTracing:
    tracing = mesh.default_config.tracing if mesh.default_config is not None else None
    zipkin = None
    sampling = DEFAULT_SAMPLING
    if tracing is not None:
        if tracing.sampling is not None:
            sampling = tracing.sampling
        address = tracing.zipkin.address if tracing.zipkin is not None else None
        if address:
            zipkin = _collector("zipkin", address, ZIPKIN_PATH)
        for name in ("lightstep", "datadog", "stackdriver", "open_census_agent"):
            if getattr(tracing, name) is not None:
                warnings.add(
                    f"the {name} tracer is not supported; Loom sends spans to Zipkin and OTLP collectors",
                    resource,
                    "spec.meshConfig.defaultConfig.tracing",
                )
    providers: dict[str, TracingCollector] = {}
    for index, provider in enumerate(mesh.extension_providers):
        path = f"spec.meshConfig.extensionProviders[{index}]"
        if provider.zipkin is not None:
            z = provider.zipkin
            providers[provider.name] = _collector("zipkin", f"{z.service}:{z.port}", ZIPKIN_PATH)
        elif provider.opentelemetry is not None:
            otel = provider.opentelemetry
            if otel.http is None:
                warnings.add(
                    "OTLP over gRPC is not supported: spans are sent as OTLP/HTTP to "
                    f"{otel.service}:{otel.port}{OTLP_PATH} (add `http: {{path: /v1/traces}}` and the "
                    "collector's HTTP port, usually 4318)",
                    resource,
                    f"{path}.opentelemetry",
                )
            otlp_path = (otel.http.path if otel.http is not None else None) or OTLP_PATH
            if not otlp_path.startswith("/"):
                otlp_path = "/" + otlp_path
            providers[provider.name] = _collector("otlp", f"{otel.service}:{otel.port}", otlp_path)
    defaults = mesh.default_providers.tracing if mesh.default_providers is not None else ()
    for name in defaults:
        if name not in providers:
            warnings.add(
                f"defaultProviders.tracing names {name!r}, which is no zipkin or opentelemetry extension "
                f"provider (known: {', '.join(sorted(providers)) or 'none'}); ignored",
                resource,
                "spec.meshConfig.defaultProviders.tracing",
            )
    return MeshTracing(
        enabled=mesh.enable_tracing is True,
        sampling=sampling,
        zipkin=zipkin,
        providers=MappingProxyType(providers),
        default_providers=tuple(name for name in defaults if name in providers),
    )


def _collector(protocol: str, address: str, path: str) -> TracingCollector:
    return TracingCollector(protocol=protocol, url=f"http://{address}{path}")  # type: ignore[arg-type]
