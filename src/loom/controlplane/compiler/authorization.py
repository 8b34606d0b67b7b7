"""AuthorizationPolicy → ``security.authorization`` of one workload's snapshot, selected as Istio does.

Which policies apply to a workload (Istio's ``ListAuthorizationPolicies``, for sidecars; the root
namespace is ``meshConfig.rootNamespace``, Loom's default ``loom-system``):

| the policy is | and has | it applies to |
| --- | --- | --- |
| in the root namespace | no selector | every workload of the mesh |
| in the root namespace | ``selector.matchLabels`` | the workloads of any namespace with those labels |
| in another namespace | no selector | every workload of that namespace |
| in another namespace | ``selector.matchLabels`` | the workloads of that namespace with those labels |

``targetRef``/``targetRefs`` attach a policy to a Gateway or a Service's waypoint, which sidecars
do not enforce (Istio leaves such policies out of sidecars too): reported and left out. ``action:
CUSTOM`` needs an external authorizer Loom does not have: reported (``loom analyze`` says LM1003)
and left out — the requests it should check are not checked.

Each policy becomes an ``AuthzPolicy`` named ``namespace/name`` (rules: ``authorization_rules``),
once per resource change. Per workload, the ports a policy names (``ports``, ``notPorts``, the
``destination.port`` condition) — the workload's own ports, as in Istio — are written as the ports
of the sidecar's inbound listeners that front them (``SidecarPorts.inbound``): that is the port a
peer's connection arrives on, which the proxy compares. A port the sidecar does not front stays
as written (no connection arrives for it through the sidecar).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from msgspec.structs import replace

from loom.api import Resource
from loom.api.resources.istio_security import AuthorizationPolicySpec
from loom.controlplane.compiler.authorization_rules import RuleBuilder
from loom.controlplane.compiler.diagnostics import Warnings
from loom.controlplane.compiler.names import labels_match
from loom.controlplane.compiler.settings import DEFAULT_ROOT_NAMESPACE, source_order
from loom.controlplane.workloads import Workload
from loom.snapshot.security import AuthzAction, AuthzCondition, AuthzPolicy, AuthzRule


@dataclass(frozen=True, slots=True)
class PolicyEntry:
    resource: Resource
    selector: Mapping[str, str] | None
    """``selector.matchLabels``; None without a selector."""
    policy: AuthzPolicy
    """With the ports as written (the workload's ports)."""
    names_ports: bool
    """Some rule names a port (the per-workload rewrite has something to do)."""


@dataclass(frozen=True, slots=True)
class AuthorizationPolicies:
    """The AuthorizationPolicies sidecars enforce, by namespace; ``for_workload`` selects."""

    root_namespace: str = DEFAULT_ROOT_NAMESPACE
    by_namespace: Mapping[str, tuple[PolicyEntry, ...]] = field(default_factory=dict)

    @classmethod
    def build(
        cls, resources: Sequence[Resource], root_namespace: str, warnings: Warnings
    ) -> AuthorizationPolicies:
        found: dict[str, list[PolicyEntry]] = defaultdict(list)
        for resource in sorted(resources, key=source_order):
            spec = resource.spec
            if not isinstance(spec, AuthorizationPolicySpec):
                continue
            entry = _entry(resource, spec, warnings)
            if entry is not None:
                found[resource.namespace].append(entry)
        return cls(root_namespace, {ns: tuple(entries) for ns, entries in sorted(found.items())})

    def for_workload(self, workload: Workload) -> list[AuthzPolicy]:
        """The policies that apply to ``workload``, sorted by name, ports as its sidecar's."""
        policies = []
        for namespace in dict.fromkeys((self.root_namespace, workload.namespace)):
            for entry in self.by_namespace.get(namespace, ()):
                if entry.selector is None or labels_match(entry.selector, workload.labels):
                    policies.append(_with_sidecar_ports(entry, workload))
        return sorted(policies, key=_name)


def _name(policy: AuthzPolicy) -> str:
    return policy.name


def _entry(resource: Resource, spec: AuthorizationPolicySpec, warnings: Warnings) -> PolicyEntry | None:
    if spec.action == "CUSTOM":
        provider = spec.provider.name if spec.provider is not None else "?"
        warnings.add(
            f'action CUSTOM (external authorizer "{provider}") is not supported: the policy is not put in '
            "any snapshot, so the requests it should check are not checked (loom analyze: LM1003)",
            resource,
            "spec.action",
        )
        return None
    if spec.target_ref is not None or spec.target_refs:
        path = "spec.targetRef" if spec.target_ref is not None else "spec.targetRefs"
        warnings.add(
            "a policy attached with targetRef applies to gateways and waypoints, not to sidecars; not "
            "enforced (select workloads with `selector.matchLabels` instead)",
            resource,
            path,
        )
        return None
    action = AuthzAction(spec.action or "ALLOW")
    rules: list[AuthzRule] = []
    for i, rule in enumerate(spec.rules):
        translated = RuleBuilder(resource, action, warnings).rule(rule, f"spec.rules[{i}]")
        if translated is not None:
            rules.append(translated)
    policy = AuthzPolicy(name=f"{resource.namespace}/{resource.name}", action=action, rules=rules)
    selector = dict(spec.selector.match_labels) if spec.selector is not None else None
    return PolicyEntry(resource, selector, policy, _names_ports(policy))


def _names_ports(policy: AuthzPolicy) -> bool:
    return any(op.ports or op.not_ports for rule in policy.rules for op in rule.operations) or any(
        c.key == "destination.port" for rule in policy.rules for c in rule.conditions
    )


def _with_sidecar_ports(entry: PolicyEntry, workload: Workload) -> AuthzPolicy:
    sidecar = workload.sidecar
    if not entry.names_ports or sidecar is None:
        return entry.policy
    fronted = {app: listen for app, listen in sidecar.inbound.items() if listen and app != listen}
    if not fronted:
        return entry.policy
    return replace(entry.policy, rules=[_rule_ports(rule, fronted) for rule in entry.policy.rules])


def _rule_ports(rule: AuthzRule, fronted: Mapping[int, int]) -> AuthzRule:
    operations = [
        replace(
            op,
            ports=[fronted.get(p, p) for p in op.ports],
            not_ports=[fronted.get(p, p) for p in op.not_ports],
        )
        if op.ports or op.not_ports
        else op
        for op in rule.operations
    ]
    conditions = [_condition_ports(c, fronted) for c in rule.conditions]
    return replace(rule, operations=operations, conditions=conditions)


def _condition_ports(condition: AuthzCondition, fronted: Mapping[int, int]) -> AuthzCondition:
    if condition.key != "destination.port":
        return condition

    def port(value: str) -> str:
        return str(fronted.get(int(value), value)) if value.isdigit() else value

    return replace(
        condition,
        values=[port(v) for v in condition.values],
        not_values=[port(v) for v in condition.not_values],
    )
