"""The store: where the operator's resources live. ``Store`` is what every backend offers; the
folder of YAML (``FileStore``) is one, etcd (``loom.controlplane.etcd_store``) another.

Either way the rule is the same: the store is read at start, then watched; a change that does not
load (syntax, schema) is refused with its problems and the last good set of resources stays in
force, so a typo never takes the mesh's configuration away.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from loom.api import LoadProblem, LoadResult, Resource, load_paths, load_text
from loom.api.documents import split
from loom.api.load import YAML_SUFFIXES

log = logging.getLogger("loom.controlplane")

POLL_SECONDS = 0.1
APPLIED_FOLDER = "applied"
"""The folder store's subfolder for what ``apply`` writes: ``applied/<kind>.<namespace>.<name>.yaml``."""
APPLIED_HEADER = "# Written by `loom apply`: change it with `loom apply`, remove it with `loom delete`.\n"
APPLY_SOURCE = "<apply>"
Stamp = tuple[tuple[str, int, int], ...]


class ApplyRefused(Exception):
    """``Store.apply`` was given text that does not load: nothing was written."""

    def __init__(self, problems: Sequence[LoadProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class StoreConflict(Exception):
    """The store will not make a write as asked; the message says what to do instead (the API
    answers 409)."""


class Store(Protocol):
    """A source of resources. ``on_change(resources)`` (given to the constructor) is called with
    the whole set each time a change loads; a change that does not load sets ``last_error`` and
    leaves ``resources`` (the last good set) in force."""

    resources: list[Resource]
    last_error: str | None

    def describe(self) -> str:
        """Where the resources are (for messages): a folder, an etcd URL."""
        ...

    async def open(self) -> bool:
        """Read everything; apply it if it loads (True), else set ``last_error`` (False)."""
        ...

    async def watch(self) -> None:
        """Follow changes until cancelled."""
        ...

    async def apply(self, yaml_text: str) -> list[Resource]:
        """Create or replace every resource of ``yaml_text`` (all or none: ``ApplyRefused``)."""
        ...

    async def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Remove one resource; False when there was none."""
        ...

    async def close(self) -> None: ...


class FileStore:
    """The folder (recursively, ``*.yaml`` / ``*.yml``) is the store; it is polled for edits.

    The operator's files are never rewritten: ``apply`` writes each resource to a file of its own,
    ``applied/<kind>.<namespace>.<name>.yaml`` (replacing an earlier apply of it), and ``delete``
    removes such a file. A resource defined in one of the operator's own files is refused
    (``StoreConflict``): that file is where it is changed. Both load the folder at once.
    """

    def __init__(self, directory: Path, on_change: Callable[[list[Resource]], None]) -> None:
        self.directory = directory
        self.on_change = on_change
        self.resources: list[Resource] = []
        self.last_error: str | None = None
        self._stamp: Stamp = ()
        self.sources: dict[str, str] = {}
        """The text of every file of the last good load (file → YAML), so a client can load the
        same resources, file:line included (``GET /v1/resources?sources=1``)."""
        self._parsed: dict[str, tuple[str, LoadResult]] = {}
        """file → (its text, what it loaded to): an edit re-parses only the files that changed."""

    def load(self) -> bool:
        """Read the folder; apply it if it loads cleanly. True when applied."""
        self._stamp = self._current_stamp()
        result, sources = _read_folder(self.directory, self._parsed)
        if result.problems:
            self.last_error = "\n".join(str(p) for p in result.problems)
            log.error("configuration refused; the last good one stays in force:\n%s", self.last_error)
            return False
        self.last_error = None
        self.resources = list(result.resources)
        self.sources = sources
        self.on_change(self.resources)
        return True

    def describe(self) -> str:
        return str(self.directory)

    async def open(self) -> bool:
        return self.load()

    @property
    def applied_dir(self) -> Path:
        return self.directory / APPLIED_FOLDER

    async def apply(self, yaml_text: str, source_name: str = APPLY_SOURCE) -> list[Resource]:
        """Write every resource of ``yaml_text`` to its file under ``applied/`` and load the folder.
        All or none: ``ApplyRefused`` (file:line problems) or ``StoreConflict``, nothing written."""
        documents = one_per_document(yaml_text, source_name)
        for resource, _ in documents:
            held = self._held(resource.kind, resource.namespace, resource.name)
            if held is not None and not self._is_applied(held):
                raise StoreConflict(
                    f"{resource.ref} is defined in {held.source}, one of the folder's own files: edit "
                    f"that file instead (`loom apply` writes only to {self.applied_dir}/)"
                )
        self._write(
            {self._applied_path(r.kind, r.namespace, r.name): APPLIED_HEADER + text for r, text in documents}
        )
        log.info("applied %s", ", ".join(r.ref for r, _ in documents))
        return [resource for resource, _ in documents]

    async def delete(self, kind: str, namespace: str, name: str) -> bool:
        held = self._held(kind, namespace, name)
        if held is not None and not self._is_applied(held):
            raise StoreConflict(
                f"{held.ref} is defined in {held.source}, one of the folder's own files: remove it "
                "from that file"
            )
        path = self._applied_path(kind, namespace, name)
        if not path.exists():
            return False
        self._write({path: None})
        log.info("deleted %s %s/%s", kind, namespace, name)
        return True

    def _held(self, kind: str, namespace: str, name: str) -> Resource | None:
        key = (kind.lower(), namespace, name)
        return next((r for r in self.resources if (r.kind.lower(), r.namespace, r.name) == key), None)

    def _is_applied(self, resource: Resource) -> bool:
        return Path(resource.source.file).resolve().parent == self.applied_dir.resolve()

    def _applied_path(self, kind: str, namespace: str, name: str) -> Path:
        return self.applied_dir / f"{kind.lower()}.{namespace}.{name}.yaml"

    def _write(self, changes: dict[Path, str | None]) -> None:
        """Write (or, for None, remove) the files, then load the folder; if it does not load, put
        the files back as they were and raise ``StoreConflict`` with the problems."""
        previous = {path: path.read_text(encoding="utf-8") if path.exists() else None for path in changes}
        self.applied_dir.mkdir(parents=True, exist_ok=True)
        for path, text in changes.items():
            _put(path, text)
        if self.load():
            return
        error = self.last_error
        for path, text in previous.items():
            _put(path, text)
        self.load()
        raise StoreConflict(f"{self.directory} does not load with this change, so it was not made:\n{error}")

    async def close(self) -> None:
        return None

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if self._current_stamp() != self._stamp:
                self.load()

    def _current_stamp(self) -> Stamp:
        entries = []
        for root, _, files in os.walk(self.directory):
            for name in files:
                if name.endswith((".yaml", ".yml")):
                    path = os.path.join(root, name)
                    try:
                        st = os.stat(path)
                    except OSError:
                        continue
                    entries.append((path, st.st_mtime_ns, st.st_size))
        return tuple(sorted(entries))


def one_per_document(yaml_text: str, source_name: str = APPLY_SOURCE) -> list[tuple[Resource, str]]:
    """Each resource of ``yaml_text`` with the text of its own document; ``ApplyRefused`` (with
    file:line problems) when the text does not load, holds no resource, or names one twice."""
    result = load_text(yaml_text, source_name)
    if result.problems:
        raise ApplyRefused(result.problems)
    found: list[tuple[Resource, str]] = []
    problems: list[LoadProblem] = []
    seen: dict[tuple[str, str, str], int] = {}
    for chunk in split(yaml_text):
        mine = [
            r
            for r in result.resources
            if chunk.first_line <= r.source.line < chunk.first_line + len(chunk.lines)
        ]
        if not mine:
            continue  # an empty document
        lines = list(chunk.lines)
        if lines and lines[0].strip() == "---":
            lines = lines[1:]
        resource = mine[0]
        if len(mine) > 1:
            message = "several documents without a `---` line between them"
            problems.append(
                _problem(source_name, mine[1].source.line, mine[1].ref, message, "start each with `---`")
            )
            continue
        if "/" in resource.namespace or "/" in resource.name or resource.name.startswith("."):
            message = "the name or namespace cannot name a file"
            problems.append(
                _problem(source_name, resource.source.line, resource.ref, message, "use a Kubernetes name")
            )
            continue
        if resource.key in seen:
            message = f"this resource is also on line {seen[resource.key]}"
            problems.append(
                _problem(source_name, resource.source.line, resource.ref, message, "keep one of the two")
            )
            continue
        seen[resource.key] = resource.source.line
        found.append((resource, "\n".join(lines).rstrip("\n") + "\n"))
    if problems:
        raise ApplyRefused(problems)
    if not found:
        raise ApplyRefused([_problem(source_name, 0, None, "no resource in the text", "give YAML documents")])
    return found


def _problem(file: str, line: int, ref: str | None, message: str, hint: str) -> LoadProblem:
    return LoadProblem(file, line, ref, "", message, hint)


def _read_folder(
    directory: Path, parsed: dict[str, tuple[str, LoadResult]]
) -> tuple[LoadResult, dict[str, str]]:
    """``load_paths([directory])``, keeping the text each file was loaded from.

    ``parsed`` remembers what each file's text loaded to (resources are immutable), so only the
    files whose text changed are parsed again — YAML parsing is most of a reload's cost.
    """
    if not directory.is_dir():
        return load_paths([directory]), {}
    result = LoadResult()
    sources: dict[str, str] = {}
    for file in sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix in YAML_SUFFIXES):
        try:
            text = file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError):
            result.extend(load_paths([file]))  # says why, as it would have
            continue
        name = str(file)
        sources[name] = text
        cached = parsed.get(name)
        if cached is None or cached[0] != text:
            cached = parsed[name] = (text, load_text(text, name))
        result.extend(cached[1])
    for gone in parsed.keys() - sources.keys():
        del parsed[gone]
    return result, sources


def _put(path: Path, text: str | None) -> None:
    if text is None:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
