"""The analyzer list and its codes: unique, stable in form, documented, each tested by a finding case
and a clean case, and reported only by the analyzer that owns it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from loom.analyze import ANALYZERS, LOAD_PROBLEM, Level, all_codes
from loom.analyze.context import Context
from loom.analyze.registry import RETIRED_CODES
from loom.analyze.workloads import WorkloadInfo
from tests.unit.analyze.cases import CASES, load_case, read_cases

DOCS = Path(__file__).resolve().parents[3] / "docs" / "analyze.md"


def test_codes_are_unique_well_formed_and_never_reused() -> None:
    ids = [code.id for code in all_codes()]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"LM\d{4}", code) for code in ids)
    assert not set(ids) & set(RETIRED_CODES)
    assert all_codes()[0] == LOAD_PROBLEM


def test_each_analyzer_keeps_to_its_own_range() -> None:
    ranges = {analyzer.name: {code.id[:4] for code in analyzer.codes} for analyzer in ANALYZERS}
    for name, prefixes in ranges.items():
        assert len(prefixes) == 1 or name.startswith("retry_"), (name, prefixes)
    retry = {p for name, prefixes in ranges.items() if name.startswith("retry_") for p in prefixes}
    assert retry == {"LM07"}


def test_every_code_is_documented_with_its_level() -> None:
    text = DOCS.read_text()
    for code in all_codes():
        row = next((line for line in text.splitlines() if line.startswith(f"| {code.id} ")), None)
        assert row is not None, f"{code.id} has no row in docs/analyze.md"
        assert f"| {code.level.value} |" in row, row


@pytest.mark.parametrize("analyzer", ANALYZERS, ids=[a.name for a in ANALYZERS])
def test_every_analyzer_has_a_finding_case_per_code_and_a_clean_case(analyzer: object) -> None:
    name = analyzer.name  # type: ignore[attr-defined]
    assert (CASES / f"{name}.yaml").is_file(), f"no cases file for {name}"
    cases = read_cases(name)
    assert any(case["findings"] == [] for case in cases), f"{name} has no clean case"
    found = {f["code"] for case in cases for f in case["findings"]}
    for code in analyzer.codes:  # type: ignore[attr-defined]
        assert code.id in found, f"{code.id} has no case"


@pytest.mark.parametrize("analyzer", ANALYZERS, ids=[a.name for a in ANALYZERS])
def test_an_analyzer_reports_only_its_own_codes(analyzer: object) -> None:
    own = {code.id: code.level for code in analyzer.codes}  # type: ignore[attr-defined]
    for path in sorted(CASES.glob("*.yaml")):
        for case in read_cases(path.stem):
            workloads = [WorkloadInfo(**fields) for fields in case.get("workloads", [])]
            ctx = Context.build(load_case(case), workloads)
            for item in analyzer.run(ctx):  # type: ignore[attr-defined]
                assert own.get(item.code) is item.level, str(item)


def test_levels_parse_case_insensitively() -> None:
    assert Level.parse("warning") is Level.WARNING
    assert Level.parse("ERROR") is Level.ERROR
    with pytest.raises(ValueError, match="use error, warning or info"):
        Level.parse("fatal")
