"""Pieces every route source shares: header operations, string matches and weights, checked so the
proxy will load them (see ``checks``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from loom.api import Resource
from loom.controlplane.compiler.checks import header_name_problem, header_value_problem
from loom.controlplane.compiler.diagnostics import Warnings
from loom.snapshot.model import HeaderOps, StringMatch
from loom.snapshot.regex import regex_problem


class Dropped(Exception):
    """A piece of configuration the proxy could not load; already reported."""


def header_ops(
    set_: Mapping[str, str],
    add: Mapping[str, str],
    remove: Iterable[str],
    resource: Resource,
    path: str,
    warnings: Warnings,
) -> HeaderOps | None:
    """Header operations with the invalid entries left out (and reported); None when nothing is left."""

    def valid(name: str, value: str | None, where: str) -> bool:
        problem = header_name_problem(name) or (header_value_problem(value) if value is not None else None)
        if problem is not None:
            warnings.add(f"{problem}; this header operation is dropped", resource, where)
            return False
        return True

    kept_set = {n: v for n, v in set_.items() if valid(n, v, f"{path}.set.{n}")}
    kept_add = {n: v for n, v in add.items() if valid(n, v, f"{path}.add.{n}")}
    kept_remove = [n for i, n in enumerate(remove) if valid(n, None, f"{path}.remove[{i}]")]
    if not (kept_set or kept_add or kept_remove):
        return None
    return HeaderOps(set=kept_set, add=kept_add, remove=kept_remove)


def merge_header_ops(first: HeaderOps | None, second: HeaderOps | None) -> HeaderOps | None:
    """``first`` then ``second`` (whose ``set``/``add`` win on the same name)."""
    if first is None or second is None:
        return first or second
    return HeaderOps(
        set={**first.set, **second.set},
        add={**first.add, **second.add},
        remove=list(dict.fromkeys([*first.remove, *second.remove])),
    )


def check_header_names(names: Iterable[str], resource: Resource, path: str, warnings: Warnings) -> None:
    """Raise Dropped (reported) when a header name to match is not an HTTP token."""
    for name in names:
        problem = header_name_problem(name)
        if problem is not None:
            warnings.add(f"{problem}; this match is dropped", resource, path)
            raise Dropped


def string_match(
    exact: str | None,
    prefix: str | None,
    regex: str | None,
    resource: Resource,
    path: str,
    warnings: Warnings,
) -> StringMatch | None:
    """A snapshot StringMatch, None for an empty one; raises Dropped for a regex the proxy would refuse."""
    if regex is not None:
        problem = regex_problem(regex)
        if problem is not None:
            warnings.add(f"{problem}; this match is dropped", resource, path)
            raise Dropped
        return StringMatch(regex=regex)
    if exact is not None:
        return StringMatch(exact=exact)
    if prefix is not None:
        return StringMatch(prefix=prefix)
    return None


def relative_weights(weights: list[int], resource: Resource, path: str, warnings: Warnings) -> list[int]:
    """Weights as relative shares: one destination gets 100; all zero (or absent) → equal shares, reported."""
    if len(weights) == 1:
        return [100]
    if sum(weights) <= 0:
        warnings.add("every destination has weight 0 (or none); splitting traffic equally", resource, path)
        return [1] * len(weights)
    return weights
