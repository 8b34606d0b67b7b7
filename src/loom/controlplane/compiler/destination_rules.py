"""Which DestinationRule applies to a service for a proxy, and its traffic policy for one port and subset.

Lookup, in Istio's order: a rule in the proxy's namespace, then in the service's namespace, then in
the mesh root namespace; the first namespace with a rule for the host decides. ``host`` is resolved
relative to the rule's namespace (``reviews`` → ``reviews.<rule ns>.svc.<domain>``) and may be a
``*.suffix`` wildcard; an exact host beats a wildcard, a longer wildcard a shorter one. A rule with a
``workloadSelector`` applies only to the proxies it selects in its own namespace, and then before
the rules without one. ``exportTo`` is honoured. Several rules for one host in one namespace are
merged as Istio merges them: the first (by source) ``trafficPolicy`` counts, subsets are joined
(the first definition of a subset name wins).

The policy for a (port, subset) is Istio's ``MergeTrafficPolicy``: the top-level policy, whose
fields the matching ``portLevelSettings`` entry replaces, whose fields the subset's policy replaces
(and then the subset's own port-level entry). Each field is replaced whole, never merged deeper.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from loom.api import Resource
from loom.api.resources.istio_networking import DestinationRuleSpec, Subset, TrafficPolicy
from loom.controlplane.compiler.diagnostics import Warnings
from loom.controlplane.compiler.model import Service
from loom.controlplane.compiler.names import exported_to, host_match, labels_match, resolve_host
from loom.controlplane.compiler.settings import source_order


@dataclass(frozen=True, slots=True)
class Rule:
    resource: Resource
    spec: DestinationRuleSpec
    host: str
    """``spec.host`` resolved relative to the rule's namespace."""


@dataclass(frozen=True, slots=True)
class Located:
    """A policy field with the resource and path it was written at (for warnings)."""

    value: Any
    resource: Resource
    path: str


@dataclass(frozen=True, slots=True)
class Policy:
    """The effective traffic policy of one cluster: each field as written somewhere, or None."""

    load_balancer: Located | None = None
    connection_pool: Located | None = None
    outlier_detection: Located | None = None
    retry_budget: Located | None = None
    retry_policy: Located | None = None
    tunnel: Located | None = None
    proxy_protocol: Located | None = None
    tls: Located | None = None


_PORT_FIELDS = ("load_balancer", "connection_pool", "outlier_detection", "tls")
_SUBSET_FIELDS = (*_PORT_FIELDS, "retry_budget", "retry_policy", "tunnel", "proxy_protocol")


@dataclass(frozen=True, slots=True)
class MergedRule:
    rules: tuple[Rule, ...]
    traffic_policy: Located | None
    subsets: Mapping[str, Located] = field(default_factory=dict)

    def subset(self, name: str) -> Subset | None:
        found = self.subsets.get(name)
        return found.value if found is not None else None

    def policy(self, port: int, subset: str | None) -> Policy:
        policy = Policy()
        if self.traffic_policy is not None:
            policy = _apply(policy, self.traffic_policy, _SUBSET_FIELDS, port)
        found = self.subsets.get(subset) if subset is not None else None
        if found is not None and found.value.traffic_policy is not None:
            tp = Located(found.value.traffic_policy, found.resource, f"{found.path}.trafficPolicy")
            policy = _apply(policy, tp, _SUBSET_FIELDS, port)
        return policy


def _apply(policy: Policy, tp: Located, names: tuple[str, ...], port: int) -> Policy:
    value: TrafficPolicy = tp.value
    changes: dict[str, Located] = {}
    for name in names:
        given = getattr(value, name)
        if given is not None:
            changes[name] = Located(given, tp.resource, f"{tp.path}.{_camel(name)}")
    for i, pls in enumerate(value.port_level_settings):
        if pls.port is not None and pls.port.number == port:
            for name in _PORT_FIELDS:
                given = getattr(pls, name)
                if given is not None:
                    changes[name] = Located(
                        given, tp.resource, f"{tp.path}.portLevelSettings[{i}].{_camel(name)}"
                    )
            break
    return replace(policy, **changes) if changes else policy


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.capitalize() for part in rest)


def index_rules(
    resources: Sequence[Resource], cluster_domain: str, known_hosts: Container[str]
) -> dict[str, tuple[Rule, ...]]:
    """DestinationRules by namespace, each namespace's in source order."""
    grouped: dict[str, list[Rule]] = defaultdict(list)
    for resource in sorted(resources, key=source_order):
        spec = resource.spec
        if isinstance(spec, DestinationRuleSpec):
            host = resolve_host(spec.host, resource.namespace, cluster_domain, known_hosts)
            grouped[resource.namespace].append(Rule(resource, spec, host))
    return {namespace: tuple(rules) for namespace, rules in sorted(grouped.items())}


def find_rule(
    index: Mapping[str, tuple[Rule, ...]],
    root_namespace: str,
    proxy_namespace: str,
    proxy_labels: Mapping[str, str],
    service: Service,
    warnings: Warnings,
) -> MergedRule | None:
    """The (merged) DestinationRule that decides ``service``'s clusters for this proxy, or None."""
    for namespace in dict.fromkeys((proxy_namespace, service.namespace, root_namespace)):
        candidates: list[tuple[tuple[int, int], bool, Rule]] = []
        for rule in index.get(namespace, ()):
            specificity = host_match(rule.host, service.fqdn)
            if specificity is None or not exported_to(rule.spec.export_to, namespace, proxy_namespace):
                continue
            selector = rule.spec.workload_selector
            if selector is not None and (
                namespace != proxy_namespace or not labels_match(selector.match_labels, proxy_labels)
            ):
                continue
            candidates.append((specificity, selector is None, rule))
        if candidates:
            best = min((specificity, general) for specificity, general, _ in candidates)
            chosen = tuple(
                rule for specificity, general, rule in candidates if (specificity, general) == best
            )
            return _merge(chosen, warnings)
    return None


def _merge(rules: tuple[Rule, ...], warnings: Warnings) -> MergedRule:
    traffic_policy: Located | None = None
    subsets: dict[str, Located] = {}
    for rule in rules:
        tp = rule.spec.traffic_policy
        if tp is not None:
            if traffic_policy is None:
                traffic_policy = Located(tp, rule.resource, "spec.trafficPolicy")
            else:
                warnings.add(
                    f"ignored: {traffic_policy.resource.ref} ({traffic_policy.resource.source}) already sets "
                    f"the traffic policy of {rule.host}",
                    rule.resource,
                    "spec.trafficPolicy",
                )
        for i, subset in enumerate(rule.spec.subsets):
            held = subsets.get(subset.name)
            if held is not None:
                warnings.add(
                    f"subset {subset.name!r} is already defined by {held.resource.ref} "
                    f"({held.resource.source}); ignored here",
                    rule.resource,
                    f"spec.subsets[{i}]",
                )
                continue
            subsets[subset.name] = Located(subset, rule.resource, f"spec.subsets[{i}]")
    return MergedRule(rules, traffic_policy, subsets)
