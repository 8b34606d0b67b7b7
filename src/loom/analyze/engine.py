"""``analyze``: every registered analyzer over one set of resources."""

from __future__ import annotations

from collections.abc import Sequence

from loom.analyze.context import Context
from loom.analyze.finding import Finding
from loom.analyze.registry import ANALYZERS
from loom.analyze.workloads import WorkloadInfo
from loom.api import Resource


def analyze(resources: Sequence[Resource], *, workloads: Sequence[WorkloadInfo] = ()) -> list[Finding]:
    """The findings of every analyzer over ``resources``, by file and line; the same finding once.

    ``workloads`` are the running workloads known (a registry's); WorkloadEntry resources are added
    to them as workloads without a sidecar.
    """
    ctx = Context.build(resources, workloads)
    found: dict[Finding, None] = {}
    for analyzer in ANALYZERS:
        for item in analyzer.run(ctx):
            found.setdefault(item, None)
    return sorted(found, key=Finding.sort_key)
