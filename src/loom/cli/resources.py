"""``loom apply``, ``loom get``, ``loom delete``: the control plane's store through its HTTP API.

``apply`` loads the YAML first (problems are refused with their file:line), then analyzes the
set the store would hold afterwards (``loom.analyze``) and refuses new Errors unless ``--force``,
then writes through ``POST /v1/resources`` (with the operator token). Shared here too: the small
HTTPS client the other commands use to read the control plane (``fetch_json``, ``fetch_resources``,
``fetch_workloads``).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from loom.cli.connection import (
    CONTROL_PLANE_OPTION,
    DEFAULT_CONTROL_PLANE,
    STATE_DIR_OPTION,
    AccessError,
    ControlPlaneAccess,
)

if TYPE_CHECKING:
    from loom.api import Resource
    from loom.controlplane.workloads import Workload

__all__ = ["CONTROL_PLANE_OPTION", "DEFAULT_CONTROL_PLANE", "STATE_DIR_OPTION", "ControlPlaneAccess"]

TIMEOUT_SECONDS = 10.0
YAML_SUFFIXES = (".yaml", ".yml")

KIND_ALIASES = {
    "vs": "VirtualService",
    "dr": "DestinationRule",
    "se": "ServiceEntry",
    "we": "WorkloadEntry",
    "pa": "PeerAuthentication",
    "ap": "AuthorizationPolicy",
    "ra": "RequestAuthentication",
    "svc": "Service",
    "ts": "TrafficSplit",
    "iop": "IstioOperator",
}
"""kubectl's short names for the kinds (and ``ts`` for TrafficSplit)."""

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

# --- talking to the control plane -------------------------------------------------------------


class ApiError(Exception):
    """The control plane answered with an error (``status`` 0: it could not be reached)."""

    def __init__(self, status: int, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = list(problems)


def fetch_json(
    base: ControlPlaneAccess,
    path: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    content_type: str = "",
) -> Any:
    """``method base+path`` → the decoded JSON answer; ``ApiError`` for an error or no answer.
    Anything but a GET carries the operator token."""
    request = urllib.request.Request(f"{base.url}{path}", data=body, method=method)
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        context = base.ssl_context()
    except AccessError as exc:
        raise ApiError(0, str(exc)) from None
    if method != "GET":
        token = base.operator_token()
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS, context=context) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read() or b"{}")
        except ValueError:
            detail = {}
        message = detail.get("error") if isinstance(detail, dict) else None
        problems = detail.get("problems") or [] if isinstance(detail, dict) else []
        message = message or f"HTTP {exc.code} {exc.reason}"
        if exc.code == 401:
            message += (
                f" (it is read from {base.state_dir / 'operator-token'}: give the control plane's "
                "--state-dir, or set $LOOM_OPERATOR_TOKEN)"
            )
        raise ApiError(exc.code, message, problems) from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ApiError(0, f"cannot reach the control plane at {base.url}: {reason}") from None


def fetch_resources(base: ControlPlaneAccess) -> tuple[list[Resource], bool]:
    """The resources in force at the control plane, loaded from the sources it read them from (so
    file:line are the store's), and whether it gave every source."""
    from loom.api import load_text

    body = fetch_json(base, "/v1/resources?sources=1")
    resources: list[Resource] = []
    for source in body.get("sources") or []:
        resources.extend(load_text(source["text"], source["name"]).resources)
    complete = bool(body.get("sources_complete", "sources" in body)) or not body.get("resources")
    return resources, complete


def fetch_workloads(base: ControlPlaneAccess) -> list[Workload]:
    from loom.controlplane.server import workload_from_json

    return [workload_from_json(item) for item in fetch_json(base, "/v1/workloads")]


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/] {escape(message)}")
    return typer.Exit(code)


def api_failure(exc: ApiError) -> typer.Exit:
    for problem in exc.problems:
        err.print(f"  {escape(problem)}")
    return fail(exc.message)


# --- reading YAML -------------------------------------------------------------------------------


def read_inputs(paths: Iterable[str]) -> list[tuple[str, str]]:
    """(name, text) of every file named: files, folders (recursively, ``*.yaml``/``*.yml`` in name
    order) and ``-`` (stdin, named ``<stdin>``)."""
    found: list[tuple[str, str]] = []
    for item in paths:
        if item == "-":
            found.append(("<stdin>", sys.stdin.read()))
            continue
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in YAML_SUFFIXES)
        elif path.exists():
            files = [path]
        else:
            raise fail(f"no such file or folder: {item}")
        for file in files:
            try:
                found.append((str(file), file.read_text(encoding="utf-8-sig")))
            except (OSError, UnicodeDecodeError) as exc:
                raise fail(f"cannot read {file}: {exc}") from None
    return found


