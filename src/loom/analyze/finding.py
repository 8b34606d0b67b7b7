"""``Finding``: one thing an analyzer reports — a stable code, a level, where it is, what is wrong
and how to fix it. ``Code`` is the registered identity of a kind of finding (its level never varies)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from loom.api import LoadProblem, Resource


class Level(Enum):
    """How bad a finding is, as ``istioctl analyze`` names it."""

    ERROR = "Error"
    WARNING = "Warning"
    INFO = "Info"

    @property
    def rank(self) -> int:
        """Higher is worse: Error 3, Warning 2, Info 1."""
        return {"Error": 3, "Warning": 2, "Info": 1}[self.value]

    @classmethod
    def parse(cls, text: str) -> Level:
        """``error``, ``Warning``, ``INFO`` → the level (case-insensitive); ValueError otherwise."""
        for level in cls:
            if level.value.lower() == text.strip().lower():
                return level
        raise ValueError(f"unknown level {text!r}: use error, warning or info")


@dataclass(frozen=True, slots=True)
class Code:
    """A kind of finding: ``LM0101``, its level, and one line saying what it finds.

    Codes are stable: once released a code keeps its meaning and is never reused.
    """

    id: str
    level: Level
    title: str


@dataclass(frozen=True, slots=True)
class Finding:
    """One finding. ``resource`` is ``Kind namespace/name`` (None when no resource could be read),
    ``file``/``line`` where the most precise field is written, ``path`` that field
    (``spec.http[0].route[1].destination.subset``). ``message`` and ``fix`` are sentences
    without a final full stop."""

    code: str
    level: Level
    message: str
    fix: str
    resource: str | None
    file: str
    line: int
    path: str = ""

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def __str__(self) -> str:
        head = f"{self.level.value} [{self.code}]"
        where = f"{self.resource} ({self.location})" if self.resource else f"({self.location})"
        field = f" {self.path}" if self.path else ""
        stop = "" if self.fix.endswith(("?", "!")) else "."
        return f"{head} {where}{field}: {self.message}. Fix: {self.fix}{stop}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``loom analyze -o json``)."""
        return {
            "code": self.code,
            "level": self.level.value,
            "resource": self.resource,
            "file": self.file,
            "line": self.line,
            "path": self.path,
            "message": self.message,
            "fix": self.fix,
        }

    def sort_key(self) -> tuple[str, int, str, str, str]:
        return (self.file, self.line, self.code, self.path, self.message)


def finding(code: Code, resource: Resource, path: str, message: str, fix: str) -> Finding:
    """A finding about ``resource`` at the line of ``path`` (or of its nearest written ancestor)."""
    return Finding(
        code=code.id,
        level=code.level,
        message=_sentence(message),
        fix=_sentence(fix),
        resource=resource.ref,
        file=resource.source.file,
        line=resource.line_of(path) if path else resource.source.line,
        path=path,
    )


LOAD_PROBLEM = Code("LM0001", Level.ERROR, "a file or document does not load (syntax, schema or value)")


def from_load_problem(problem: LoadProblem) -> Finding:
    """A loading problem as an Error finding with code LM0001."""
    return Finding(
        code=LOAD_PROBLEM.id,
        level=LOAD_PROBLEM.level,
        message=_sentence(problem.message),
        fix=_sentence(problem.hint or "correct the document"),
        resource=problem.resource_ref,
        file=problem.file,
        line=problem.line,
        path=problem.field_path,
    )


def _sentence(text: str) -> str:
    return text.strip().rstrip(".")
