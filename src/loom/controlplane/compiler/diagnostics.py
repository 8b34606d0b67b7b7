"""``CompileWarning``: something the compiler had to drop or could not honour, with where it was written."""

from __future__ import annotations

from dataclasses import dataclass

from loom.api import Resource


@dataclass(frozen=True, slots=True)
class CompileWarning:
    """One thing the compiler dropped or could not honour.

    ``resource`` is ``Kind namespace/name`` (None for a warning about no single resource), ``path``
    the field inside it (``spec.http[0].retries.retryOn``), ``file``/``line`` where that field was
    written (when the resource was loaded from a file).
    """

    message: str
    resource: str | None = None
    path: str = ""
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        parts = []
        if self.file is not None:
            parts.append(f"{self.file}:{self.line}" if self.line else self.file)
        if self.resource is not None:
            parts.append(self.resource)
        if self.path:
            parts.append(self.path)
        parts.append(self.message)
        return ": ".join(parts)


class Warnings:
    """Collects warnings in the order they are found; the same warning twice is kept once."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: dict[CompileWarning, None] = {}

    def add(self, message: str, resource: Resource | None = None, path: str = "") -> None:
        if resource is None:
            self._items.setdefault(CompileWarning(message, path=path), None)
            return
        line = resource.line_of(path) if path else resource.source.line
        warning = CompileWarning(message, resource.ref, path, resource.source.file, line)
        self._items.setdefault(warning, None)

    def extend(self, warnings: tuple[CompileWarning, ...] | list[CompileWarning]) -> None:
        for warning in warnings:
            self._items.setdefault(warning, None)

    def result(self) -> tuple[CompileWarning, ...]:
        return tuple(self._items)
