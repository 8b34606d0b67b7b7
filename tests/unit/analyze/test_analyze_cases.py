"""Table-driven: every case of tests/fixtures/analyze/cases/ gives exactly its findings."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.analyze.cases import all_cases, expected_summary, run_case, summary

CASES = all_cases()


@pytest.mark.parametrize(("analyzer", "case"), CASES, ids=[f"{a}: {c['name']}" for a, c in CASES])
def test_case(analyzer: str, case: dict[str, Any]) -> None:
    found = run_case(case)

    shown = "\n".join(str(item) for item in found)
    assert [summary(item) for item in found] == [expected_summary(e) for e in case["findings"]], shown
    for item, expected in zip(found, case["findings"], strict=True):
        assert item.message and item.fix, str(item)
        assert item.path == expected.get("path", item.path), str(item)
        assert expected.get("message", "") in item.message, str(item)
        assert expected.get("fix", "") in item.fix, str(item)
