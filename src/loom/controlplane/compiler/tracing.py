"""Telemetry ``tracing`` and ``meshConfig`` → a workload's snapshot ``telemetry.tracing``.

Three levels, as Istio's Telemetry API (each takes at most one resource; of several, the first by
file order counts and the others are reported):

| level | the Telemetry | applies to |
| --- | --- | --- |
| mesh | in the root namespace, without a selector | every workload |
| namespace | in another namespace, without a selector | the workloads of that namespace |
| workload | with ``selector.matchLabels``, in a namespace other than the root | the workloads it selects |

The mesh configuration comes first (``meshConfig.enableTracing``, ``defaultConfig.tracing.sampling``
and ``.zipkin.address``, ``defaultProviders.tracing``), then each level, mesh to workload, replaces
the fields it sets: ``providers``, ``randomSamplingPercentage``, ``disableSpanReporting``. A Telemetry
with a ``tracing`` entry turns tracing on where it applies. Spans always go to the control plane
too (``loom trace``), beside the providers' collectors.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from loom.api import Resource
from loom.api.resources.telemetry import TelemetrySpec, TracingSpec
from loom.controlplane.compiler.diagnostics import Warnings
from loom.controlplane.compiler.mesh_tracing import MeshTracing
from loom.controlplane.compiler.names import labels_match
from loom.controlplane.compiler.settings import source_order
from loom.snapshot.model import Tracing, TracingCollector


@dataclass(frozen=True, slots=True)
class _Level:
    """What one Telemetry's first tracing entry sets (None: inherits)."""

    collectors: tuple[TracingCollector, ...] | None
    sampling: float | None
    disable_reporting: bool | None


@dataclass(frozen=True, slots=True)
class TracingPolicies:
    mesh: MeshTracing = field(default_factory=MeshTracing)
    mesh_wide: _Level | None = None
    namespace_wide: Mapping[str, _Level] = field(default_factory=dict)
    selecting: Mapping[str, tuple[tuple[Mapping[str, str], _Level], ...]] = field(default_factory=dict)

    @classmethod
    def build(
        cls, resources: Sequence[Resource], mesh: MeshTracing, root_namespace: str, warnings: Warnings
    ) -> TracingPolicies:
        mesh_wide: _Level | None = None
        mesh_wide_by: Resource | None = None
        namespace_wide: dict[str, tuple[Resource, _Level]] = {}
        selecting: dict[str, list[tuple[Mapping[str, str], _Level]]] = defaultdict(list)
        for resource in sorted(resources, key=source_order):
            spec = resource.spec
            if not isinstance(spec, TelemetrySpec) or not spec.tracing:
                continue
            level = _level(resource, spec.tracing, mesh, warnings)
            selector = spec.selector.match_labels if spec.selector is not None else {}
            if spec.target_ref is not None or spec.target_refs:
                warnings.add(
                    "`targetRef` (a gateway or service) is not supported for Telemetry; this one applies "
                    "as if it had no target",
                    resource,
                    "spec.targetRef" if spec.target_ref is not None else "spec.targetRefs",
                )
            if selector:
                if resource.namespace == root_namespace:
                    warnings.add(
                        f"a Telemetry with a `selector` in the root namespace ({root_namespace}) applies to "
                        "no workload; ignored (a mesh-wide one has no selector)",
                        resource,
                        "spec.selector",
                    )
                    continue
                selecting[resource.namespace].append((dict(selector), level))
            elif resource.namespace == root_namespace:
                if mesh_wide_by is None:
                    mesh_wide, mesh_wide_by = level, resource
                else:
                    warnings.add(_shadowed(mesh_wide_by, "the mesh-wide Telemetry"), resource)
            else:
                held = namespace_wide.setdefault(resource.namespace, (resource, level))
                if held[0] is not resource:
                    warnings.add(
                        _shadowed(held[0], f"the Telemetry of namespace {resource.namespace}"), resource
                    )
        return cls(
            mesh=mesh,
            mesh_wide=mesh_wide,
            namespace_wide={ns: level for ns, (_, level) in sorted(namespace_wide.items())},
            selecting={ns: tuple(found) for ns, found in sorted(selecting.items())},
        )

    def for_workload(self, namespace: str, labels: Mapping[str, str]) -> Tracing | None:
        """The tracing section of a workload's snapshot (None: tracing is off for it)."""
        mesh = self.mesh
        enabled = mesh.enabled
        sampling = mesh.sampling
        if mesh.default_providers:
            collectors: tuple[TracingCollector, ...] = tuple(
                mesh.providers[n] for n in mesh.default_providers
            )
        else:
            collectors = (mesh.zipkin,) if mesh.zipkin is not None else ()
        disabled = False
        workload_level = next(
            (
                level
                for selector, level in self.selecting.get(namespace, ())
                if labels_match(selector, labels)
            ),
            None,
        )
        for level in (self.mesh_wide, self.namespace_wide.get(namespace), workload_level):
            if level is None:
                continue
            enabled = True
            if level.collectors is not None:
                collectors = level.collectors
            if level.sampling is not None:
                sampling = level.sampling
            if level.disable_reporting is not None:
                disabled = level.disable_reporting
        if not enabled:
            return None
        return Tracing(
            sampling=sampling, collectors=list(collectors), control_plane=True, report=not disabled
        )


def _level(
    resource: Resource, entries: Sequence[TracingSpec], mesh: MeshTracing, warnings: Warnings
) -> _Level:
    entry = entries[0]
    for index in range(1, len(entries)):
        warnings.add(
            "only the first `tracing` entry is used (client and server spans share one configuration)",
            resource,
            f"spec.tracing[{index}]",
        )
    if entry.match is not None and entry.match.mode not in (None, "CLIENT_AND_SERVER"):
        warnings.add(
            f"match.mode {entry.match.mode} is not supported: the settings apply to client and server spans",
            resource,
            "spec.tracing[0].match.mode",
        )
    collectors: tuple[TracingCollector, ...] | None = None
    if entry.providers:
        found = []
        for index, provider in enumerate(entry.providers):
            collector = mesh.providers.get(provider.name)
            if collector is None:
                known = ", ".join(sorted(mesh.providers)) or "none"
                warnings.add(
                    f"provider {provider.name!r} is not a zipkin or opentelemetry extension provider of "
                    f"meshConfig.extensionProviders (known: {known}); spans go to the control plane only",
                    resource,
                    f"spec.tracing[0].providers[{index}].name",
                )
                continue
            found.append(collector)
        collectors = tuple(found)
    return _Level(collectors, entry.random_sampling_percentage, entry.disable_span_reporting)


def _shadowed(winner: Resource, what: str) -> str:
    return (
        f"ignored: {winner.ref} ({winner.source}) is already {what}; of several, the first by file "
        "order counts (Istio keeps the oldest)"
    )
