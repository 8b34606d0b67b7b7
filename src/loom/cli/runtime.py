"""``loom up`` / ``down`` / ``status`` / ``run``: a whole mesh on this machine (docs/runtime.md).
Thin: the work is in ``loom.runtime``; this parses, shows progress and prints tables."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.status import Status
from rich.table import Table

from loom.runtime import children
from loom.runtime.join import JoinFailed, JoinRequest, run_joined
from loom.runtime.mesh import Interrupted
from loom.runtime.network import tear_down, unsupported_reason
from loom.runtime.plan import MeshPlan, PlanError, read_plan
from loom.runtime.plane_client import PlaneClient, PlaneError
from loom.runtime.state import FAILED, READY, STOPPED, MeshState, read_state, state_dir, state_path
from loom.runtime.summary import service_rows
from loom.runtime.supervisor import StopFlag, supervise

DEFAULT_DIR = Path("examples/bookstore")
DOWN_TIMEOUT = 60.0
DETACH_TIMEOUT = 90.0

out = Console()
err = Console(stderr=True)

DIR_ARGUMENT = typer.Argument(DEFAULT_DIR, help="The mesh folder (its YAML, and .loom/ for its state).")
MESH_OPTION = typer.Option(
    DEFAULT_DIR, "--mesh", envvar="LOOM_MESH", help="The folder of the running mesh (`loom up DIR`)."
)


def up(
    directory: Path = DIR_ARGUMENT,
    detach: bool = typer.Option(False, "--detach", "-d", help="Return once ready; stop it with `loom down`."),
    transparent: bool = typer.Option(
        False,
        "--transparent",
        help="Linux, root: each replica in its own network namespace, its traffic sent through its "
        "sidecar by iptables (no HTTP_PROXY); service names resolve to virtual IPs.",
    ),
) -> None:
    """Run the mesh a folder describes: its control plane, and every Workload's replicas, each app
    with its own sidecar (started first, SYNCED before the app starts). Ctrl-C stops it in order:
    apps, then their sidecars, then the control plane."""
    plan = _plan(directory)
    if transparent and (reason := unsupported_reason()) is not None:
        err.print(f"[red]error:[/] {reason}", highlight=False)
        raise typer.Exit(2)
    if detach:
        _up_detached(plan, transparent)
        return
    stop = StopFlag()
    stop.install()
    status = Status("starting the control plane", console=err)
    status.start()

    def on_change(state: MeshState) -> None:
        status.update(_progress(state))

    def on_ready(state: MeshState) -> None:
        status.stop()
        _print_ready(plan, state)
        out.print("[bold]Ctrl-C[/] stops the mesh (apps first, then their sidecars, then the control plane).")

    try:
        error = supervise(plan, stop, on_change, on_ready, transparent=transparent)
    except Interrupted:
        status.stop()
        err.print("stopped while starting; nothing is left running")
        raise typer.Exit(130) from None
    finally:
        status.stop()
    if error:
        err.print(f"[red]error:[/] {error}", highlight=False)
        raise typer.Exit(1)
    out.print("mesh stopped: every app, sidecar and the control plane have exited")


def _up_detached(plan: MeshPlan, transparent: bool) -> None:
    running = read_state(state_path(plan.directory))
    if (
        running is not None
        and running.status not in (STOPPED, FAILED)
        and children.alive(running.supervisor_pid)
    ):
        err.print(
            f"[red]error:[/] a mesh from {plan.directory} already runs "
            f"(PID {running.supervisor_pid}); `loom down` it first"
        )
        raise typer.Exit(1)
    logs = state_dir(plan.directory) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "supervisor.log").open("ab") as log:
        supervisor = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "loom.runtime.supervisor",
                *(["--transparent"] if transparent else []),
                str(plan.directory),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + DETACH_TIMEOUT
    with err.status("starting the control plane") as status:
        while True:
            state = read_state(state_path(plan.directory))
            mine = state is not None and state.supervisor_pid == supervisor.pid
            if mine and state is not None:
                status.update(_progress(state))
                if state.status == READY:
                    break
                if state.status == FAILED and supervisor.poll() is not None:
                    err.print(f"[red]error:[/] {state.error}", highlight=False)
                    raise typer.Exit(1)
            if supervisor.poll() is not None and not (mine and state is not None and state.status == FAILED):
                err.print(f"[red]error:[/] the mesh's supervisor exited (log: {logs / 'supervisor.log'})")
                raise typer.Exit(1)
            if time.monotonic() > deadline:
                err.print(f"[red]error:[/] not ready after {DETACH_TIMEOUT:.0f}s; stopping it (logs: {logs})")
                children.signal_group(supervisor.pid, 15)
                raise typer.Exit(1)
            time.sleep(0.05)
    _print_ready(plan, state)
    out.print(
        f"running in the background (supervisor PID {supervisor.pid}); "
        f"stop it with `loom down {_shown(plan.directory)}`"
    )


def down(directory: Path = DIR_ARGUMENT) -> None:
    """Stop a mesh started with `loom up --detach`, in order, and wait until every process is gone."""
    path = state_path(directory)
    state = read_state(path)
    if state is None:
        err.print(f"no mesh has run from {directory} ({path} not found)")
        raise typer.Exit(1)
    pids = state.pids()
    if not any(children.alive(pid) for pid in pids):
        _remove_network(state)
        out.print(f"the mesh from {directory} is not running")
        return
    with err.status(f"stopping the mesh from {directory}"):
        if children.alive(state.supervisor_pid):
            os.kill(state.supervisor_pid, 15)
        left = children.wait_gone(pids, DOWN_TIMEOUT)
        for pid in left:  # the supervisor is gone or stuck: end what it left, by PID
            children.signal_group(pid, 9)
        left = children.wait_gone(left, 5.0)
    _remove_network(state)
    if left:
        err.print(f"[red]error:[/] still running: PIDs {', '.join(map(str, left))}")
        raise typer.Exit(1)
    out.print(
        f"mesh stopped: all {len(pids)} processes (supervisor, control plane, "
        f"{len(state.replicas)} apps and their sidecars) have exited"
    )


def _remove_network(state: MeshState) -> None:
    """What transparent mode made on this host, if the supervisor did not get to remove it."""
    if state.network is None:
        return
    left = tear_down(state.network)
    if left:
        err.print(f"[red]error:[/] could not remove: {', '.join(left)}")
        raise typer.Exit(1)


def status(directory: Path = DIR_ARGUMENT) -> None:
    """What runs: each replica's address, ports, PIDs and its sidecar's sync status."""
    state = read_state(state_path(directory))
    if state is None:
        err.print(f"no mesh has run from {directory}")
        raise typer.Exit(1)
    running = children.alive(state.supervisor_pid)
    synced: dict[tuple[str, str], str] = {}
    if running and state.control_plane_url:
        try:
            synced = PlaneClient(state.control_plane_url, Path(state.control_plane_state_dir)).proxy_status()
        except PlaneError:
            pass
    shown = state.status if running else f"not running (last: {state.status})"
    out.print(f"mesh [bold]{state.name}[/] from {state.directory}: {shown}", highlight=False)
    if running:
        out.print(
            f"control plane {state.control_plane_url} (PID {state.control_plane_pid}); "
            f"logs in {state.logs_dir}"
        )
    table = Table(
        "NAMESPACE",
        "REPLICA",
        "ADDRESS",
        "APP PORT",
        "SIDECAR IN/OUT",
        "APP PID",
        "SIDECAR PID",
        "PHASE",
        "SYNC",
    )
    for r in state.replicas:
        table.add_row(
            r.namespace,
            r.name,
            r.address,
            str(r.app_port or "-"),
            f"{r.inbound_port or '-'}/{r.outbound_port}",
            _pid(r.app_pid),
            _pid(r.sidecar_pid),
            r.phase,
            synced.get((r.namespace, r.name), "-"),
        )
    out.print(table)
    if state.error:
        err.print(f"[red]error:[/] {state.error}", highlight=False)
    if not running:
        raise typer.Exit(3)


def run(
    command: list[str] = typer.Argument(..., metavar="-- CMD...", help="The command to run in the mesh."),
    name: str = typer.Option(..., "--name", help="Its workload name (as `loom proxy-status` shows it)."),
    namespace: str = typer.Option("default", "--namespace", "-n"),
    service_account: str = typer.Option("default", "--service-account"),
    service: str | None = typer.Option(
        None, "--service", help="Label it app=SVC, so a Service selecting it routes here."
    ),
    port: int = typer.Option(0, "--port", help="The port the command listens on (with --service)."),
    label: list[str] = typer.Option([], "--label", help="KEY=VALUE, repeatable."),
    mesh: Path = MESH_OPTION,
) -> None:
    """Join a command to the running mesh with its own sidecar, e.g.
    `loom run --name shell -- curl -s http://catalog/books`; exits with the command's exit code."""
    state = read_state(state_path(mesh))
    if state is None or state.status != READY or not children.alive(state.supervisor_pid):
        err.print(
            f"[red]error:[/] no mesh runs from {mesh}: start it with `loom up {mesh}` (or give --mesh DIR)"
        )
        raise typer.Exit(2)
    labels = dict(item.split("=", 1) for item in label if "=" in item)
    if service:
        labels.setdefault("app", service)
    request = JoinRequest(name, namespace, service_account, command, labels, port)
    say = (lambda text: err.print(text, highlight=False)) if sys.stderr.isatty() else (lambda text: None)
    try:
        code = run_joined(state, request, say)
    except JoinFailed as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def _plan(directory: Path) -> MeshPlan:
    try:
        return read_plan(directory)
    except PlanError as exc:
        for problem in exc.problems:
            err.print(str(problem), highlight=False)
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None


