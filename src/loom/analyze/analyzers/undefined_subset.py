"""LM0101: a route or mirror names a subset that no DestinationRule for its host defines.

The proxy builds one cluster per subset a DestinationRule defines; a route to any other subset
has no cluster to go to, so every request it takes fails with 503 (response flag NC), and a
mirror to it copies nothing. This is the classic canary blackhole: the VirtualService is applied
before the DestinationRule, or the subset is misspelt.

The DestinationRules for a host are those naming it exactly (after resolving short names in their
own namespace), else those whose wildcard host covers it; a subset defined by any of them counts.
"""

from __future__ import annotations

from collections.abc import Iterator

from loom.analyze.context import Context
from loom.analyze.finding import Code, Finding, Level, finding
from loom.analyze.routes import targets

UNDEFINED_SUBSET = Code("LM0101", Level.ERROR, "route or mirror to a subset no DestinationRule defines")
CODES = (UNDEFINED_SUBSET,)


def run(ctx: Context) -> Iterator[Finding]:
    for target in targets(ctx):
        if target.subset is None:
            continue
        rules = ctx.destination_rules(target.host)
        defined = sorted({subset.name for _, spec in rules for subset in spec.subsets})
        if target.subset in defined:
            continue
        host = ctx.show(target.written, target.host)
        effect = (
            "mirrored copies of requests are dropped"
            if target.mirror
            else "requests routed to it fail with 503 (no cluster for the subset, response flag NC)"
        )
        message = f'subset "{target.subset}" is not defined by any DestinationRule for host {host} — {effect}'
        if rules:
            rule = rules[0][0]
            existing = f"route to an existing subset ({', '.join(defined)})" if defined else "remove `subset`"
            fix = (
                f"add subset {target.subset} to DestinationRule {rule.namespace}/{rule.name} ({rule.source}) "
                f"or {existing}"
            )
        else:
            fix = (
                f"create a DestinationRule for host {target.written} with a subset named {target.subset} "
                "(its labels select the pods of that version), or remove `subset`"
            )
        yield finding(UNDEFINED_SUBSET, target.resource, target.subset_path, message, fix)
