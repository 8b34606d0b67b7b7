"""``loom stat``, ``loom edges``, ``loom top``, ``loom tap``: the sidecars' golden metrics and live
requests, as the control plane computes them from what the sidecars push (no Prometheus)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from loom.cli import resources
from loom.cli.connection import CONTROL_PLANE_OPTION, STATE_DIR_OPTION, AccessError, ControlPlaneAccess

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

KINDS = {
    "deploy": "deploy",
    "deployment": "deploy",
    "workload": "deploy",
    "svc": "svc",
    "service": "svc",
    "route": "route",
    "routes": "route",
}
"""What ``loom stat`` and ``loom tap`` take for a kind, and what the API calls it."""


def _seconds(text: str, option: str) -> float:
    from loom.snapshot.durations import parse_duration

    try:
        value = parse_duration(text.strip() if not text.strip().isdigit() else float(text))
    except ValueError as exc:
        raise resources.fail(f"{option}: {exc}", 2) from None
    if value <= 0:
        raise resources.fail(f"{option} must be more than 0", 2)
    return value


def _get(access: ControlPlaneAccess, path: str, query: dict[str, object]) -> Any:
    wanted = {k: v for k, v in query.items() if v not in ("", None)}
    try:
        return resources.fetch_json(access, f"{path}?{urllib.parse.urlencode(wanted)}")
    except resources.ApiError as exc:
        raise resources.api_failure(exc) from None


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}ms" if value >= 10 else f"{value:.1f}ms"


def stat(
    kind: str = typer.Argument("deploy", help="deploy (a Workload), svc (a Service) or route."),
    name: str = typer.Argument("", help="Only this one.", show_default=False),
    namespace: str = typer.Option("default", "--namespace", "-n"),
    all_namespaces: bool = typer.Option(False, "--all-namespaces", "-A", help="Every namespace."),
    window: str = typer.Option(
        "1m", "--window", "-w", help="Over how long (e.g. 30s, 1m, 10m; at most 15m)."
    ),
    output: str = typer.Option("table", "-o", "--output", help="table or json"),
    control_plane: str = CONTROL_PLANE_OPTION,
    state_dir: str = STATE_DIR_OPTION,
) -> None:
    """Golden metrics per Workload, Service or route, like `linkerd viz stat`: success rate,
    requests per second and latency percentiles over the window, open TCP connections, and the
    share of requests over mutual TLS. Computed by the control plane from what the sidecars push."""
    by = KINDS.get(kind.lower())
    if by is None:
        raise resources.fail(f"kind must be deploy, svc or route, not {kind!r}", 2)
    if "/" in name:
        name = name.split("/", 1)[1]
    seconds = _seconds(window, "--window")
    access = ControlPlaneAccess.of(control_plane, state_dir)
    query = {
        "by": by,
        "namespace": "" if all_namespaces else namespace,
        "name": name,
        "window": f"{seconds:g}",
    }
    answer = _get(access, "/v1/stats", query)
    if output == "json":
        typer.echo(json.dumps(answer, indent=2))
        return
    columns = ["NAME", "MESHED", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"]
    columns += ["TCP_CONN", "MTLS"]
    table = Table(*(["NAMESPACE", *columns] if all_namespaces else columns), box=None, pad_edge=False)
    for row in answer["rows"]:
        cells = [
            row["name"],
            str(row["meshed"]),
            _percent(row["success_rate"]),
            f"{row['rps']:.1f}rps",
            _ms(row["p50_ms"]),
            _ms(row["p95_ms"]),
            _ms(row["p99_ms"]),
            str(row["tcp_connections"]),
            "-" if row["mtls_share"] is None else f"{row['mtls_share'] * 100:.0f}%",
        ]
        table.add_row(*([row["namespace"], *cells] if all_namespaces else cells))
    if not answer["rows"]:
        err.print(f"no traffic seen in the last {window}")
        return
    out.print(table)


def edges(
    namespace: str = typer.Option("", "--namespace", "-n", help="Only edges from or to this namespace."),
    window: str = typer.Option("1m", "--window", "-w"),
    output: str = typer.Option("table", "-o", "--output", help="table or json"),
    control_plane: str = CONTROL_PLANE_OPTION,
    state_dir: str = STATE_DIR_OPTION,
) -> None:
    """Who calls whom, with the identities each side proved, like `linkerd viz edges`."""
    seconds = _seconds(window, "--window")
    access = ControlPlaneAccess.of(control_plane, state_dir)
    answer = _get(access, "/v1/edges", {"namespace": namespace, "window": f"{seconds:g}"})
    if output == "json":
        typer.echo(json.dumps(answer, indent=2))
        return
    table = Table("SRC", "DST", "SRC_NS", "DST_NS", "SECURED", "RPS", "SUCCESS", "LATENCY_P99", box=None)
    for edge in answer["edges"]:
        source, destination = edge["source"], edge["destination"]
        table.add_row(
            source["workload"],
            f"{destination['workload']} ({destination['service']})",
            source["namespace"],
            destination["namespace"],
            "√" if edge["mtls"] else "×",
            f"{edge['rps']:.1f}",
            _percent(edge["success_rate"]),
            _ms(edge["p99_ms"]),
        )
    out.print(table)
    for edge in answer["edges"]:
        if edge["mtls"]:
            src, dst = edge["source"], edge["destination"]
            out.print(f"  {src['workload']}: {src['principal']} -> {dst['workload']}: {dst['principal']}")


def _top_table(rows: list[dict[str, Any]]) -> Table:
    table = Table("SOURCE", "DESTINATION", "METHOD", "PATH", "COUNT", "P50", "SUCCESS", box=None)
    for row in rows:
        table.add_row(
            row["source"],
            row["destination"],
            row["method"],
            row["path"],
            str(row["count"]),
            _ms(row["p50_ms"]),
            _percent(row["success_rate"]),
        )
    return table


def top(
    namespace: str = typer.Option("", "--namespace", "-n", help="Only requests from or to this namespace."),
    window: str = typer.Option("1m", "--window", "-w", help="Requests seen over how long."),
    once: bool = typer.Option(False, "--once", help="Print the table once and exit."),
    every: float = typer.Option(2.0, "--every", help="Seconds between refreshes."),
    control_plane: str = CONTROL_PLANE_OPTION,
    state_dir: str = STATE_DIR_OPTION,
) -> None:
    """The busiest requests (source, destination, method, path), like `linkerd viz top`: the
    sidecars tap every request while it runs. Refreshes until Ctrl-C (or `--once`)."""
    from rich.live import Live

    seconds = _seconds(window, "--window")
    access = ControlPlaneAccess.of(control_plane, state_dir)
    query = {"namespace": namespace, "window": f"{seconds:g}", "seconds": f"{every:g}"}
    if once:
        out.print(_top_table(_get(access, "/v1/top", query)["rows"]))
        return
    try:
        with Live(_top_table([]), console=out, auto_refresh=False) as live:
            while True:
                live.update(_top_table(_get(access, "/v1/top", query)["rows"]), refresh=True)
                time.sleep(0.2)
    except KeyboardInterrupt:
        return


def tap_line(event: dict[str, Any]) -> str:
    """One request as `linkerd viz tap` prints it."""
    service = str(event.get("destination_service") or "unknown").split(".")
    destination = f"{event.get('destination_namespace')}/{service[0]}"
    if service[0] == "unknown":
        destination = str(event.get("destination"))
    latency = float(event.get("latency_ms") or 0.0)
    return (
        f"req id={event.get('request_id') or '-'} proxy={event.get('direction')} "
        f"src={event.get('source')} dst={destination} :method={event.get('method')} "
        f":authority={event.get('authority') or '-'} :path={event.get('path')} "
        f"rsp :status={event.get('status')} latency={_ms(latency)} "
        f"flags={event.get('response_flags') or '-'} trace={event.get('trace_id') or '-'}"
    )


def _stream(access: ControlPlaneAccess, query: dict[str, object], timeout: float) -> Iterator[dict[str, Any]]:
    wanted = {k: v for k, v in query.items() if v not in ("", None)}
    request = urllib.request.Request(f"{access.url}/v1/tap?{urllib.parse.urlencode(wanted)}")
    token = access.operator_token()
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        context = access.ssl_context()
    except AccessError as exc:
        raise resources.fail(str(exc)) from None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            for line in response:
                if line.strip():
                    yield json.loads(line)
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read() or b"{}").get("error")
        except ValueError:
            message = None
        raise resources.api_failure(resources.ApiError(exc.code, message or f"HTTP {exc.code}")) from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise resources.fail(f"cannot reach the control plane at {access.url}: {reason}") from None


def tap(
    target: str = typer.Argument(
        "", help="deploy/NAME or svc/NAME (default: every request).", show_default=False
    ),
    namespace: str = typer.Option("", "--namespace", "-n", help="Only requests from or to this namespace."),
    to: str = typer.Option("", "--to", help="Only requests to this Service."),
    path: str = typer.Option("", "--path", help="Only paths starting with this."),
    method: str = typer.Option("", "--method", help="Only this HTTP method."),
    max_events: int = typer.Option(0, "--max", help="Stop after this many requests (0: no limit)."),
    seconds: float = typer.Option(3600.0, "--seconds", help="Stop after this long."),
    output: str = typer.Option("text", "-o", "--output", help="text or json (one object per line)"),
    control_plane: str = CONTROL_PLANE_OPTION,
    state_dir: str = STATE_DIR_OPTION,
) -> None:
    """Watch requests as the sidecars see them, one line each, like `linkerd viz tap` (needs the
    operator token). Every sidecar records finished requests while a tap runs."""
    deploy = ""
    if target:
        kind, _, name = target.partition("/")
        if not name or KINDS.get(kind.lower()) not in ("deploy", "svc"):
            raise resources.fail(f"the target is deploy/NAME or svc/NAME, not {target!r}", 2)
        if KINDS[kind.lower()] == "deploy":
            deploy = name
        else:
            to = to or name
    query: dict[str, object] = {"namespace": namespace, "to": to, "path": path, "method": method}
    query.update({"deploy": deploy, "seconds": f"{seconds:g}", "max": max_events or None})
    access = ControlPlaneAccess.of(control_plane, state_dir)
    try:
        for event in _stream(access, query, timeout=seconds + 30):
            typer.echo(json.dumps(event) if output == "json" else tap_line(event))
    except KeyboardInterrupt:
        return
