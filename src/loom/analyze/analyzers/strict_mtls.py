"""LM0901: STRICT mutual TLS for workloads that clients without a sidecar call.

Under STRICT, a workload's sidecar accepts only mutual TLS; a client without a sidecar (a VM
behind a WorkloadEntry, a pod outside the mesh) speaks plaintext and its connections are reset.
Which mode covers a workload follows Istio's precedence: a PeerAuthentication in the workload's
namespace whose ``selector`` matches it, else the namespace's policy without a selector, else the
mesh-wide policy (no selector, in the root namespace ``loom-system`` or ``meshConfig.rootNamespace``);
``UNSET`` inherits from the next level, and a ``portLevelMtls`` STRICT counts as STRICT. When two
policies compete at one level, the first by file order wins.

Who calls whom is not written in configuration, so the rule is: a workload *with* a sidecar,
covered by STRICT, is at risk when a known workload *without* a sidecar

- runs in the same namespace (the "mixing mesh and non-mesh traffic in one trust boundary"
  mistake), or
- runs in a namespace that holds a route (VirtualService, HTTPRoute, TrafficSplit) to a service
  selecting the workload — configuration there says that namespace calls it.

Workloads without a sidecar covered by STRICT are not reported: they have no sidecar to enforce
anything. With no known workload, nothing is reported. One finding per policy, listing the
workloads at risk and the plaintext clients.
"""

from __future__ import annotations

from collections.abc import Iterator

from loom.analyze.context import Context
from loom.analyze.finding import Code, Finding, Level, finding
from loom.analyze.routes import targets
from loom.analyze.workloads import WorkloadInfo
from loom.api import Resource
from loom.api.resources.istio_security import PeerAuthenticationSpec

STRICT_WITH_PLAINTEXT_CLIENTS = Code(
    "LM0901", Level.WARNING, "STRICT mTLS covers workloads that clients without a sidecar may call"
)
CODES = (STRICT_WITH_PLAINTEXT_CLIENTS,)

_SHOWN = 3


def run(ctx: Context) -> Iterator[Finding]:
    policies = list(ctx.of(PeerAuthenticationSpec))
    plaintext = [w for w in ctx.workloads if not w.has_sidecar]
    if not policies or not plaintext:
        return
    calling = _calling_namespaces(ctx)
    at_risk: dict[Resource, tuple[str, list[WorkloadInfo], dict[str, WorkloadInfo]]] = {}
    for workload in ctx.workloads:
        if not workload.has_sidecar:
            continue
        strict = _strict_policy(ctx, policies, workload)
        if strict is None:
            continue
        namespaces = {workload.namespace} | {
            ns for service in ctx.services_of(workload) for ns in calling.get(service.host, ())
        }
        clients = [w for w in plaintext if w.namespace in namespaces and w != workload]
        if not clients:
            continue
        policy, path = strict
        entry = at_risk.setdefault(policy, (path, [], {}))
        entry[1].append(workload)
        for client in clients:
            entry[2].setdefault(client.ref, client)
    for policy, (path, covered, clients) in at_risk.items():
        message = (
            f"STRICT mTLS covers {_listed([w.ref for w in covered])}, but workloads without a sidecar "
            f"may call {'it' if len(covered) == 1 else 'them'} ({_listed(sorted(clients))}, in the same "
            "namespace or one that routes to it): their plaintext connections are reset"
        )
        fix = (
            "add a sidecar to those clients, or keep PERMISSIVE for the workloads they call until they are "
            "meshed (a PeerAuthentication with a `selector` and mode PERMISSIVE)"
        )
        yield finding(STRICT_WITH_PLAINTEXT_CLIENTS, policy, path, message, fix)


def _strict_policy(
    ctx: Context, policies: list[tuple[Resource, PeerAuthenticationSpec]], workload: WorkloadInfo
) -> tuple[Resource, str] | None:
    """The policy (and field) that makes ``workload`` STRICT, or None when its mode is not STRICT."""
    selected = [
        (r, s)
        for r, s in policies
        if r.namespace == workload.namespace
        and s.selector is not None
        and s.selector.match_labels
        and workload.has_labels(s.selector.match_labels)
    ]
    namespace_wide = [
        (r, s)
        for r, s in policies
        if r.namespace == workload.namespace and (s.selector is None or not s.selector.match_labels)
    ]
    mesh_wide = [
        (r, s)
        for r, s in policies
        if r.namespace == ctx.mesh.root_namespace and (s.selector is None or not s.selector.match_labels)
    ]
    for level in (selected, namespace_wide, mesh_wide):
        if not level:
            continue
        resource, spec = level[0]
        for port, setting in spec.port_level_mtls.items():
            if setting.mode == "STRICT":
                return resource, f"spec.portLevelMtls[{port}].mode"
        mode = spec.mtls.mode if spec.mtls is not None else None
        if mode in (None, "UNSET"):
            continue
        return (resource, "spec.mtls.mode") if mode == "STRICT" else None
    return None


def _calling_namespaces(ctx: Context) -> dict[str, set[str]]:
    """Service host → namespaces holding a route to it."""
    found: dict[str, set[str]] = {}
    for target in targets(ctx):
        found.setdefault(target.host, set()).add(target.resource.namespace)
    return found


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown if len(items) <= _SHOWN else f"{shown} and {len(items) - _SHOWN} more"
