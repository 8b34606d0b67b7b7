"""``MeshSettings``: the mesh-wide values a compilation needs, read from an IstioOperator's ``meshConfig``.

| setting | IstioOperator | default |
| --- | --- | --- |
| ``trust_domain`` | ``meshConfig.trustDomain`` (the control plane's wins: below) | ``cluster.local`` |
| ``cluster_domain`` | ``values.global.proxy.clusterDomain`` | ``cluster.local`` |
| ``root_namespace`` | ``meshConfig.rootNamespace`` | ``loom-system`` |
| ``access_log_file`` | ``meshConfig.accessLogFile`` (``""``: off) | off |
| ``access_log_encoding`` | ``meshConfig.accessLogEncoding`` | ``TEXT`` (Istio's default) |
| ``auto_mtls`` | ``meshConfig.enableAutoMtls`` | on (Istio's default) |
| ``tracing`` | ``enableTracing``, ``defaultConfig.tracing``, ``extensionProviders`` (mesh_tracing) | off |
| ``mtls_enabled`` | none: the control plane's (``MeshInputs.build(..., mtls_enabled=)``) | off |

``mtls_enabled`` switches mutual TLS as a whole (``loom.controlplane.compiler.mtls``): while it is off,
every inbound listener says DISABLE, no endpoint has ``mtls`` and no cluster has ``tls`` — snapshots a
sidecar without a workload certificate can serve.

The trust domain is the control plane's when it gives one (``loom controlplane --trust-domain``): its CA
signs every workload certificate in that domain, so the SPIFFE IDs a sidecar expects of its peers
(``Cluster.tls.server_identities``) and its own ``Node.trust_domain`` must be in it too, or sidecars
refuse each other. A ``meshConfig.trustDomain`` that says otherwise is reported and overruled
(``with_trust_domain``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from loom.api import Resource, defaults
from loom.api.resources.mesh import IstioOperatorSpec
from loom.controlplane.compiler.diagnostics import Warnings
from loom.controlplane.compiler.mesh_tracing import MeshTracing, mesh_tracing

DEFAULT_DOMAIN = defaults.TRUST_DOMAIN
DEFAULT_ROOT_NAMESPACE = defaults.ROOT_NAMESPACE


@dataclass(frozen=True, slots=True)
class MeshSettings:
    trust_domain: str = DEFAULT_DOMAIN
    cluster_domain: str = DEFAULT_DOMAIN
    root_namespace: str = DEFAULT_ROOT_NAMESPACE
    """Where mesh-wide configuration lives (DestinationRules that apply to every namespace)."""
    access_log_file: str | None = None
    access_log_encoding: Literal["JSON", "TEXT"] = defaults.ACCESS_LOG_ENCODING
    auto_mtls: bool = True
    """Without a DestinationRule ``tls``, talk mutual TLS to the endpoints that have a sidecar."""
    mtls_enabled: bool = False
    """Compile PeerAuthentication, auto mTLS and DestinationRule ``tls`` into snapshots. Off until
    the control plane issues workload certificates."""
    tracing: MeshTracing = field(default_factory=MeshTracing)
    """``enableTracing``, the default sampling and collectors, the extension providers
    (``loom.controlplane.compiler.tracing``)."""

    @classmethod
    def from_resources(cls, resources: Sequence[Resource], warnings: Warnings) -> MeshSettings:
        """The settings of the first IstioOperator (by source); the others are reported and ignored."""
        operators = sorted(
            (r for r in resources if isinstance(r.spec, IstioOperatorSpec)), key=lambda r: source_order(r)
        )
        if not operators:
            return cls()
        first = operators[0]
        for other in operators[1:]:
            warnings.add(f"ignored: {first.ref} ({first.source}) already sets the mesh configuration", other)
        return _from_operator(first, warnings)


def source_order(resource: Resource) -> tuple[str, int, str, str, str]:
    """Where a resource was written (file, then document): Loom's stand-in for Istio's creation time."""
    return (
        resource.source.file,
        resource.source.document_index,
        resource.kind,
        resource.namespace,
        resource.name,
    )


def _from_operator(resource: Resource, warnings: Warnings) -> MeshSettings:
    spec = resource.spec
    assert isinstance(spec, IstioOperatorSpec)
    mesh = spec.mesh_config
    cluster_domain = _cluster_domain(spec.values) or DEFAULT_DOMAIN
    if mesh is None:
        return MeshSettings(cluster_domain=cluster_domain)
    if mesh.access_log_format is not None:
        warnings.add(
            "a custom access log format is not supported; the log uses the standard "
            f"{mesh.access_log_encoding or defaults.ACCESS_LOG_ENCODING} format",
            resource,
            "spec.meshConfig.accessLogFormat",
        )
    tracing = mesh_tracing(resource, mesh, warnings)
    auto_mtls = mesh.enable_auto_mtls
    if auto_mtls is not None and not isinstance(auto_mtls, bool):
        warnings.add(
            f"enableAutoMtls takes true or false, not {auto_mtls!r}; auto mTLS stays on",
            resource,
            "spec.meshConfig.enableAutoMtls",
        )
        auto_mtls = None
    return MeshSettings(
        trust_domain=mesh.trust_domain or DEFAULT_DOMAIN,
        cluster_domain=cluster_domain,
        root_namespace=mesh.root_namespace or DEFAULT_ROOT_NAMESPACE,
        access_log_file=mesh.access_log_file or None,
        access_log_encoding=mesh.access_log_encoding or defaults.ACCESS_LOG_ENCODING,
        auto_mtls=auto_mtls is not False,
        tracing=tracing,
    )


def _cluster_domain(values: Any) -> str | None:
    """``values.global.proxy.clusterDomain`` of an IstioOperator (values are not typed by the API)."""
    node: Any = values
    for key in ("global", "proxy", "clusterDomain"):
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node.strip(".").lower() if isinstance(node, str) and node.strip(".") else None


def with_trust_domain(
    settings: MeshSettings, trust_domain: str, resources: Sequence[Resource], warnings: Warnings
) -> MeshSettings:
    """``settings`` in the control plane's trust domain. A trust domain the mesh configuration sets to
    something else (``meshConfig.trustDomain``) is overruled, with a warning naming both: the control
    plane's CA signs the workload certificates, so its trust domain is the one peers can verify."""
    if settings.trust_domain == trust_domain:
        return settings
    operator = _first_operator(resources)
    declared = _declared_trust_domain(operator)
    if declared is not None and declared != trust_domain:
        warnings.add(
            f"meshConfig.trustDomain {declared!r} is not the control plane's trust domain "
            f"{trust_domain!r}, in which its CA signs every workload certificate: the SPIFFE IDs use "
            f"{trust_domain!r}. Give both the same: `loom controlplane --trust-domain {declared}`, or "
            f"trustDomain: {trust_domain}",
            operator,
            "spec.meshConfig.trustDomain",
        )
    elif declared is None and settings.trust_domain != DEFAULT_DOMAIN:  # settings given, not read
        warnings.add(
            f"the mesh settings' trust domain {settings.trust_domain!r} is not the control plane's "
            f"trust domain {trust_domain!r}, in which its CA signs every workload certificate: the "
            f"SPIFFE IDs use {trust_domain!r}"
        )
    return replace(settings, trust_domain=trust_domain)


def _first_operator(resources: Sequence[Resource]) -> Resource | None:
    """The IstioOperator whose settings apply (``MeshSettings.from_resources``), if any."""
    operators = [r for r in resources if isinstance(r.spec, IstioOperatorSpec)]
    return min(operators, key=source_order) if operators else None


def _declared_trust_domain(operator: Resource | None) -> str | None:
    if operator is None:
        return None
    spec = operator.spec
    assert isinstance(spec, IstioOperatorSpec)
    return (spec.mesh_config.trust_domain or None) if spec.mesh_config is not None else None
