"""``analyze_paths``: load files, folders or stdin and analyze them, as ``loom analyze`` does —
loading problems become LM0001 Errors, then every analyzer runs over what loaded."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from loom.analyze.engine import analyze
from loom.analyze.finding import Finding, Level, from_load_problem
from loom.analyze.workloads import WorkloadInfo
from loom.api import load_paths


@dataclass(frozen=True, slots=True)
class Report:
    findings: tuple[Finding, ...]
    resources: int
    files: int

    def count(self, level: Level) -> int:
        return sum(1 for item in self.findings if item.level is level)

    def fails(self, threshold: Level = Level.ERROR) -> bool:
        """Some finding is at ``threshold`` or worse (the exit status of ``loom analyze``)."""
        return any(item.level.rank >= threshold.rank for item in self.findings)


def analyze_paths(paths: Iterable[str | Path], *, workloads: Sequence[WorkloadInfo] = ()) -> Report:
    loaded = load_paths(paths)
    findings = [from_load_problem(problem) for problem in loaded.problems]
    findings += analyze(loaded.resources, workloads=workloads)
    files = {resource.source.file for resource in loaded.resources} | {p.file for p in loaded.problems}
    return Report(tuple(sorted(findings, key=Finding.sort_key)), len(loaded.resources), len(files))
