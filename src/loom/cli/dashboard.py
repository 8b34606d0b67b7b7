"""``loom dashboard [--mesh DIR]``: the running mesh's dashboard URL, opened in a browser."""

from __future__ import annotations

import webbrowser
from pathlib import Path

import typer
from rich.console import Console

from loom.runtime import children
from loom.runtime.state import READY, read_state, state_path

DEFAULT_DIR = Path("examples/bookstore")

err = Console(stderr=True)

MESH_OPTION = typer.Option(
    DEFAULT_DIR, "--mesh", envvar="LOOM_MESH", help="The folder of the running mesh (`loom up DIR`)."
)


def dashboard(
    mesh: Path = MESH_OPTION,
    no_open: bool = typer.Option(False, "--no-open", help="Print the URL only; do not open a browser."),
) -> None:
    """Print the running mesh's dashboard URL (http://127.0.0.1:PORT/, served by its control
    plane) and open it in a browser, if there is one."""
    state = read_state(state_path(mesh))
    if state is None or state.status != READY or not children.alive(state.supervisor_pid):
        err.print(
            f"[red]error:[/] no mesh runs from {mesh}: start it with `loom up {mesh}` (or give --mesh DIR)"
        )
        raise typer.Exit(2)
    if not state.dashboard_url:
        err.print(f"[red]error:[/] the mesh from {mesh} runs without a dashboard (started by an older Loom?)")
        raise typer.Exit(2)
    typer.echo(state.dashboard_url)
    if no_open:
        return
    try:
        opened = webbrowser.open(state.dashboard_url)
    except Exception:  # no usable browser is not an error: the URL is printed
        opened = False
    if not opened:
        err.print("no browser to open here: open the URL above in one", highlight=False)
