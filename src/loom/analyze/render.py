"""How ``loom analyze`` prints findings: one line each (levels in colour on a terminal), or JSON,
and the summary line."""

from __future__ import annotations

import json
from collections.abc import Sequence

from loom.analyze.finding import Finding, Level
from loom.analyze.report import Report

_COLOURS = {Level.ERROR: "\x1b[1;31m", Level.WARNING: "\x1b[33m", Level.INFO: "\x1b[36m"}
_DIM, _RESET = "\x1b[2m", "\x1b[0m"


def line(item: Finding, *, colour: bool = False) -> str:
    """``Error [LM0101] VirtualService ns/name (file:line) field: message. Fix: how.``"""
    text = str(item)
    if not colour:
        return text
    head = f"{item.level.value} [{item.code}]"
    rest = text[len(head) :]
    fix_at = rest.rfind(". Fix: ")
    if fix_at >= 0:
        rest = f"{rest[: fix_at + 2]}{_DIM}{rest[fix_at + 2 :]}{_RESET}"
    return f"{_COLOURS[item.level]}{head}{_RESET}{rest}"


def as_json(findings: Sequence[Finding]) -> str:
    return json.dumps([item.to_dict() for item in findings], indent=2, ensure_ascii=False)


def summary(report: Report) -> str:
    """``✔ No issues found in 12 resources (4 files).`` or ``✘ 1 error, 2 warnings, 1 info in ...``."""
    scope = f"{_plural(report.resources, 'resource')} ({_plural(report.files, 'file')})"
    if not report.findings:
        return f"✔ No issues found in {scope}."
    counts = [
        _plural(report.count(Level.ERROR), "error"),
        _plural(report.count(Level.WARNING), "warning"),
        f"{report.count(Level.INFO)} info",
    ]
    mark = "✘" if report.count(Level.ERROR) else "!"
    return f"{mark} {', '.join(counts)} in {scope}."


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"
