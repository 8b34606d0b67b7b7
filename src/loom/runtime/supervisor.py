"""The process that owns a local mesh: brings it up, keeps it, and on SIGTERM/SIGINT brings it
down in order. ``loom up`` runs it in its own process (foreground); ``loom up --detach`` starts
``python -m loom.runtime.supervisor DIR`` in a new session and returns once it reports ready."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from loom.runtime.mesh import Interrupted, LocalMesh, StartFailed
from loom.runtime.plan import MeshPlan, PlanError, read_plan
from loom.runtime.state import FAILED, MeshState, state_path, write_state

WATCH_SECONDS = 0.2


class StopFlag:
    """Set by SIGTERM/SIGINT (and SIGHUP: a closed terminal)."""

    def __init__(self) -> None:
        self.set = False

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.set = True

    def __call__(self) -> bool:
        return self.set


def supervise(
    plan: MeshPlan,
    stop: StopFlag,
    on_change: Callable[[MeshState], None] | None = None,
    on_ready: Callable[[MeshState], None] | None = None,
    transparent: bool = False,
) -> str:
    """Up, wait for ``stop``, down. The error that stopped it early ("" after a clean stop);
    raises ``Interrupted`` if stopped while starting (after bringing everything down)."""
    mesh = LocalMesh(plan, os.getpid(), on_change, stop, transparent=transparent)
    try:
        state = mesh.up()
    except Interrupted:
        mesh.down()
        raise
    except (StartFailed, OSError) as exc:
        mesh.down(failed=str(exc))
        return str(exc)
    except BaseException:
        mesh.down(failed="the supervisor failed")
        raise
    if on_ready is not None:
        on_ready(state)
    try:
        while not stop():
            mesh.note_exits()
            mesh.refresh_names()
            time.sleep(WATCH_SECONDS)
    finally:
        mesh.down()
    return ""


def main(argv: list[str]) -> int:
    """``python -m loom.runtime.supervisor [--transparent] DIR``."""
    transparent = "--transparent" in argv
    argv = [arg for arg in argv if arg != "--transparent"]
    directory = Path(argv[0]) if argv else Path("examples/bookstore")
    stop = StopFlag()
    stop.install()
    try:
        plan = read_plan(directory)
    except PlanError as exc:
        problems = "".join(f"\n  {problem}" for problem in exc.problems)
        state = MeshState(name=directory.name, directory=str(directory.resolve()), supervisor_pid=os.getpid())
        state.status, state.error = FAILED, f"{exc}{problems}"
        write_state(state_path(directory), state)
        print(state.error, file=sys.stderr)
        return 2
    try:
        error = supervise(plan, stop, transparent=transparent)
    except Interrupted:
        return 0
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
