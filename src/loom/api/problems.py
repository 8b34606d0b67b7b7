"""``LoadProblem`` and the translation of pydantic's errors into problems an operator can act on:
a path in YAML names, the line, a message in YAML terms and a fix hint ("did you mean ...")."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from loom.api import paths
from loom.api.resources.base import camel
from loom.api.resources.values import yaml_type
from loom.api.schema import allowed_fields


@dataclass(frozen=True)
class LoadProblem:
    """One thing wrong in the input, and how to fix it.

    ``str()`` gives ``file:line: Kind ns/name: spec.http[0].route: message (hint: ...)``.
    """

    file: str
    line: int
    resource_ref: str | None
    field_path: str
    message: str
    hint: str

    def __str__(self) -> str:
        parts = [f"{self.file}:{self.line}"]
        if self.resource_ref:
            parts.append(self.resource_ref)
        if self.field_path:
            parts.append(self.field_path)
        text = ": ".join([*parts, self.message])
        return f"{text} (hint: {self.hint})" if self.hint else text


def describe(error: ErrorDetails, document: type[BaseModel]) -> tuple[str, str]:
    """Message and hint for one pydantic error of a document validated by ``document``."""
    kind = error["type"]
    loc = tuple(item for item in error["loc"] if item != "[key]")
    name = str(loc[-1]) if loc else "the document"
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "loom":
        return str(ctx.get("message", error["msg"])), str(ctx.get("hint", ""))
    if kind == "extra_forbidden":
        return f"unknown field `{name}`", _unknown_field_hint(name, document, loc)
    if kind == "missing":
        where = f" under `{loc[-2]}`" if len(loc) > 1 and isinstance(loc[-2], str) else ""
        return f"`{name}` is required", f"add `{name}:`{where}"
    if value is None and kind not in {"literal_error"}:
        return (
            f"`{name}` is empty",
            "give it a value or delete the line; if its value is on the next lines, indent them under it",
        )
    if kind == "literal_error":
        return _literal(value, str(ctx.get("expected", "")))
    if kind in {"string_type", "string_sub_type"}:
        quoted = f'"{_yaml_scalar(value)}"'
        hint = f"quote it: {quoted if isinstance(loc[-1], int) else f'{name}: {quoted}'}"
        if not _is_scalar(value):
            hint = "write a single value"
        return f"expected a string, got {yaml_type(value)}", hint
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return f"expected a whole number, got {yaml_type(value)}", "write a number without quotes, e.g. 10"
    if kind in {"float_type", "float_parsing"}:
        return f"expected a number, got {yaml_type(value)}", "write a number without quotes, e.g. 1.5"
    if kind in {"bool_type", "bool_parsing"}:
        return f"expected true or false, got {yaml_type(value)}", "write true or false without quotes"
    if kind in {"model_type", "model_attributes_type", "dict_type", "dataclass_type"}:
        return (
            f"expected a mapping (indented `key: value` lines), got {yaml_type(value)}",
            "put the fields on their own lines, indented under this one",
        )
    if kind in {"tuple_type", "list_type", "set_type", "iterable_type"}:
        hint = (
            "start each item with `- `"
            if isinstance(value, dict)
            else "write a list: `- item` lines or [a, b]"
        )
        return f"expected a list, got {yaml_type(value)}", hint
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        bound = next(iter(ctx.values()), "?")
        word = {"greater_than_equal": "≥", "greater_than": ">", "less_than_equal": "≤", "less_than": "<"}[
            kind
        ]
        return f"{value} is out of range: `{name}` must be {word} {bound}", f"use a value {word} {bound}"
    if kind in {"too_short", "too_long"}:
        limit = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        word = "at least" if kind == "too_short" else "at most"
        return f"`{name}` has {ctx.get('actual_length', '?')} items", f"give it {word} {limit}"
    if kind == "string_too_long":
        return f"`{name}` is too long", f"use at most {ctx.get('max_length')} characters"
    return error["msg"], "see the reference documentation of this field"


def _unknown_field_hint(name: str, document: type[BaseModel], loc: tuple[Any, ...]) -> str:
    allowed = allowed_fields(document, loc[:-1]) or []
    camel_name = camel(name.replace("-", "_"))
    if camel_name != name and camel_name in allowed:
        return f"YAML field names are camelCase: write `{camel_name}`"
    lowered = {field.lower(): field for field in allowed}
    if name.lower() in lowered:
        return f"field names are case-sensitive: write `{lowered[name.lower()]}`"
    if len(loc) == 1:  # top level: a field of metadata or spec written one level too high?
        for parent in ("metadata", "spec"):
            if name in (allowed_fields(document, (parent,)) or []):
                return f"`{name}` belongs under `{parent}:` — indent it there"
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    if close:
        return f"did you mean `{close[0]}`?"
    if not allowed:
        return "remove it"
    shown = ", ".join(allowed[:20]) + (", ..." if len(allowed) > 20 else "")
    return f"fields allowed here: {shown}"


def _literal(value: Any, expected: str) -> tuple[str, str]:
    options = [
        option.strip().strip("'") for option in expected.replace(" or ", ", ").split(",") if option.strip()
    ]
    if isinstance(value, str):
        for option in options:
            if option.lower() == value.lower():
                return f"`{value}` is not allowed", f"values are case-sensitive: write `{option}`"
    return f"{yaml_type(value)} is not allowed", f"use one of: {', '.join(options)}"


def _is_scalar(value: Any) -> bool:
    return isinstance(value, bool | int | float) or value is None or hasattr(value, "isoformat")


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def problems_from_errors(
    errors: list[ErrorDetails],
    document: type[BaseModel],
    *,
    file: str,
    default_line: int,
    resource_ref: str | None,
    field_lines: Mapping[str, int],
) -> list[LoadProblem]:
    """Every pydantic error of one document as a ``LoadProblem`` at its line."""
    problems = []
    for error in errors:
        path = paths.from_loc(error["loc"])
        message, hint = describe(error, document)
        line = paths.line_of(path, field_lines, default_line)
        problems.append(LoadProblem(file, line, resource_ref, path, message, hint))
    return problems
