"""YAML text → documents, each with its data, the line of every field path and its reading problems.

PyYAML's ``compose`` gives nodes with positions; the data is built from them here (not by
``safe_load``), which is what gives each path its line and lets duplicate keys be caught — YAML
itself silently keeps the last. The text is split at ``---`` lines first so that a syntax error
in one document does not hide the documents after it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from loom.api import paths

_DOCUMENT_START = re.compile(r"^---(?:[ \t].*)?$")
_MERGE_TAG = "tag:yaml.org,2002:merge"
_NULL_TAG = "tag:yaml.org,2002:null"
_MAX_DEPTH = 64


@dataclass(frozen=True)
class Chunk:
    """The lines of one ``---``-separated part of a file; ``first_line`` is 1-based."""

    lines: tuple[str, ...]
    first_line: int


@dataclass(frozen=True)
class Issue:
    """A problem found while reading YAML (before any schema)."""

    line: int
    path: str
    message: str
    hint: str


@dataclass
class RawDocument:
    """One non-empty YAML document: its data, the line of each field path, and reading issues."""

    index: int
    line: int
    data: Any
    field_lines: dict[str, int] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)


def split(text: str) -> list[Chunk]:
    """The text cut before every ``---`` line (the marker stays with the document it opens)."""
    lines = text.splitlines()
    chunks: list[Chunk] = []
    start = 0
    for number, line in enumerate(lines):
        if number > start and _DOCUMENT_START.match(line):
            chunks.append(Chunk(tuple(lines[start:number]), start + 1))
            start = number
    chunks.append(Chunk(tuple(lines[start:]), start + 1))
    return chunks


def compose(chunk: Chunk) -> Iterator[Node]:
    """The root nodes of a chunk (normally one); raises ``yaml.YAMLError`` on bad syntax."""
    for node in yaml.compose_all("\n".join(chunk.lines) + "\n", Loader=yaml.SafeLoader):
        if node is None or (isinstance(node, ScalarNode) and node.tag == _NULL_TAG and not node.value):
            continue  # an empty document: `---` alone, or only comments
        yield node


def syntax_issue(exc: yaml.YAMLError, chunk: Chunk) -> Issue:
    """A syntax error as an issue at its line, with a hint for the usual causes."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = chunk.first_line + mark.line if mark is not None else chunk.first_line
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    message = f"YAML syntax error: {problem}" + (f" ({context})" if context else "")
    text = f"{problem} {context or ''}"
    if "'\\t'" in text or "\t" in text:
        hint = "indent with spaces: YAML does not allow tabs"
    elif "mapping values are not allowed" in text:
        hint = "check this line's indentation, or quote a value that contains ': '"
    elif "expected <block end>" in text or "expected <block mapping start>" in text:
        hint = "check that this line is indented like the other fields at its level"
    elif "found character" in text or "unknown escape" in text:
        hint = "quote the value (special characters such as '*', '@', '`' cannot start a plain value)"
    else:
        hint = "check the indentation and quoting around this line"
    return Issue(line, "", message, hint)


def build(node: Node, first_line: int, index: int) -> RawDocument:
    """The document's data built from its nodes, with the line of every field path."""
    builder = _Builder(first_line)
    data = builder.value(node, "", 0)
    return RawDocument(index, builder.line(node), data, builder.lines, builder.issues)


class _Builder:
    def __init__(self, first_line: int) -> None:
        self.first_line = first_line
        self.constructor = SafeConstructor()
        self.lines: dict[str, int] = {}
        self.issues: list[Issue] = []

    def line(self, node: Node) -> int:
        return self.first_line + node.start_mark.line

    def value(self, node: Node, path: str, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            self.issues.append(
                Issue(self.line(node), path, "the document is nested too deeply", "flatten it")
            )
            return None
        if isinstance(node, MappingNode):
            return self.mapping(node, path, depth)
        if isinstance(node, SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                child = paths.join(path, index)
                self.lines.setdefault(child, self.line(item))
                items.append(self.value(item, child, depth + 1))
            return items
        return self.scalar(node, path)

    def scalar(self, node: Node, path: str) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            self.issues.append(
                Issue(
                    self.line(node),
                    path,
                    f"cannot read this value: {problem}",
                    "remove the tag or quote the value",
                )
            )
            return None

    def mapping(self, node: MappingNode, path: str, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        pairs = [(key, value) for key, value in node.value if key.tag != _MERGE_TAG]
        # `<<: *anchor` merges first, so keys written here override merged ones (YAML's rule).
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                for source in value_node.value if isinstance(value_node, SequenceNode) else [value_node]:
                    if isinstance(source, MappingNode):
                        result.update(self.mapping(source, path, depth + 1))
        first_seen: dict[Any, int] = {}
        for key_node, value_node in pairs:
            line = self.line(key_node)
            if not isinstance(key_node, ScalarNode):
                self.issues.append(
                    Issue(line, path, "a key must be a plain value", "write the key as a simple name")
                )
                continue
            key = self.scalar(key_node, path)
            try:
                hash(key)
            except TypeError:
                self.issues.append(
                    Issue(line, path, "a key must be a plain value", "write the key as a simple name")
                )
                continue
            child = paths.join(path, key)
            if key in first_seen:
                self.issues.append(
                    Issue(
                        line,
                        child,
                        f"duplicate key `{key}` (also on line {first_seen[key]})",
                        "YAML keeps only the last one without a word: remove one, or merge them",
                    )
                )
            else:
                first_seen[key] = line
            self.lines[child] = line
            result[key] = self.value(value_node, child, depth + 1)
        return result
