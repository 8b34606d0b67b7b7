"""The analyzer cases of tests/fixtures/analyze/cases/<analyzer>.yaml, and how to run one.

A cases file is a list; each case has a ``name``, the ``yaml`` under test (loaded as ``case.yaml``),
optionally ``include`` (files of fixtures/analyze/common/ loaded beside it as ``<name>.yaml``) and
``workloads`` (WorkloadInfo fields), and ``findings``: exactly the findings expected, in order,
each with ``code``, ``level``, ``resource``, ``line`` (``file`` defaults to case.yaml) and optionally
``path`` and substrings of ``message`` and ``fix``. ``findings: []`` is a clean example.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from loom.analyze import Finding, WorkloadInfo, analyze
from loom.api import Resource, load_text

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "analyze"
CASES = FIXTURES / "cases"
COMMON = FIXTURES / "common"
SEED_SUPPORT = FIXTURES / "seed_support"
SEED_EXAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "api" / "seed_examples"

CASE_FILE = "case.yaml"


def read_cases(analyzer: str) -> list[dict[str, Any]]:
    cases = yaml.safe_load((CASES / f"{analyzer}.yaml").read_text())
    assert isinstance(cases, list), analyzer
    return cases


def all_cases() -> list[tuple[str, dict[str, Any]]]:
    return [(path.stem, case) for path in sorted(CASES.glob("*.yaml")) for case in read_cases(path.stem)]


def load_case(case: dict[str, Any]) -> list[Resource]:
    resources: list[Resource] = []
    texts = [(f"{name}.yaml", (COMMON / f"{name}.yaml").read_text()) for name in case.get("include", [])]
    texts.append((CASE_FILE, case["yaml"]))
    for file, text in texts:
        result = load_text(text, file)
        assert not result.problems, [str(problem) for problem in result.problems]
        resources += result.resources
    return resources


def run_case(case: dict[str, Any]) -> list[Finding]:
    workloads = [WorkloadInfo(**fields) for fields in case.get("workloads", [])]
    return analyze(load_case(case), workloads=workloads)


def summary(found: Finding) -> dict[str, Any]:
    return {
        "code": found.code,
        "level": found.level.value,
        "resource": found.resource,
        "file": found.file,
        "line": found.line,
    }


def expected_summary(expected: dict[str, Any]) -> dict[str, Any]:
    return {
        "code": expected["code"],
        "level": expected["level"],
        "resource": expected["resource"],
        "file": expected.get("file", CASE_FILE),
        "line": expected["line"],
    }