def load_inputs(inputs: Sequence[tuple[str, str]]) -> list[Resource]:
    """Every resource of the inputs; exit 1 printing every problem (file:line) if any."""
    from loom.api import load_text

    resources: list[Resource] = []
    problems = []
    for name, text in inputs:
        result = load_text(text, name)
        resources.extend(result.resources)
        problems.extend(result.problems)
    if problems:
        for problem in problems:
            err.print(f"[red]✘[/] {escape(str(problem))}")
        raise fail(f"{len(problems)} problem(s) in the YAML: nothing was sent to the control plane", 1)
    if not resources:
        raise fail("no resource in the input")
    seen: dict[tuple[str, str, str], Resource] = {}
    for resource in resources:
        held = seen.setdefault(resource.key, resource)
        if held is not resource:
            raise fail(f"{resource.ref} is given twice ({held.source} and {resource.source}): keep one")
    return resources


def resolve_kind(text: str) -> str | None:
    """``vs``, ``virtualservices``, ``VirtualService`` → ``VirtualService``; ``all`` → None."""
    from loom.api import KINDS

    lowered = text.strip().lower()
    if lowered == "all":
        return None
    if lowered in KIND_ALIASES:
        return KIND_ALIASES[lowered]
    for info in KINDS:
        kind = info.kind.lower()
        plurals = {kind + "s", kind + "es", kind[:-1] + "ies" if kind.endswith("y") else kind}
        if lowered == kind or lowered in plurals:
            return info.kind
    names = ", ".join(sorted(info.kind for info in KINDS))
    raise fail(f"unknown kind {text!r}: use one of {names} (or a short name: vs, dr, se, svc, ...)", 2)


# --- apply ------------------------------------------------------------------------------------


def apply(
    files: list[str] = typer.Option(
        ..., "-f", "--filename", help="A YAML file, a folder (recursive) or - for stdin; repeatable."
    ),
    force: bool = typer.Option(False, "--force", help="Apply even when the analysis finds Errors."),
    control_plane: str = CONTROL_PLANE_OPTION,
    state_dir: str = STATE_DIR_OPTION,
) -> None:
    """Create or replace resources in the control plane's store, like kubectl apply. The YAML must
    load; the whole set the store would hold is analyzed (as loom analyze does) and new Errors are
    refused unless --force. To change a resource, edit its YAML and apply it again."""
    inputs = read_inputs(files)
    resources = load_inputs(inputs)
    access = ControlPlaneAccess.of(control_plane, state_dir)
    if not _analysis_allows(resources, access, force):
        raise typer.Exit(1)
    text = "\n---\n".join(body for _, body in inputs)
    try:
        answer = fetch_json(
            access, "/v1/resources", method="POST", body=text.encode(), content_type="application/yaml"
        )
    except ApiError as exc:
        raise api_failure(exc) from None
    for item in answer.get("applied", []):
        out.print(f"{item['kind']} {item['namespace']}/{item['name']} applied")


def _analysis_allows(applied: Sequence[Resource], base: ControlPlaneAccess, force: bool) -> bool:
    """Analyze the set after the apply; print what is new or about the applied resources; False
    when that includes an Error and not ``force``."""
    try:
        from loom.analyze import Level, WorkloadInfo, analyze, render
    except ImportError:  # no analysis available: the load check is all there is
        return True
    try:
        current, complete = fetch_resources(base)
        workloads = [
            WorkloadInfo(w.namespace, w.name, w.labels, w.service_account, w.sidecar is not None)
            for w in fetch_workloads(base)
        ]
    except ApiError as exc:
        raise api_failure(exc) from None
    if not complete:
        err.print("[yellow]note:[/] the control plane does not give its resources' YAML: not analyzed")
        return True
    keys = {r.key for r in applied}
    after = [r for r in current if r.key not in keys] + list(applied)

    def key(f: Any) -> tuple[str, str | None, str, str]:
        return (f.code, f.resource, f.path, f.message)

    before = {key(f) for f in analyze(current, workloads=workloads)}
    refs = {r.ref for r in applied}
    shown = [f for f in analyze(after, workloads=workloads) if f.resource in refs or key(f) not in before]
    colour = sys.stderr.isatty() and "NO_COLOR" not in os.environ
    for finding in shown:
        typer.echo(render.line(finding, colour=colour), err=True)
    errors = sum(1 for f in shown if f.level is Level.ERROR)
    if errors and not force:
        err.print(
            f"[red]error:[/] the analysis finds {errors} Error(s) in what would be applied: nothing was "
            "applied (fix them, or apply anyway with --force)"
        )
        return False
    return True


