"""Spotting YAML whose indentation was lost, as web pages print it: every line at column 0.

Such text either fails to parse (a list item after a key at the same column) or parses into a
document whose ``metadata:``/``spec:`` are empty while their fields sit at the top level. Both
are recognised — from the text, before parsing, and from the data — so the operator is told
what happened instead of getting a syntax error or a dozen unknown fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loom.api.kinds import TOP_LEVEL_FIELDS

_CONTAINER = re.compile(r"^(metadata|spec):[ \t]*(#.*)?$")
_KEY = re.compile(r"""^(?P<key>[A-Za-z_][\w.-]*|"[^"]*"|'[^']*')[ \t]*:(?:[ \t]|$)""")
_DOCUMENT_MARK = re.compile(r"^(---|\.\.\.)([ \t].*)?$")

HINT = (
    "indent each nested field under its parent (two spaces per level), as in the original; "
    "web pages often print YAML with its leading spaces stripped"
)


@dataclass(frozen=True)
class LostIndentation:
    line: int  # the empty `metadata:` or `spec:`
    parent: str
    strays: tuple[str, ...]  # fields found at the top level that belong deeper

    @property
    def message(self) -> str:
        strays = ", ".join(f"`{name}`" for name in self.strays)
        return (
            f"the indentation looks lost: `{self.parent}:` is empty and fields that belong under it "
            f"({strays}) are at the top level"
        )


def in_text(lines: Sequence[str], first_line: int) -> LostIndentation | None:
    """Flat text: no line indented, and an empty ``metadata:``/``spec:`` followed by a nested key."""
    content = [
        (number, line)
        for number, line in enumerate(lines)
        if line.strip() and not line.lstrip().startswith("#") and not _DOCUMENT_MARK.match(line)
    ]
    if not content or any(line[0] in " \t" for _, line in content):
        return None
    for position, (number, line) in enumerate(content):
        container = _CONTAINER.match(line)
        if container is None or position + 1 == len(content):
            continue
        following = _KEY.match(content[position + 1][1])
        if following is not None and _unquote(following["key"]) not in TOP_LEVEL_FIELDS:
            keys = [
                _unquote(match["key"]) for _, line in content[position + 1 :] if (match := _KEY.match(line))
            ]
            return LostIndentation(first_line + number, container[1], _children(keys))
    return None


def in_data(data: Any, field_lines: Mapping[str, int]) -> LostIndentation | None:
    """Parsed data with an empty ``metadata``/``spec`` and fields at the top level that are not top-level."""
    if not isinstance(data, dict):
        return None
    empty = [name for name in ("metadata", "spec") if name in data and data[name] is None]
    if not empty or all(key in TOP_LEVEL_FIELDS for key in data):
        return None
    keys = [str(key) for key in data]
    children = _children(keys[keys.index(empty[0]) + 1 :])
    if not children:  # e.g. `spec:` empty at the end, strays elsewhere: name them all
        children = tuple(key for key in keys if key not in TOP_LEVEL_FIELDS)[:4]
    return LostIndentation(field_lines.get(empty[0], 1), empty[0], children)


def ref_from_text(lines: Sequence[str]) -> str | None:
    """``Kind namespace/name`` read from flat text's ``kind:``/``name:``/``namespace:`` lines, if any."""
    found: dict[str, str] = {}
    for line in lines:
        match = re.match(r"^(kind|name|namespace):[ \t]*([^#\s][^#]*?)[ \t]*(#.*)?$", line)
        if match and match[1] not in found:
            found[match[1]] = match[2].strip("'\"")
    if "kind" not in found:
        return None
    return f"{found['kind']} {found.get('namespace', 'default')}/{found.get('name', '(no name)')}"


def _children(keys: Sequence[str]) -> tuple[str, ...]:
    """The keys after an empty parent, up to the next top-level field: the parent's lost children."""
    names: list[str] = []
    for key in keys:
        if key in TOP_LEVEL_FIELDS:
            break
        if key not in names:
            names.append(key)
    return tuple(names[:4])


def _unquote(key: str) -> str:
    return key[1:-1] if key[:1] in "\"'" else key
