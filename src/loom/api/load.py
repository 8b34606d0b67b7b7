"""Loading operator YAML: files, folders, stdin or text → ``LoadResult`` (resources and problems).

Every problem is reported — all the errors of a document (pydantic collects them), and every
document of every file — each with file:line, the resource, the field path and a fix hint. A
document with any problem yields no resource; empty documents (``---`` alone) are skipped.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from pydantic import ValidationError

from loom.api import documents, indentation, kinds
from loom.api.problems import LoadProblem, problems_from_errors
from loom.api.schema import extensions_used

STDIN = "-"
STDIN_NAME = "<stdin>"
YAML_SUFFIXES = (".yaml", ".yml")
DEFAULT_NAMESPACE = "default"


@dataclass
class LoadResult:
    resources: list[kinds.Resource] = field(default_factory=list)
    problems: list[LoadProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def extend(self, other: LoadResult) -> None:
        self.resources.extend(other.resources)
        self.problems.extend(other.problems)


def load_paths(paths: Iterable[str | Path]) -> LoadResult:
    """Load files, folders (recursively: ``*.yaml``, ``*.yml``, in name order) and ``-`` (stdin)."""
    result = LoadResult()
    for path in paths:
        if str(path) == STDIN:
            result.extend(load_text(sys.stdin.read(), STDIN_NAME))
            continue
        for file in _files(Path(path), result):
            try:
                text = file.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError) as exc:
                result.problems.append(
                    LoadProblem(str(file), 0, None, "", f"cannot read the file: {exc}", _why(exc))
                )
                continue
            result.extend(load_text(text, str(file)))
    return result


def _files(path: Path, result: LoadResult) -> Iterator[Path]:
    if path.is_dir():
        yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in YAML_SUFFIXES)
    elif path.exists():
        yield path  # named explicitly: read whatever its suffix
    else:
        result.problems.append(
            LoadProblem(str(path), 0, None, "", "no such file or folder", "check the path (use - for stdin)")
        )


def _why(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "save the file as UTF-8"
    return "check the path and its permissions"


def load_text(text: str, source_name: str = "<text>") -> LoadResult:
    """Load every document of one YAML text; ``source_name`` is the file name used in problems."""
    result = LoadResult()
    index = 0
    for chunk in documents.split(text):
        lost = indentation.in_text(chunk.lines, chunk.first_line)
        if lost is not None:
            ref = indentation.ref_from_text(chunk.lines)
            result.problems.append(
                LoadProblem(source_name, lost.line, ref, "", lost.message, indentation.HINT)
            )
            index += 1
            continue
        try:
            nodes = list(documents.compose(chunk))
        except yaml.YAMLError as exc:
            issue = documents.syntax_issue(exc, chunk)
            result.problems.append(LoadProblem(source_name, issue.line, None, "", issue.message, issue.hint))
            index += 1
            continue
        for node in nodes:
            raw = documents.build(node, chunk.first_line, index)
            index += 1
            resource, problems = _resource(raw, source_name)
            result.problems.extend(problems)
            if resource is not None:
                result.resources.append(resource)
    return result


def _resource(raw: documents.RawDocument, file: str) -> tuple[kinds.Resource | None, list[LoadProblem]]:
    data = raw.data
    ref = _ref(data)
    problems = [LoadProblem(file, i.line, ref, i.path, i.message, i.hint) for i in raw.issues]
    lost = indentation.in_data(data, raw.field_lines)
    if lost is not None:
        return None, [LoadProblem(file, lost.line, ref, "", lost.message, indentation.HINT)]
    if not isinstance(data, dict):
        problems.append(
            LoadProblem(
                file,
                raw.line,
                None,
                "",
                "a resource must be a mapping with apiVersion, kind, metadata and spec",
                "start the document with `apiVersion:` and `kind:` lines",
            )
        )
        return None, problems
    info = _kind(data, raw, file, ref, problems)
    if info is None:
        return None, problems
    try:
        document = info.document.model_validate(data, by_name=False)
    except ValidationError as exc:
        problems += problems_from_errors(
            exc.errors(),
            info.document,
            file=file,
            default_line=raw.line,
            resource_ref=ref,
            field_lines=raw.field_lines,
        )
        return None, _by_line(problems)
    if problems:
        return None, _by_line(problems)
    return _make_resource(document, info, raw, file), []


def _by_line(problems: list[LoadProblem]) -> list[LoadProblem]:
    return sorted(problems, key=lambda problem: problem.line)


def _kind(
    data: dict[Any, Any], raw: documents.RawDocument, file: str, ref: str | None, problems: list[LoadProblem]
) -> kinds.KindInfo | None:
    api_version, kind = data.get("apiVersion"), data.get("kind")
    for name, value, example in (
        ("apiVersion", api_version, "networking.istio.io/v1"),
        ("kind", kind, "VirtualService"),
    ):
        if not isinstance(value, str) or not value:
            line = raw.field_lines.get(name, raw.line)
            what = "missing" if value is None else "not a string"
            problems.append(
                LoadProblem(file, line, ref, name, f"`{name}` is {what}", f"add e.g. `{name}: {example}`")
            )
    if not isinstance(kind, str) or not kind:
        return None
    if not isinstance(api_version, str) or not api_version:
        if all(info.kind != kind for info in kinds.KINDS):
            api_version = "?/?"  # still say that the kind is unknown
        else:
            return None
    try:
        return kinds.lookup(api_version, kind)
    except kinds.UnknownKind as exc:
        line = raw.field_lines.get(exc.path, raw.line)
        problems.append(LoadProblem(file, line, ref, exc.path, exc.message, exc.hint))
        return None


def _make_resource(
    document: Any, info: kinds.KindInfo, raw: documents.RawDocument, file: str
) -> kinds.Resource:
    meta = document.metadata
    name = meta.name if meta is not None and meta.name else kinds.UNNAMED_ISTIO_OPERATOR
    namespace = meta.namespace if meta is not None else None
    notes = extensions_used(document.spec, "spec")
    return kinds.Resource(
        api_version=document.api_version,
        kind=info.kind,
        name=name,
        namespace=namespace or DEFAULT_NAMESPACE,
        namespace_given=namespace is not None,
        spec=document.spec,
        source=kinds.Source(file, raw.line, raw.index),
        labels=MappingProxyType(dict(meta.labels) if meta is not None else {}),
        annotations=MappingProxyType(dict(meta.annotations) if meta is not None else {}),
        field_lines=MappingProxyType(dict(raw.field_lines)),
        extensions=tuple(notes),
        extension_notes=MappingProxyType(notes),
    )


def _ref(data: Any) -> str | None:
    """``Kind namespace/name`` from raw data, as far as it can be read (for problems)."""
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        return None
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    name = meta.get("name") if isinstance(meta.get("name"), str) else "(no name)"
    namespace = meta.get("namespace") if isinstance(meta.get("namespace"), str) else DEFAULT_NAMESPACE
    return f"{data['kind']} {namespace}/{name}"
