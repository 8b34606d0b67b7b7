"""``loom``: the command line. Thin: parse arguments, call the packages, print."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import typer
from rich.console import Console

from loom import __version__
from loom.snapshot import SnapshotError, load_snapshot

app = typer.Typer(
    name="loom",
    help="Loom service mesh: sidecar proxy, control plane, identities and golden metrics.",
    no_args_is_help=True,
    add_completion=False,
)
err = Console(stderr=True)


@app.command()
def version() -> None:
    """Print Loom's version."""
    typer.echo(__version__)


@app.command()
def proxy(
    config: Path = typer.Option(..., "--config", "-c", help="Snapshot file (YAML or JSON) to serve."),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
    check: bool = typer.Option(False, "--check", help="Validate the snapshot and exit."),
    ready_file: Path | None = typer.Option(
        None, "--ready-file", help="Write the bound ports here (JSON) once serving."
    ),
) -> None:
    """Run one sidecar proxy from a snapshot file (reloads on SIGHUP or when the file changes)."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        snapshot = load_snapshot(config)
    except FileNotFoundError:
        err.print(f"[red]error:[/] no such snapshot file: {config}")
        raise typer.Exit(2) from None
    except SnapshotError as exc:
        err.print(f"[red]error:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    from loom.proxy.router import RouteCompileError, compile_route_config

    try:
        for route_config in snapshot.route_configs:
            compile_route_config(route_config, snapshot.node)
    except RouteCompileError as exc:
        err.print(f"[red]error:[/] invalid snapshot {config}: {exc}", highlight=False)
        raise typer.Exit(2) from None
    if check:
        typer.echo(f"{config}: snapshot version {snapshot.version} is valid")
        return
    # The sidecar runs as its own lean process image (same PID): see loom/proxy/__main__.py.
    argv = [sys.executable, "-m", "loom.proxy", "--config", str(config), "--log-level", log_level]
    if ready_file is not None:
        argv += ["--ready-file", str(ready_file)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)


if __name__ == "__main__":
    app()
