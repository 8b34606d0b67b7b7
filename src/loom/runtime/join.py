"""``loom run``: one command joined to a running local mesh with its own sidecar.

The sidecar starts first (join token minted with the mesh's operator token) and the command only
once the control plane shows the sidecar SYNCED; the command gets the env contract (HTTP_PROXY →
its sidecar); when the command ends its sidecar is stopped, and ``loom run`` exits with the
command's exit code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from loom.runtime import children
from loom.runtime.addresses import free_port, pick_address
from loom.runtime.appenv import app_env
from loom.runtime.mesh import POLL_SECONDS, SIDECAR_GRACE
from loom.runtime.plane_client import PlaneClient, PlaneError
from loom.runtime.sidecar import SidecarArgs, read_ready, sidecar_argv
from loom.runtime.state import MeshState

SYNC_TIMEOUT = 30.0
COMMAND_NOT_FOUND = 127


class JoinFailed(Exception):
    """The sidecar did not come up; the command was not started."""


@dataclass(frozen=True)
class JoinRequest:
    name: str
    namespace: str
    service_account: str
    command: Sequence[str]
    labels: Mapping[str, str] = field(default_factory=dict)
    port: int = 0


def run_joined(mesh: MeshState, request: JoinRequest, say: Callable[[str], None] = lambda _: None) -> int:
    plane = PlaneClient(mesh.control_plane_url, Path(mesh.control_plane_state_dir))
    try:
        token = plane.mint_token(request.namespace, request.service_account, ttl="1h")
    except (PlaneError, OSError) as exc:
        raise JoinFailed(f"cannot get a join token from the mesh's control plane: {exc}") from None
    if mesh.network is not None:
        # A transparent mesh: this host's address on the mesh's bridge, which every namespace reaches.
        address = mesh.network.gateway
    else:
        address = pick_address(request.port, [replica.address for replica in mesh.replicas])
    outbound = free_port()
    tag = f"run.{request.namespace}.{request.name}.{os.getpid()}"
    logs = Path(mesh.logs_dir)
    ready = logs.parent / "run" / f"{tag}.sidecar.json"
    log = logs / f"{tag}.sidecar.log"
    args = SidecarArgs(
        control_plane=mesh.control_plane_url,
        ca_file=Path(mesh.control_plane_state_dir) / "root-cert.pem",
        workload=request.name,
        namespace=request.namespace,
        service_account=request.service_account,
        labels=request.labels,
        address=address,
        outbound_port=outbound,
        app_port=request.port,
        inbound_port=free_port(address) if request.port else 0,
        ready_file=ready,
    )
    base = {k: v for k, v in os.environ.items() if k not in ("HTTP_PROXY", "http_proxy")}
    sidecar = children.spawn(sidecar_argv(args), log, env={**base, "LOOM_JOIN_TOKEN": token})
    try:
        _wait_synced(plane, sidecar, request, ready, log)
        say(f"{request.namespace}/{request.name}: sidecar SYNCED at {address} (log: {log})")
        env = app_env(
            address=address,
            port=request.port,
            outbound_port=outbound,
            workload=request.name,
            namespace=request.namespace,
            extra={},
            base=base,
        )
        return _run_command(request.command, env)
    finally:
        children.terminate(sidecar, SIDECAR_GRACE)
        ready.unlink(missing_ok=True)


def _wait_synced(
    plane: PlaneClient, sidecar: subprocess.Popen[bytes], request: JoinRequest, ready: Path, log: Path
) -> None:
    deadline = time.monotonic() + SYNC_TIMEOUT
    key = (request.namespace, request.name)
    while True:
        if sidecar.poll() is not None:
            raise JoinFailed(f"the sidecar exited with code {sidecar.returncode} (log: {log})")
        if read_ready(ready) is not None:
            try:
                if plane.proxy_status().get(key) == "SYNCED":
                    return
            except PlaneError:
                pass
        if time.monotonic() > deadline:
            raise JoinFailed(f"the sidecar was not SYNCED within {SYNC_TIMEOUT:.0f}s (log: {log})")
        time.sleep(POLL_SECONDS)


def _run_command(command: Sequence[str], env: dict[str, str]) -> int:
    """Run the command in our process group (a Ctrl-C reaches it); SIGTERM to us is passed on."""
    try:
        process = subprocess.Popen(list(command), env=env)
    except OSError as exc:
        print(f"loom run: cannot start {command[0]!r}: {exc.strerror or exc}", file=sys.stderr)
        return COMMAND_NOT_FOUND
    previous_term = signal.signal(signal.SIGTERM, lambda signum, frame: process.send_signal(signal.SIGTERM))
    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal sends it to the command
    try:
        return process.wait()
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)
