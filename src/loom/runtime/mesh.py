"""Bringing a local mesh up and down, in the order Istio and Linkerd users ask for.

Up: the control plane; then every sidecar at once; each app only once its sidecar has its
certificate and snapshot (ready file written) and the control plane shows it SYNCED — so the
app's first call already goes through a configured sidecar; then each app until it is ready.

Down: every app gets SIGTERM first while its sidecar keeps serving (outbound calls made while
the app winds down still work); once an app has exited (or was killed after ``APP_GRACE``), its
sidecar gets SIGTERM and drains; the control plane stops last.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from loom.runtime import children
from loom.runtime.addresses import free_port, pick_address
from loom.runtime.appenv import app_env
from loom.runtime.names import ServiceNames
from loom.runtime.network import (
    INBOUND_PORT,
    OUTBOUND_PORT,
    SERVICE_CIDR,
    SIDECAR_GID,
    NetworkError,
    NetworkState,
    call_inside,
    in_namespace,
    make_bridge,
    make_namespace,
    replica_address,
    tear_down,
    unsupported_reason,
    write_hosts,
)
from loom.runtime.plan import MeshPlan
from loom.runtime.plane_client import PlaneClient, PlaneError
from loom.runtime.sidecar import SidecarArgs, read_ready, sidecar_argv
from loom.runtime.state import (
    FAILED,
    READY,
    STOPPED,
    STOPPING,
    MeshState,
    ReplicaState,
    read_state,
    state_dir,
    state_path,
    write_state,
)

START_TIMEOUT = 60.0
APP_GRACE = 10.0
SIDECAR_GRACE = 15.0
CONTROL_PLANE_GRACE = 10.0
POLL_SECONDS = 0.05


class StartFailed(Exception):
    """The mesh did not come up; the message says which process and where its log is."""


class Interrupted(Exception):
    """Asked to stop (SIGINT/SIGTERM) while starting."""


class LocalMesh:
    def __init__(
        self,
        plan: MeshPlan,
        supervisor_pid: int,
        on_change: Callable[[MeshState], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        transparent: bool = False,
    ) -> None:
        self.plan = plan
        self.root = state_dir(plan.directory)
        self.logs = self.root / "logs"
        self.run_dir = self.root / "run"
        self.path = state_path(plan.directory)
        self.on_change = on_change
        self.should_stop = should_stop
        self.state = MeshState(
            name=plan.name,
            directory=str(plan.directory),
            supervisor_pid=supervisor_pid,
            control_plane_state_dir=str(self.root / "controlplane"),
            logs_dir=str(self.logs),
            started_at=time.time(),
            transparent=transparent,
        )
        self.plane: subprocess.Popen[bytes] | None = None
        self.sidecars: dict[str, subprocess.Popen[bytes]] = {}
        self.apps: dict[str, subprocess.Popen[bytes]] = {}
        self._specs = {replica.name: replica for replica in plan.replicas}
        self.names = ServiceNames(plan.directory, SERVICE_CIDR) if transparent else None

    # -- recording --------------------------------------------------------------------------

    def save(self) -> None:
        write_state(self.path, self.state)
        if self.on_change is not None:
            self.on_change(self.state)

    # -- up -----------------------------------------------------------------------------------

    def up(self, timeout: float = START_TIMEOUT) -> MeshState:
        """Start everything and wait until every sidecar is SYNCED and every app ready."""
        running = read_state(self.path)
        if running is not None and running.status != STOPPED and children.alive(running.supervisor_pid):
            raise StartFailed(
                f"a mesh from {self.plan.directory} already runs (supervisor PID {running.supervisor_pid}): "
                "stop it with `loom down` first"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.run_dir.glob("*.json"):
            stale.unlink(missing_ok=True)
        deadline = time.monotonic() + timeout
        self.save()
        if self.state.transparent:
            self._make_network()
        client = self._start_control_plane(deadline)
        self._assign()
        tokens: dict[tuple[str, str], str] = {}
        for replica in self.plan.replicas:
            key = (replica.namespace, replica.service_account)
            if key not in tokens:
                tokens[key] = self._call(lambda k=key: client.mint_token(*k))
        for replica_state in self.state.replicas:
            self._start_sidecar(
                replica_state, tokens[(replica_state.namespace, replica_state.service_account)]
            )
        self.save()
        self._wait_ready(client, deadline)
        self.state.status = READY
        self.state.ready_seconds = round(time.time() - self.state.started_at, 3)
        self.save()
        return self.state

    def _call(self, action: Callable[[], str]) -> str:
        try:
            return action()
        except PlaneError as exc:
            raise StartFailed(
                f"the control plane refused: {exc} (log: {self.state.control_plane_log})"
            ) from None

    def _make_network(self) -> None:
        reason = unsupported_reason()
        if reason is not None:
            raise StartFailed(reason)
        self.state.network = NetworkState(tag=os.urandom(3).hex())
        self.save()
        try:
            make_bridge(self.state.network)
        except NetworkError as exc:
            raise StartFailed(f"cannot make the mesh's network: {exc}") from None
        finally:
            self.save()

    @property
    def _plane_host(self) -> str:
        """Where the control plane listens: loopback, or the bridge, for the namespaces to reach."""
        network = self.state.network
        return network.gateway if network is not None else "127.0.0.1"

    def _start_control_plane(self, deadline: float) -> PlaneClient:
        ready = self.run_dir / "controlplane.json"
        log = self.logs / "controlplane.log"
        argv = [
            sys.executable,
            "-m",
            "loom.cli.main",
            "controlplane",
            "--config-dir",
            str(self.plan.directory),
        ]
        argv += ["--state-dir", self.state.control_plane_state_dir, "--port", "0", "--ready-file", str(ready)]
        argv += ["--address", self._plane_host, "--dashboard-port", "0"]
        argv += ["--prometheus-sd-file", str(self.root / "prometheus" / "targets.json")]
        if self.state.transparent:
            argv += ["--service-cidr", SERVICE_CIDR]
        self.plane = children.spawn(argv, log)
        self.state.control_plane_pid = self.plane.pid
        self.state.control_plane_log = str(log)
        self.save()
        while (info := read_ready(ready)) is None:
            self._check_alive(self.plane, "the control plane", log)
            self._tick(deadline, "the control plane to listen")
        self.state.control_plane_url = f"https://{self._plane_host}:{info['port']}"
        if info.get("dashboard_port"):
            self.state.dashboard_url = f"http://127.0.0.1:{info['dashboard_port']}/"
        self.save()
        return PlaneClient(self.state.control_plane_url, Path(self.state.control_plane_state_dir))

    def _assign(self) -> None:
        if self.state.network is not None:
            self._assign_namespaces(self.state.network)
            return
        taken: list[str] = []
        for replica in self.plan.replicas:
            address = pick_address(replica.port, taken)
            taken.append(address)
            self.state.replicas.append(
                ReplicaState(
                    name=replica.name,
                    workload=replica.workload,
                    namespace=replica.namespace,
                    service_account=replica.service_account,
                    labels=dict(replica.labels),
                    address=address,
                    app_port=replica.port,
                    outbound_port=free_port(),
                    inbound_port=free_port(address) if replica.port else 0,
                    sidecar_log=str(self.logs / f"{replica.namespace}.{replica.name}.sidecar.log"),
                    app_log=str(self.logs / f"{replica.namespace}.{replica.name}.log"),
                )
            )

    def _assign_namespaces(self, network: NetworkState) -> None:
        """Transparent mode: each replica a namespace of its own on the bridge, the same sidecar
        ports in every one."""
        assert self.names is not None
        for index, replica in enumerate(self.plan.replicas):
            address = replica_address(network, index)
            state = ReplicaState(
                name=replica.name,
                workload=replica.workload,
                namespace=replica.namespace,
                service_account=replica.service_account,
                labels=dict(replica.labels),
                address=address,
                app_port=replica.port,
                outbound_port=OUTBOUND_PORT,
                inbound_port=INBOUND_PORT if replica.port else 0,
                sidecar_log=str(self.logs / f"{replica.namespace}.{replica.name}.sidecar.log"),
                app_log=str(self.logs / f"{replica.namespace}.{replica.name}.log"),
            )
            self.state.replicas.append(state)
            try:
                state.netns = make_namespace(
                    network,
                    index,
                    address,
                    app_port=replica.port,
                    hosts=self.names.hosts(replica.namespace, address, replica.name),
                )
            except NetworkError as exc:
                raise StartFailed(f"cannot make the network of {replica.name}: {exc}") from None
            finally:
                self.save()

    def refresh_names(self) -> None:
        """Transparent mode: a Service added to (or removed from) the folder's YAML resolves in
        every namespace's hosts file."""
        if self.names is None or not self.names.changed():
            return
        for replica in self.state.replicas:
            if replica.netns:
                write_hosts(replica.netns, self.names.hosts(replica.namespace, replica.address, replica.name))

    def _ready_file(self, replica: ReplicaState) -> Path:
        return self.run_dir / f"{replica.namespace}.{replica.name}.sidecar.json"

    def _start_sidecar(self, replica: ReplicaState, token: str) -> None:
        args = SidecarArgs(
            control_plane=self.state.control_plane_url,
            ca_file=Path(self.state.control_plane_state_dir) / "root-cert.pem",
            workload=replica.name,
            namespace=replica.namespace,
            service_account=replica.service_account,
            labels=replica.labels,
            address=replica.address,
            outbound_port=replica.outbound_port,
            app_port=replica.app_port,
            inbound_port=replica.inbound_port,
            ready_file=self._ready_file(replica),
            transparent=bool(replica.netns),
            readiness_path=self._specs[replica.name].readiness_path,
        )
        env = {**_base_env(), "LOOM_JOIN_TOKEN": token}
        argv = sidecar_argv(args)
        if replica.netns:
            # In the app's namespace, as the group whose connections iptables lets out uncaptured.
            argv = in_namespace(replica.netns, argv)
        group = SIDECAR_GID if replica.netns else None
        process = children.spawn(argv, Path(replica.sidecar_log), env=env, group=group)
        self.sidecars[replica.name] = process
        replica.sidecar_pid = process.pid
        replica.phase = "sidecar"

    def _start_app(self, replica: ReplicaState) -> None:
        spec = self._specs[replica.name]
        env = app_env(
            address=replica.address,
            port=replica.app_port,
            outbound_port=replica.outbound_port,
            workload=replica.name,
            namespace=replica.namespace,
            extra=spec.env,
            base=_base_env(),
            transparent=bool(replica.netns),
        )
        argv = in_namespace(replica.netns, spec.command) if replica.netns else list(spec.command)
        try:
            process = children.spawn(argv, Path(replica.app_log), env=env, cwd=spec.working_dir)
        except OSError as exc:
            raise StartFailed(
                f"{replica.namespace}/{replica.name}: cannot start {spec.command[0]!r}: {exc}"
            ) from None
        self.apps[replica.name] = process
        replica.app_pid = process.pid
        replica.phase = "app"

    def _wait_ready(self, client: PlaneClient, deadline: float) -> None:
        while True:
            changed = False
            waiting_sync = []
            for replica in self.state.replicas:
                sidecar = self.sidecars[replica.name]
                self._check_alive(sidecar, f"the sidecar of {replica.name}", Path(replica.sidecar_log))
                if replica.phase == "sidecar":
                    info = read_ready(self._ready_file(replica))
                    if info is not None:
                        replica.admin_port = int(info.get("admin_port", 0))
                        waiting_sync.append(replica)
                elif replica.phase == "app":
                    self._check_alive(
                        self.apps[replica.name], f"the app {replica.name}", Path(replica.app_log)
                    )
                    if self._app_ready(replica):
                        replica.phase = "ready"
                        changed = True
            if waiting_sync:
                statuses = self._statuses(client)
                servers_up: bool | None = None
                for replica in waiting_sync:
                    if statuses.get((replica.namespace, replica.name)) != "SYNCED":
                        continue
                    if not replica.app_port:
                        # A pure client (the demo's traffic generator) starts last, once every
                        # app it may call answers through the mesh: its first calls succeed.
                        if servers_up is None:
                            servers_up = self._servers_up(client)
                        if not servers_up:
                            continue
                    replica.phase = "synced"
                    self._start_app(replica)
                    changed = True
            if changed:
                self.save()
            if all(replica.phase == "ready" for replica in self.state.replicas) and self._routable(client):
                return
            pending = [r.name for r in self.state.replicas if r.phase != "ready"]
            self._tick(deadline, f"{', '.join(pending)} to be ready")

    def _servers_up(self, client: PlaneClient) -> bool:
        """Every replica with a port is ready and every peer routes to it."""
        servers = [replica for replica in self.state.replicas if replica.app_port]
        if any(replica.phase != "ready" for replica in servers):
            return False
        try:
            routable = client.routable()
        except PlaneError:
            return False
        return all((replica.namespace, replica.name) in routable for replica in servers)

    def _routable(self, client: PlaneClient) -> bool:
        """Every replica SYNCED and reported ready by its sidecar, in one reading: each peer has
        acknowledged the snapshot that routes to every app."""
        try:
            routable = client.routable()
        except PlaneError:
            return False
        return all((replica.namespace, replica.name) in routable for replica in self.state.replicas)

    def _statuses(self, client: PlaneClient) -> dict[tuple[str, str], str]:
        try:
            return client.proxy_status()
        except PlaneError:
            return {}

    def _app_ready(self, replica: ReplicaState) -> bool:
        if not replica.app_port:
            return True
        if replica.netns:
            # From inside: from outside, the app's port leads to its sidecar.
            return call_inside(replica.netns, lambda: self._probe(replica))
        return self._probe(replica)

    def _probe(self, replica: ReplicaState) -> bool:
        path = self._specs[replica.name].readiness_path
        if path is None:
            return _connects(replica.address, replica.app_port)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"http://{replica.address}:{replica.app_port}{path}", timeout=1.0) as answer:
                return 200 <= answer.status < 300
        except OSError:
            return False

    def _check_alive(self, process: subprocess.Popen[bytes] | None, what: str, log: Path) -> None:
        if process is not None and process.poll() is not None:
            tail = _tail(log)
            raise StartFailed(f"{what} exited with code {process.returncode} (log: {log}){tail}")

    def _tick(self, deadline: float, what: str) -> None:
        if self.should_stop():
            raise Interrupted()
        if time.monotonic() > deadline:
            raise StartFailed(f"timed out waiting for {what} (logs: {self.logs})")
        time.sleep(POLL_SECONDS)

    # -- watching -----------------------------------------------------------------------------

    def note_exits(self) -> None:
        """Record an app or sidecar that exited on its own (``status`` shows it)."""
        changed = False
        for replica in self.state.replicas:
            app, sidecar = self.apps.get(replica.name), self.sidecars.get(replica.name)
            if replica.phase == "ready" and (
                (app is not None and app.poll() is not None)
                or (sidecar is not None and sidecar.poll() is not None)
            ):
                replica.phase = "exited"
                changed = True
        if changed:
            self.save()

    # -- down ---------------------------------------------------------------------------------

    def down(self, failed: str = "") -> None:
        """Apps first (SIGTERM, bounded wait), each sidecar once its app is gone, the control plane last."""
        self.state.status = STOPPING
        self.save()
        for process in self.apps.values():
            if process.poll() is None:
                children.signal_group(process.pid, signal.SIGTERM)
        app_deadline = time.monotonic() + APP_GRACE
        pending = set(self.sidecars)
        while pending:
            for name in sorted(pending):
                app = self.apps.get(name)
                if app is not None and app.poll() is None:
                    if time.monotonic() < app_deadline:
                        continue
                    children.terminate(app, 0)
                if app is not None:
                    children.signal_group(app.pid, signal.SIGKILL)  # what the app left behind
                sidecar = self.sidecars[name]
                if sidecar.poll() is None:
                    children.signal_group(sidecar.pid, signal.SIGTERM)
                pending.discard(name)
            if pending:
                time.sleep(POLL_SECONDS)
        sidecar_deadline = time.monotonic() + SIDECAR_GRACE
        for sidecar in self.sidecars.values():
            children.terminate(sidecar, max(0.0, sidecar_deadline - time.monotonic()))
        children.terminate(self.plane, CONTROL_PLANE_GRACE)
        if self.state.network is not None:
            left = tear_down(self.state.network)
            if left:
                failed = "; ".join(filter(None, [failed, f"could not remove: {', '.join(left)}"]))
        for replica in self.state.replicas:
            replica.phase = "stopped"
        self.state.status = FAILED if failed else STOPPED
        self.state.error = failed
        self.save()


def _connects(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def _base_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("HTTP_PROXY", "http_proxy", "LOOM_JOIN_TOKEN", "LOOM_OPERATOR_TOKEN"):
        env.pop(name, None)
    return env


def _tail(log: Path, lines: int = 8) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return ("\n  " + "\n  ".join(text)) if text else ""
