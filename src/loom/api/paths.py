"""Field paths as an operator reads them: ``spec.http[0].route[1].weight``.

One spelling is shared by the YAML reader (which records the line of every path) and the
error translation (which turns pydantic locations into paths), so a problem's path always
finds its line. Names are the YAML (camelCase) keys; list items are ``[i]``; a map key that
is not a plain word (``app.kubernetes.io/name``) is quoted: ``labels["app.kubernetes.io/name"]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def join(prefix: str, key: object) -> str:
    """The path of ``key`` (a map key or a list index) under ``prefix``."""
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{prefix}[{key}]"
    text = key if isinstance(key, str) else str(key)
    if _PLAIN_KEY.match(text):
        return f"{prefix}.{text}" if prefix else text
    return f"{prefix}[{json.dumps(text)}]"


def from_loc(loc: Iterable[object], prefix: str = "") -> str:
    """A pydantic error location (aliases, indexes, map keys) as a path."""
    path = prefix
    for item in loc:
        if item == "[key]":  # pydantic's marker for "the key itself failed"
            continue
        path = join(path, item)
    return path


def line_of(path: str, field_lines: Mapping[str, int], default: int) -> int:
    """The line of ``path``, or of its nearest recorded ancestor (a missing field's parent)."""
    while path:
        line = field_lines.get(path)
        if line is not None:
            return line
        path = parent(path)
    return default


def parent(path: str) -> str:
    """``spec.http[0].route`` → ``spec.http[0]`` → ``spec.http`` → ``spec`` → ``""``."""
    if path.endswith("]"):
        depth = 0
        for i in range(len(path) - 1, -1, -1):
            char = path[i]
            if char == "]":
                depth += 1
            elif char == "[":
                depth -= 1
                if depth == 0:
                    return path[:i]
        return ""
    cut = path.rfind(".")
    return path[:cut] if cut >= 0 else ""
