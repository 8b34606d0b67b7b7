"""LM0601-LM0604: traffic weights that send traffic nowhere or that Istio rejects.

- LM0601 (Error): a VirtualService rule with several destinations whose weights do not add up
  to 100 — Istio rejects the VirtualService (an absent weight counts as 0), so the same YAML would
  not work under Istio, although Loom's compiler reads the weights as relative shares. A single
  destination takes all traffic whatever its weight, so it is not checked.
- LM0602 (Error): a VirtualService rule with several destinations, all of weight 0 or none.
- LM0603 (Error): a TrafficSplit whose backends all have weight 0 — the split sends nowhere.
- LM0604 (Warning): an HTTPRoute rule whose backendRefs all have weight 0 — the Gateway API then
  answers every request of the rule with 500.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from loom.analyze.context import Context
from loom.analyze.finding import Code, Finding, Level, finding
from loom.api import Resource
from loom.api.resources.gateway import HTTPRouteSpec
from loom.api.resources.istio_networking import VirtualServiceSpec
from loom.api.resources.smi import TrafficSplitSpec

WEIGHTS_NOT_100 = Code("LM0601", Level.ERROR, "VirtualService destination weights do not add up to 100")
WEIGHTS_ALL_ZERO = Code("LM0602", Level.ERROR, "VirtualService destinations all have weight 0")
SPLIT_ALL_ZERO = Code("LM0603", Level.ERROR, "TrafficSplit backends all have weight 0")
BACKENDS_ALL_ZERO = Code("LM0604", Level.WARNING, "HTTPRoute backendRefs all have weight 0")
CODES = (WEIGHTS_NOT_100, WEIGHTS_ALL_ZERO, SPLIT_ALL_ZERO, BACKENDS_ALL_ZERO)


def run(ctx: Context) -> Iterator[Finding]:
    for resource, spec in ctx.of(VirtualServiceSpec):
        for section, rules in (("http", spec.http), ("tcp", spec.tcp), ("tls", spec.tls)):
            for i, rule in enumerate(rules):
                weights = [route.weight or 0 for route in rule.route]
                if len(weights) > 1:
                    yield from _istio(resource, f"spec.{section}[{i}].route", weights)
    for resource, split in ctx.of(TrafficSplitSpec):
        if all(backend.weight == 0 for backend in split.backends):
            message = "every backend has weight 0 — the split sends traffic to none of them"
            fix = "give at least one backend a weight above 0 (weights are relative: 90 and 10 split 9:1)"
            yield finding(SPLIT_ALL_ZERO, resource, "spec.backends", message, fix)
    for resource, route in ctx.of(HTTPRouteSpec):
        for i, rule in enumerate(route.rules):
            refs = rule.backend_refs
            if refs and all(ref.weight == 0 for ref in refs):
                message = (
                    "every backendRef has weight 0 — each request this rule matches is answered with 500"
                )
                fix = "give at least one backendRef a weight above 0 (an absent weight is 1)"
                yield finding(BACKENDS_ALL_ZERO, resource, f"spec.rules[{i}].backendRefs", message, fix)


def _istio(resource: Resource, path: str, weights: Sequence[int]) -> Iterator[Finding]:
    total = sum(weights)
    if total == 0:
        message = (
            f"all {len(weights)} destinations have weight 0 (an absent weight is 0) — no destination gets "
            "traffic, and Istio rejects weights that do not add up to 100"
        )
        even = _scaled([1] * len(weights))
        fix = f"give the destinations weights that add up to 100, e.g. {_listed(even)}"
        yield finding(WEIGHTS_ALL_ZERO, resource, path, message, fix)
    elif total != 100:
        message = (
            f"the weights add up to {total} ({' + '.join(map(str, weights))}), not 100 — Istio rejects this "
            "VirtualService, while Loom would read them as relative shares (an absent weight is 0)"
        )
        fix = f"make the weights add up to 100, e.g. {_listed(_scaled(weights))} (the same proportions)"
        yield finding(WEIGHTS_NOT_100, resource, path, message, fix)


def _scaled(weights: Sequence[int]) -> list[int]:
    """The weights rescaled to add up to exactly 100 (largest remainder)."""
    total = sum(weights)
    exact = [weight * 100 / total for weight in weights]
    result = [int(value) for value in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: exact[i] - result[i], reverse=True)
    for i in by_remainder[: 100 - sum(result)]:
        result[i] += 1
    return result


def _listed(weights: Sequence[int]) -> str:
    text = [str(weight) for weight in weights]
    return text[0] if len(text) == 1 else ", ".join(text[:-1]) + f" and {text[-1]}"