def _progress(state: MeshState) -> str:
    if not state.control_plane_url:
        return "starting the control plane"
    total = len(state.replicas)
    synced = sum(r.phase in ("synced", "app", "ready") for r in state.replicas)
    ready = sum(r.phase == "ready" for r in state.replicas)
    if state.status == "stopping":
        return "stopping: apps first, then their sidecars, then the control plane"
    return f"sidecars SYNCED {synced}/{total} · apps ready {ready}/{total}"


def _print_ready(plan: MeshPlan, state: MeshState) -> None:
    table = Table("NAMESPACE", "SERVICE", "PORTS", "WORKLOADS", "ENDPOINTS", "MTLS", title="services")
    for row in service_rows(plan.resources, state):
        table.add_row(row.namespace, row.service, row.ports, row.workloads, str(row.endpoints), row.mtls)
    out.print(table)
    where = _shown(plan.directory)
    access = f"--control-plane {state.control_plane_url} --state-dir {state.control_plane_state_dir}"
    out.print(
        f"[green]mesh ready[/] in {state.ready_seconds:.1f}s: {len(state.replicas)} replicas, each with its "
        f"sidecar SYNCED; control plane {state.control_plane_url}",
        highlight=False,
    )
    out.print(f"logs: {state.logs_dir}", highlight=False)
    out.print("next:", highlight=False)
    if state.dashboard_url:
        out.print(f"  dashboard: {state.dashboard_url}", highlight=False)
    out.print(f"  loom status {where}", highlight=False)
    out.print(f"  loom proxy-status {access}", highlight=False)
    out.print(f"  loom explain http://SERVICE/ --from NAMESPACE/REPLICA {access}", highlight=False)
    out.print(f"  loom stat svc -n NAMESPACE {access}", highlight=False)
    out.print(f"  loom tap svc/SERVICE -n NAMESPACE --max 10 {access}", highlight=False)
    out.print(
        f"  loom run --mesh {where} --name shell -n NAMESPACE -- curl -s http://SERVICE/", highlight=False
    )
    out.print(f"  edit a YAML file in {where}: the running mesh changes within a second", highlight=False)


def _shown(directory: Path) -> str:
    try:
        return str(directory.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(directory)


def _pid(pid: int) -> str:
    if not pid:
        return "-"
    return str(pid) if children.alive(pid) else f"{pid} (exited)"
