"""``loom trace [TRACE_ID]``: a trace the control plane kept, as a waterfall; without an id, the latest."""

from __future__ import annotations

import json
import time
from typing import Any

import typer

from loom.cli import resources
from loom.cli.connection import CONTROL_PLANE_OPTION, STATE_DIR_OPTION, ControlPlaneAccess

BAR_WIDTH = 30


def trace(
    trace_id: str = typer.Argument("", help="The trace id (32 hex digits); without it, list recent traces."),
    control_plane: str = CONTROL_PLANE_OPTION,
    state_dir: str = STATE_DIR_OPTION,
    service: str = typer.Option("", "--service", help="List only traces through this service."),
    limit: int = typer.Option(20, "--limit", help="How many traces to list."),
    output: str = typer.Option("tree", "-o", "--output", help="tree or json"),
) -> None:
    """A trace as a tree of spans with their durations (sidecars send their sampled spans to the
    control plane, which keeps the last 1,000 traces)."""
    access = ControlPlaneAccess.of(control_plane, state_dir)
    path = f"/v1/traces/{trace_id}" if trace_id else f"/v1/traces?limit={limit}"
    if not trace_id and service:
        path += f"&service={service}"
    try:
        data = resources.fetch_json(access, path)
    except resources.ApiError as exc:
        raise resources.api_failure(exc) from None
    if output == "json":
        typer.echo(json.dumps(data, indent=2))
    elif trace_id:
        typer.echo("\n".join(waterfall(data)))
    else:
        typer.echo("\n".join(listing(data)))


def listing(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["no traces yet"]
    lines = [f"{'TRACE ID':32}  {'STARTED':19}  {'DURATION':>10}  SPANS  ROOT"]
    for row in rows:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["start_unix_nano"] / 1e9))
        mark = "  ERROR" if row["error"] else ""
        lines.append(
            f"{row['trace_id']:32}  {started}  {row['duration_ms']:>8.2f}ms  {row['spans']:>5}  "
            f"{row['root_service']} {row['root_operation']}{mark}"
        )
    return lines


def waterfall(data: dict[str, Any]) -> list[str]:
    """One line a span, children under their parent, with a bar placing it in the trace's time."""
    spans = data["span_list"]
    start = data["start_unix_nano"]
    total = max(data["duration_ms"], 0.001)
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans:
        parent = span["parent_id"] if span["parent_id"] in ids else None
        children.setdefault(parent, []).append(span)
    lines = [f"trace {data['trace_id']}: {data['spans']} spans, {data['duration_ms']:.2f} ms"]

    def walk(parent: str | None, depth: int) -> None:
        for span in sorted(children.get(parent, ()), key=lambda s: s["start_unix_nano"]):
            offset = (span["start_unix_nano"] - start) / 1e6
            lead = int(offset / total * BAR_WIDTH)
            width = max(1, int(span["duration_ms"] / total * BAR_WIDTH))
            bar = " " * lead + "█" * min(width, BAR_WIDTH - lead if lead < BAR_WIDTH else 1)
            attrs = span["attributes"]
            status = attrs.get("http.status_code", "")
            mark = " ERROR" if span["error"] else ""
            label = f"{'  ' * depth}{span['service']} {span['kind']} {span['name']}"
            lines.append(
                f"{bar:<{BAR_WIDTH}} {span['duration_ms']:>9.2f}ms  {label}  {status}{mark}".rstrip()
            )
            walk(span["span_id"], depth + 1)

    walk(None, 0)
    return lines
