"""Every seed example, with the Services and workloads it refers to, passes analysis without an Error
(tests/fixtures/analyze/seed_examples.yaml says which findings each gives)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from loom.analyze import Level, analyze_paths
from tests.unit.analyze.cases import FIXTURES, SEED_EXAMPLES, SEED_SUPPORT, expected_summary, summary

EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((FIXTURES / "seed_examples.yaml").read_text())


def seed_paths(name: str) -> list[Path]:
    entry = EXPECTED[name]
    return [
        SEED_EXAMPLES / name,
        *(SEED_SUPPORT / support for support in entry.get("support", [])),
        *(SEED_EXAMPLES / seed for seed in entry.get("seeds", [])),
    ]


def test_every_seed_example_is_listed() -> None:
    assert sorted(EXPECTED) == sorted(path.name for path in SEED_EXAMPLES.glob("*.yaml"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_seed_example_passes_without_an_error(name: str) -> None:
    paths = seed_paths(name)
    report = analyze_paths(paths)

    shown = "\n".join(str(item) for item in report.findings)
    assert not report.fails(Level.ERROR), shown
    seed_file = str(paths[0])
    in_seed = [item for item in report.findings if item.file == seed_file]
    wanted = EXPECTED[name]["findings"]
    assert [summary(item) for item in in_seed] == [
        {**expected_summary(e), "file": seed_file} for e in wanted
    ], shown
    for item, expected in zip(in_seed, wanted, strict=True):
        assert item.path == expected.get("path", item.path), str(item)
    assert not [item for item in report.findings if Path(item.file).parent == SEED_SUPPORT], shown
