"""Tables for the benchmark reports: rich on the terminal, markdown for RESULTS.md."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.console import Console
from rich.table import Table


def rich_table(
    title: str, head: Sequence[str], rows: Sequence[Sequence[str]], left: Callable[[int, str], bool]
) -> Table:
    """A table whose column ``i`` named ``name`` is left-aligned when ``left(i, name)``."""
    table = Table(title=title, title_justify="left")
    for i, name in enumerate(head):
        table.add_column(name, justify="left" if left(i, name) else "right")
    for row in rows:
        table.add_row(*row)
    return table


def md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    lines += ["| " + " | ".join(cell or " " for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def print_notes(console: Console, notes: Sequence[str]) -> None:
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {note}")
