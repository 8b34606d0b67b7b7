"""How ``loom check`` prints: a heading per category, a line per check (✔ ‼ ✖); under a warning or a
failure its reason, the lines at fault and a hint; then a summary. Or all of it as JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence

from rich.text import Text

from loom.cli.check.result import Outcome, Status

SYMBOLS = {Status.OK: ("✔", "green"), Status.WARN: ("‼", "yellow"), Status.FAIL: ("✖", "red")}
INDENT = "    "


def heading(category: str) -> Text:
    return Text(f"{category}\n{'-' * len(category)}", style="bold")


def outcome(item: Outcome) -> Text:
    result = item.result
    symbol, colour = SYMBOLS[result.status]
    text = Text()
    text.append(symbol, style=colour)
    text.append(f" {item.check.title}")
    if result.reason and result.status is Status.OK:
        text.append(f": {result.reason}", style="dim")
    elif result.reason:
        text.append(f"\n{INDENT}{result.reason}")
    for detail in result.details:  # an error may run over several lines: indent the rest further
        first, *rest = detail.splitlines() or [""]
        text.append(f"\n{INDENT}{first}")
        for line in rest:
            text.append(f"\n{INDENT}{INDENT}{line.strip()}")
    if result.hint and result.status is not Status.OK:
        text.append(f"\n{INDENT}hint: {result.hint}", style="italic")
    return text


def summary(outcomes: Sequence[Outcome], stopped: bool) -> Text:
    failed = sum(o.result.status is Status.FAIL for o in outcomes)
    warnings = sum(o.result.status is Status.WARN for o in outcomes)
    symbol, colour = SYMBOLS[Status.FAIL if failed else Status.OK]
    text = Text("Status check results are ")
    text.append(symbol, style=colour)
    counts = [
        f"{n} {what}{'s' if n != 1 else ''}" for n, what in ((failed, "error"), (warnings, "warning")) if n
    ]
    if counts:
        text.append(f" ({', '.join(counts)})")
    if stopped:
        text.append("\nthe checks after the first ✖ need it to pass: they were not run")
    return text


def as_json(outcomes: Sequence[Outcome], stopped: bool) -> str:
    checks = [
        {
            "category": o.check.category,
            "check": o.check.title,
            "status": o.result.status.value,
            "reason": o.result.reason,
            "details": list(o.result.details),
            "hint": o.result.hint,
        }
        for o in outcomes
    ]
    ok = not any(o.result.status is Status.FAIL for o in outcomes)
    return json.dumps({"ok": ok, "complete": not stopped, "checks": checks}, indent=2)
