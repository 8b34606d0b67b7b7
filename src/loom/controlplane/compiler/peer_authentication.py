"""PeerAuthentication → the mutual TLS mode of a workload's inbound ports, with Istio's precedence.

Three levels, each taking at most one policy (Istio's ``ComposePeerAuthentication``):

| level | the policy | applies to |
| --- | --- | --- |
| mesh | in the root namespace, without a selector | every workload |
| namespace | in a namespace other than the root, without a selector | the workloads of that namespace |
| workload | with a selector, in a namespace other than the root | the workloads of its namespace it selects |

The mode starts at PERMISSIVE (Istio's default), then each level that sets one replaces it, mesh
first, workload last: a level whose ``mtls.mode`` is UNSET (or absent) inherits the one above. The
workload policy's ``portLevelMtls`` then gives the mode of single ports — keyed by the workload's
port (the app port the inbound listener fronts, a Service's ``targetPort``), an UNSET entry meaning
the workload's mode. An empty selector (``matchLabels: {}``) is no selector. A policy with a
selector in the root namespace applies to nothing (Istio ignores it) and is reported.

When several policies compete at one level Istio keeps the oldest; Loom, which has no creation
times, keeps the first by where it was written (file, then document — ``source_order``, as
``loom analyze`` decides it) and reports the others.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from loom.api import Resource
from loom.api.resources.istio_security import MutualTLS, PeerAuthenticationSpec
from loom.controlplane.compiler.diagnostics import Warnings
from loom.controlplane.compiler.names import labels_match
from loom.controlplane.compiler.settings import source_order
from loom.snapshot.security import MtlsMode

DEFAULT_MODE = MtlsMode.PERMISSIVE
"""What a workload no policy sets a mode for gets (Istio's default)."""

_EMPTY_PORTS: Mapping[int, MtlsMode] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PeerModes:
    """One workload's resolved modes: ``mode`` for its ports, ``ports`` for those ``portLevelMtls`` names."""

    mode: MtlsMode = DEFAULT_MODE
    ports: Mapping[int, MtlsMode] = field(default_factory=lambda: _EMPTY_PORTS)
    workload_policy: Resource | None = None
    """The workload-level policy that applies, if any (where ``ports`` came from)."""

    def for_port(self, port: int) -> MtlsMode:
        return self.ports.get(port, self.mode)


PERMISSIVE_EVERYWHERE = PeerModes()


@dataclass(frozen=True, slots=True)
class PeerAuthentications:
    """The PeerAuthentications of the mesh, by level; ``resolve`` gives one workload's modes."""

    mesh_wide: Resource | None = None
    namespace_wide: Mapping[str, Resource] = field(default_factory=dict)
    """Namespace → its policy without a selector (the first by source)."""
    selecting: Mapping[str, tuple[Resource, ...]] = field(default_factory=dict)
    """Namespace → its policies with a selector, in source order."""

    @classmethod
    def build(
        cls, resources: Sequence[Resource], root_namespace: str, warnings: Warnings
    ) -> PeerAuthentications:
        mesh_wide: Resource | None = None
        namespace_wide: dict[str, Resource] = {}
        selecting: dict[str, list[Resource]] = defaultdict(list)
        for resource in sorted(resources, key=source_order):
            spec = resource.spec
            if not isinstance(spec, PeerAuthenticationSpec):
                continue
            if _selector(spec):
                if resource.namespace == root_namespace:
                    warnings.add(
                        f"a policy with a `selector` in the root namespace ({root_namespace}) applies to no "
                        "workload; ignored (a mesh-wide policy has no selector; a workload policy belongs in "
                        "the workload's namespace)",
                        resource,
                        "spec.selector",
                    )
                    continue
                selecting[resource.namespace].append(resource)
                continue
            if spec.port_level_mtls:
                warnings.add(
                    "`portLevelMtls` applies only to a policy whose selector names labels; ignored",
                    resource,
                    "spec.portLevelMtls",
                )
            if resource.namespace == root_namespace:
                if mesh_wide is None:
                    mesh_wide = resource
                else:
                    warnings.add(_shadowed(mesh_wide, "the mesh-wide policy"), resource)
                continue
            held = namespace_wide.setdefault(resource.namespace, resource)
            if held is not resource:
                warnings.add(_shadowed(held, f"the policy of namespace {resource.namespace}"), resource)
        return cls(
            mesh_wide=mesh_wide,
            namespace_wide=dict(sorted(namespace_wide.items())),
            selecting={ns: tuple(found) for ns, found in sorted(selecting.items())},
        )

    def resolve(
        self,
        namespace: str,
        labels: Mapping[str, str],
        warnings: Warnings | None = None,
        workload: str = "",
    ) -> PeerModes:
        """The modes of a workload of ``namespace`` with ``labels``. With ``warnings``, reports the
        workload policies that also select it and are not used (``workload`` names it there)."""
        mode = DEFAULT_MODE
        for policy in (self.mesh_wide, self.namespace_wide.get(namespace)):
            if policy is not None:
                mode = _mode(_spec(policy).mtls, mode)
        chosen: Resource | None = None
        for policy in self.selecting.get(namespace, ()):
            if not labels_match(_selector(_spec(policy)), labels):
                continue
            if chosen is None:
                chosen = policy
            elif warnings is not None:
                who = f" for {workload}" if workload else ""
                warnings.add(_shadowed(chosen, f"the workload policy{who}"), policy)
        if chosen is None:
            return PeerModes(mode) if mode is not DEFAULT_MODE else PERMISSIVE_EVERYWHERE
        spec = _spec(chosen)
        mode = _mode(spec.mtls, mode)
        ports = {port: _mode(setting, mode) for port, setting in sorted(spec.port_level_mtls.items())}
        return PeerModes(mode, MappingProxyType(ports) if ports else _EMPTY_PORTS, chosen)


def _spec(resource: Resource) -> PeerAuthenticationSpec:
    spec = resource.spec
    assert isinstance(spec, PeerAuthenticationSpec)
    return spec


def _selector(spec: PeerAuthenticationSpec) -> Mapping[str, str]:
    """The selector's labels; empty for a policy without a selector or with an empty one."""
    return spec.selector.match_labels if spec.selector is not None else {}


def _mode(setting: MutualTLS | None, inherited: MtlsMode) -> MtlsMode:
    if setting is None or setting.mode is None or setting.mode == "UNSET":
        return inherited
    return MtlsMode(setting.mode)


def _shadowed(winner: Resource, what: str) -> str:
    return (
        f"ignored: {winner.ref} ({winner.source}) is already {what}; of several, the first by file "
        "order counts (Istio keeps the oldest)"
    )
