"""Table-driven: bad inputs and the exact problems they produce (fixtures/api/invalid_cases.yaml)."""

from __future__ import annotations

from typing import Any

import pytest

from loom.api import load_text
from tests.unit.api.fixtures import read_yaml

CASES = read_yaml("invalid_cases.yaml")
assert isinstance(CASES, list)


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_invalid_case(case: dict[str, Any]) -> None:
    result = load_text(case["yaml"], "case.yaml")

    got = [str(problem) for problem in result.problems]
    assert len(result.problems) == len(case["problems"]), got
    for problem, expected in zip(result.problems, case["problems"], strict=True):
        assert problem.file == "case.yaml"
        assert problem.line == expected["line"], str(problem)
        assert problem.field_path == expected.get("path", ""), str(problem)
        assert expected["message"] in problem.message, str(problem)
        assert expected.get("hint", "") in problem.hint, str(problem)
        assert problem.hint, f"every problem has a fix hint: {problem}"
        if "ref" in expected:
            assert problem.resource_ref == expected["ref"]
    assert len(result.resources) == case.get("resources", 0)
