"""The state file of a local mesh, ``<DIR>/.loom/mesh.json``: who supervises it, where the control
plane listens, and every process with its PID, ports and log. ``loom up`` writes it (rewritten
atomically at every phase change); ``loom down``, ``loom status`` and ``loom run`` read it.

The same ``<DIR>/.loom/`` holds the control plane's state (``controlplane/``: CA, operator token,
trust bundle), the ready files (``run/``) and every process's log (``logs/``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from loom.runtime.network import NetworkState

STATE_FOLDER = ".loom"
STATE_FILE = "mesh.json"

STARTING, READY, STOPPING, STOPPED, FAILED = "starting", "ready", "stopping", "stopped", "failed"


def state_dir(directory: Path) -> Path:
    return directory.resolve() / STATE_FOLDER


def state_path(directory: Path) -> Path:
    return state_dir(directory) / STATE_FILE


@dataclass
class ReplicaState:
    name: str
    workload: str
    namespace: str
    service_account: str
    labels: dict[str, str]
    address: str
    app_port: int
    outbound_port: int
    inbound_port: int
    phase: str = "pending"  # pending, sidecar, synced, app, ready, stopped, failed
    sidecar_pid: int = 0
    app_pid: int = 0
    admin_port: int = 0
    sidecar_log: str = ""
    app_log: str = ""
    netns: str = ""
    """Transparent mode: the replica's network namespace."""


@dataclass
class MeshState:
    name: str
    directory: str
    supervisor_pid: int
    status: str = STARTING
    error: str = ""
    control_plane_url: str = ""
    control_plane_pid: int = 0
    control_plane_state_dir: str = ""
    control_plane_log: str = ""
    dashboard_url: str = ""
    """The control plane's dashboard, ``http://127.0.0.1:PORT/`` (``loom dashboard``)."""
    logs_dir: str = ""
    started_at: float = 0.0
    ready_seconds: float = 0.0
    replicas: list[ReplicaState] = field(default_factory=list)
    transparent: bool = False
    network: NetworkState | None = None
    """Transparent mode: the namespaces, bridge and rules made on this host (removed on down)."""

    def pids(self) -> list[int]:
        """Every process recorded: supervisor, apps, sidecars, control plane."""
        found = [self.supervisor_pid, self.control_plane_pid]
        for replica in self.replicas:
            found += [replica.app_pid, replica.sidecar_pid]
        return [pid for pid in found if pid > 0]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> MeshState:
        data: dict[str, Any] = json.loads(text)
        names = {f.name for f in fields(ReplicaState)}
        replicas = [
            ReplicaState(**{k: v for k, v in r.items() if k in names}) for r in data.pop("replicas", [])
        ]
        network = data.pop("network", None)
        known = {f.name for f in fields(cls)}
        return cls(
            **{k: v for k, v in data.items() if k in known},
            replicas=replicas,
            network=NetworkState(**network) if isinstance(network, dict) else None,
        )


def write_state(path: Path, state: MeshState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(state.to_json())
    tmp.replace(path)


def read_state(path: Path) -> MeshState | None:
    try:
        return MeshState.from_json(path.read_text())
    except (OSError, ValueError, TypeError):
        return None
