"""``loom check``: the command. Thin: reach the control plane, run the checks, print them."""

from __future__ import annotations

import typer
from rich.console import Console

from loom.cli.connection import CONTROL_PLANE_OPTION, STATE_DIR_OPTION, ControlPlaneAccess


def check(
    control_plane: str = CONTROL_PLANE_OPTION,
    state_dir: str = STATE_DIR_OPTION,
    output: str = typer.Option("text", "-o", "--output", help="text (a line per check) or json."),
) -> None:
    """Check that the mesh is healthy, like `linkerd check`: ✔ passed, ‼ warning, ✖ failed.

    The checks: the trust bundle and its roots, the control plane (HTTPS verified by the bundle,
    its clock), every proxy SYNCED, every workload certificate valid and renewed on time. Under a
    warning or a failure: what is at fault and a hint. Exit 1 if any check failed, else 0 (warnings
    too)."""
    from loom.cli.check import render
    from loom.cli.check.probe import Probe
    from loom.cli.check.result import Outcome, Status
    from loom.cli.check.run import CHECKS, run_checks

    if output not in ("text", "json"):
        Console(stderr=True).print(f"[red]error:[/] --output must be text or json, not {output!r}")
        raise typer.Exit(2)
    probe = Probe(ControlPlaneAccess.of(control_plane, state_dir))
    console = Console(highlight=False, soft_wrap=True)
    outcomes: list[Outcome] = []
    category = ""
    for item in run_checks(probe):
        outcomes.append(item)
        if output == "text":
            if item.check.category != category:
                category = item.check.category
                if len(outcomes) > 1:
                    console.print()
                console.print(render.heading(category))
            console.print(render.outcome(item))
    stopped = len(outcomes) < len(CHECKS)
    if output == "json":
        typer.echo(render.as_json(outcomes, stopped))
    else:
        console.print()
        console.print(render.summary(outcomes, stopped))
    raise typer.Exit(1 if any(o.result.status is Status.FAIL for o in outcomes) else 0)
