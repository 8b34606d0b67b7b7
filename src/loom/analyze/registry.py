"""The one list of analyzers. An analyzer is a module of ``loom.analyze.analyzers`` with ``CODES``
(the codes it reports) and ``run(ctx)``; to add one, write the module and list it here, with codes
from a range of its own (see docs/analyze.md). Codes are never reused."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType

from loom.analyze.analyzers import (
    authorization,
    conflicting_routes,
    invalid_regex,
    istio_extensions,
    retry_budget,
    retry_side_effects,
    retry_timeout,
    route_weights,
    strict_mtls,
    subset_without_workloads,
    undefined_subset,
    unknown_host,
    unreachable_rule,
)
from loom.analyze.context import Context
from loom.analyze.finding import LOAD_PROBLEM, Code, Finding


@dataclass(frozen=True, slots=True)
class Analyzer:
    name: str
    codes: tuple[Code, ...]
    run: Callable[[Context], Iterable[Finding]]


def _analyzer(module: ModuleType) -> Analyzer:
    return Analyzer(module.__name__.rsplit(".", 1)[-1], tuple(module.CODES), module.run)


ANALYZERS: tuple[Analyzer, ...] = tuple(
    _analyzer(module)
    for module in (
        undefined_subset,  # LM0101
        unknown_host,  # LM0201-LM0203
        subset_without_workloads,  # LM0301
        conflicting_routes,  # LM0401-LM0402
        unreachable_rule,  # LM0501
        route_weights,  # LM0601-LM0604
        retry_timeout,  # LM0701
        retry_side_effects,  # LM0702
        retry_budget,  # LM0703-LM0704
        invalid_regex,  # LM0801
        strict_mtls,  # LM0901
        authorization,  # LM1001-LM1003
        istio_extensions,  # LM1101
    )
)


RETIRED_CODES: tuple[str, ...] = ()
"""Codes once reported and since removed: they keep their meaning in old output and are never reused."""


def all_codes() -> tuple[Code, ...]:
    """Every code Loom reports: LM0001 (loading) and those of every analyzer, in order."""
    return (LOAD_PROBLEM, *(code for analyzer in ANALYZERS for code in analyzer.codes))