# --- get --------------------------------------------------------------------------------------


def get(
    kind: str = typer.Argument(..., help="VirtualService, vs, destinationrules, ... or all."),
    name: str | None = typer.Argument(None, help="Only the resource of this name."),
    namespace: str | None = typer.Option(
        None, "-n", "--namespace", help="Only this namespace (default: all)."
    ),
    output: str = typer.Option("table", "-o", "--output", help="table, yaml or json."),
    control_plane: str = CONTROL_PLANE_OPTION,
    state_dir: str = STATE_DIR_OPTION,
) -> None:
    """Show the resources in force at the control plane: a table (namespace, kind, name, where it
    is stored), their YAML, or JSON."""
    import yaml

    if output not in ("table", "yaml", "json"):
        raise fail(f"--output must be table, yaml or json, not {output!r}", 2)
    resolved = resolve_kind(kind)
    query = {"documents": "1"}
    if resolved is not None:
        query["kind"] = resolved
    if namespace:
        query["namespace"] = namespace
    if name:
        query["name"] = name
    try:
        access = ControlPlaneAccess.of(control_plane, state_dir)
        rows = fetch_json(access, f"/v1/resources?{urllib.parse.urlencode(query)}")["resources"]
    except ApiError as exc:
        raise api_failure(exc) from None
    if not rows:
        what = f"{resolved or 'resource'} {name!r}" if name else f"{resolved or 'resource'}s"
        where = f" in namespace {namespace}" if namespace else ""
        if name:
            raise fail(f"no {what}{where}")
        err.print(f"no {what}{where}")
        return
    if output == "yaml":
        typer.echo(
            "---\n".join(row.get("yaml") or yaml.safe_dump(_stub(row), sort_keys=False) for row in rows),
            nl=False,
        )
        return
    if output == "json":
        items = [yaml.safe_load(row["yaml"]) if row.get("yaml") else _stub(row) for row in rows]
        shown = items[0] if name and len(items) == 1 else {"apiVersion": "v1", "kind": "List", "items": items}
        typer.echo(json.dumps(shown, indent=2, default=str))
        return
    table = [("NAMESPACE", "KIND", "NAME", "SOURCE")]
    for row in sorted(rows, key=lambda r: (r["namespace"], r["kind"], r["name"])):
        table.append((row["namespace"], row["kind"], row["name"], f"{row['file']}:{row['line']}"))
    widths = [max(len(line[i]) for line in table) for i in range(3)]
    for line in table:
        typer.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)) + "  " + line[3]
        )


def _stub(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": row.get("api_version"),
        "kind": row["kind"],
        "metadata": {"name": row["name"], "namespace": row["namespace"]},
    }


# --- delete -----------------------------------------------------------------------------------


def delete(
    kind: str | None = typer.Argument(None, help="The kind (VirtualService, vs, ...), with NAME."),
    name: str | None = typer.Argument(None, help="The resource's name."),
    files: list[str] = typer.Option(
        [], "-f", "--filename", help="Delete every resource of these YAML files (or folders, or -)."
    ),
    namespace: str = typer.Option("default", "-n", "--namespace"),
    control_plane: str = CONTROL_PLANE_OPTION,
    state_dir: str = STATE_DIR_OPTION,
) -> None:
    """Remove resources from the control plane's store: those a YAML file defines (-f), or one
    named by KIND NAME [-n NAMESPACE]."""
    if files and (kind or name):
        raise fail("give either -f FILE or KIND NAME, not both", 2)
    if files:
        targets = [(r.kind, r.namespace, r.name) for r in load_inputs(read_inputs(files))]
    elif kind and name:
        resolved = resolve_kind(kind)
        if resolved is None:
            raise fail("name one kind to delete (not all)", 2)
        targets = [(resolved, namespace, name)]
    else:
        raise fail("give -f FILE, or KIND NAME", 2)
    access = ControlPlaneAccess.of(control_plane, state_dir)
    failed = False
    for target_kind, target_namespace, target_name in targets:
        path = "/v1/resources/" + "/".join(
            urllib.parse.quote(part, safe="") for part in (target_kind, target_namespace, target_name)
        )
        try:
            fetch_json(access, path, method="DELETE")
        except ApiError as exc:
            if exc.status == 0:
                raise api_failure(exc) from None
            err.print(f"[red]error:[/] {escape(exc.message)}")
            failed = True
            continue
        out.print(f"{target_kind} {target_namespace}/{target_name} deleted")
    if failed:
        raise typer.Exit(1)
