"""What a check found: a status, a short reason, a hint when something is wrong, and detail lines."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from loom.cli.check.probe import Probe


class Status(enum.Enum):
    OK = "ok"
    WARN = "warning"
    FAIL = "error"


@dataclass(frozen=True)
class CheckResult:
    status: Status
    reason: str = ""
    """One line: what was found (``3 proxies, all SYNCED``, ``cannot reach ...``)."""
    details: tuple[str, ...] = ()
    """One line per thing at fault (a proxy, a root, a workload)."""
    hint: str = ""
    """What to do about a warning or a failure."""

    @classmethod
    def ok(cls, reason: str = "", details: Sequence[str] = ()) -> CheckResult:
        return cls(Status.OK, reason, tuple(details))

    @classmethod
    def warn(cls, reason: str, hint: str = "", details: Sequence[str] = ()) -> CheckResult:
        return cls(Status.WARN, reason, tuple(details), hint)

    @classmethod
    def fail(cls, reason: str, hint: str = "", details: Sequence[str] = ()) -> CheckResult:
        return cls(Status.FAIL, reason, tuple(details), hint)


@dataclass(frozen=True)
class Check:
    """One check: its category and title (what must hold), the function that looks, and whether the
    checks after it can run at all when it fails (``fatal``: they need what it checks)."""

    category: str
    title: str
    run: Callable[[Probe], CheckResult]
    fatal: bool = False


@dataclass(frozen=True)
class Outcome:
    check: Check
    result: CheckResult


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    stopped_after: Check | None = None
    """A fatal check that failed: the ones after it were not run."""

    @property
    def failed(self) -> bool:
        return any(o.result.status is Status.FAIL for o in self.outcomes)

    @property
    def warnings(self) -> int:
        return sum(o.result.status is Status.WARN for o in self.outcomes)
