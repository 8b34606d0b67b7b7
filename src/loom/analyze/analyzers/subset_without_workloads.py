"""LM0301: a DestinationRule subset whose labels select none of the known workloads of its host.

A subset is the host's workloads that also carry the subset's labels. When none does, the subset's
cluster has no endpoints and requests routed to it fail with 503 (no healthy upstream, flag UH) —
usually a typo in a label or a version not deployed yet.

Only checked when workloads of the host's service are known (the registry's workloads, or
WorkloadEntries the service selects): with nothing to compare against, nothing is reported.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from loom.analyze.context import Context
from loom.analyze.finding import Code, Finding, Level, finding
from loom.analyze.workloads import WorkloadInfo
from loom.api.resources.istio_networking import DestinationRuleSpec

EMPTY_SUBSET = Code("LM0301", Level.WARNING, "DestinationRule subset selects no known workload")
CODES = (EMPTY_SUBSET,)


def run(ctx: Context) -> Iterator[Finding]:
    for resource, spec in ctx.of(DestinationRuleSpec):
        if not spec.subsets:
            continue
        host = ctx.rule_host(resource)
        members: dict[tuple[str, str], WorkloadInfo] = {}
        for service in ctx.services_for(host):
            for workload in ctx.members(service):
                members.setdefault((workload.namespace, workload.name), workload)
        if not members:
            continue  # nothing known to compare against
        for i, subset in enumerate(spec.subsets):
            if any(workload.has_labels(subset.labels) for workload in members.values()):
                continue
            wanted = _labels(subset.labels)
            known = (
                f"the one known workload of {ctx.show(spec.host, host)} does not have {wanted}"
                if len(members) == 1
                else f"none of the {len(members)} known workloads of {ctx.show(spec.host, host)} has {wanted}"
            )
            message = (
                f'subset "{subset.name}" selects no workload: {known} — requests routed to it fail with 503 '
                "(no healthy upstream, flag UH)"
            )
            seen = sorted({_labels(_relevant(w, subset.labels)) for w in members.values()})
            fix = (
                f"correct the subset's labels (the workloads have {'; '.join(seen)}) "
                f"or deploy workloads labelled {wanted}"
            )
            path = f"spec.subsets[{i}].labels" if subset.labels else f"spec.subsets[{i}]"
            yield finding(EMPTY_SUBSET, resource, path, message, fix)


def _relevant(workload: WorkloadInfo, wanted: Mapping[str, str]) -> dict[str, str]:
    """The workload's values for the label keys the subset asks for (all its labels if it has none)."""
    picked = {key: workload.labels[key] for key in wanted if key in workload.labels}
    return picked or dict(workload.labels)


def _labels(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(labels.items())) or "no labels"
