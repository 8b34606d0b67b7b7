"""A control plane with connected sidecars, for end-to-end tests: ``loom`` processes started with a
ready file, free ports, the catalog resources, the sidecars' view through ``/v1/proxy-status``.

```python
@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[Mesh]:
    async with running_mesh(tmp_path, config_dir_plane(catalog_yaml)) as running:
        yield running  # running.url, running.client, running.backends, running.sidecars, ...
```

Every ``loom`` process a mesh starts is stopped when it closes: the sidecars with SIGTERM (each
must exit 0), the rest (a control plane, one a test started in its place) killed.

The control plane serves HTTPS with its state directory in the test's folder (``mesh.state_dir``);
a connected sidecar is started with ``--ca-file`` (its trust bundle) and a join token minted with
the operator token for its namespace and service account (``tests/support/controlplane.py``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.backend import Backend
from tests.support.controlplane import get_json, plane_at, register_plane
from tests.support.proxy import STARTUP_TIMEOUT, ChildProcess, wait_until

APP_HOSTS = {"v1": "127.0.0.2", "v2": "127.0.0.3"}
"""The catalog's versions, each on its own loopback address."""


# ports ------------------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def shared_free_port(hosts: list[str]) -> int:
    """A port free on every one of ``hosts`` (each workload has its own loopback address)."""
    for _ in range(50):
        port = free_port(hosts[0])
        try:
            for host in hosts[1:]:
                with socket.socket() as sock:
                    sock.bind((host, port))
        except OSError:
            continue
        return port
    raise AssertionError("no port free on all hosts")


# resources --------------------------------------------------------------------------------------


def service(app_port: int = 9080, name: str = "catalog") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": app_port}]},
    }


def destination_rule() -> dict[str, Any]:
    """The catalog's subsets v1 and v2, by the label ``version``."""
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "DestinationRule",
        "metadata": {"name": "catalog", "namespace": "default"},
        "spec": {
            "host": "catalog",
            "subsets": [
                {"name": "v1", "labels": {"version": "v1"}},
                {"name": "v2", "labels": {"version": "v2"}},
            ],
        },
    }


def virtual_service(v1_weight: int) -> dict[str, Any]:
    """The catalog split: ``v1_weight`` to v1, the rest to v2."""
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "catalog", "namespace": "default"},
        "spec": {
            "hosts": ["catalog"],
            "http": [
                {
                    "route": [
                        {"destination": {"host": "catalog", "subset": "v1"}, "weight": v1_weight},
                        {"destination": {"host": "catalog", "subset": "v2"}, "weight": 100 - v1_weight},
                    ]
                }
            ],
        },
    }


# processes --------------------------------------------------------------------------------------


class LoomProcess(ChildProcess):
    """One ``python -m loom.cli.main ARGS`` process (a control plane or a connected sidecar), its
    output in ``NAME.log`` under ``workdir``; ``stop()`` (SIGTERM, up to 20 s) or ``kill()`` it.

    A connected sidecar (``proxy --control-plane URL``) of a control plane the harness started gets
    its ``--ca-file`` and, unless ``env`` has one, a join token for its namespace and service
    account."""

    def __init__(self, workdir: Path, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        self.name = name
        self.ready = workdir / f"{name}.ready.json"
        self.log_path = workdir / f"{name}.log"
        self.args = args
        self.env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def _prepare(self) -> list[str]:
        args = list(self.args)
        if args[:1] != ["proxy"] or "--control-plane" not in args:
            return args
        plane = plane_at(args[args.index("--control-plane") + 1])
        if "--ca-file" not in args:
            args += ["--ca-file", str(plane.bundle)]
        if "LOOM_JOIN_TOKEN" not in self.env and "--join-token-file" not in args:

            def option(name: str) -> str:
                return args[args.index(name) + 1] if name in args else "default"

            token = await plane.mint_token(option("--namespace"), option("--service-account"))
            self.env["LOOM_JOIN_TOKEN"] = token
        return args

    async def _spawn(self, *extra: str) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "loom.cli.main", *(await self._prepare()), *extra]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
            )
        return self.process

    async def start(self) -> dict[str, Any]:
        """Start with ``--ready-file`` and wait until it is written; returns what it holds."""
        self.ready.unlink(missing_ok=True)
        process = await self._spawn("--ready-file", str(self.ready))
        await wait_until(
            lambda: self.ready.exists() or process.poll() is not None, STARTUP_TIMEOUT, self.name
        )
        assert process.poll() is None, self.log()
        return json.loads(self.ready.read_text())

    async def run_to_exit(self, timeout: float = STARTUP_TIMEOUT) -> int:
        """Start, and wait for the process to exit by itself (a refused start); its exit code."""
        process = await self._spawn()
        try:
            await wait_until(lambda: process.poll() is not None, timeout, f"{self.name} to exit")
        finally:
            self.kill()
        return process.returncode


async def stop_all(processes: Iterable[LoomProcess]) -> None:
    """Stop each process, asserting it exits 0; after a failure, the rest are killed."""
    processes = list(processes)
    try:
        for process in processes:
            assert await process.stop() == 0, process.log()
    finally:
        for process in processes:
            process.kill()


def sidecar_args(
    url: str,
    workload: str,
    labels: dict[str, str],
    *,
    outbound: int,
    address: str | None = None,
    service_account: str | None = None,
    inbound: str | None = None,
) -> list[str]:
    """``proxy --control-plane URL ...``: one workload's sidecar (``--inbound APP_PORT:PORT``)."""
    args = ["proxy", "--control-plane", url, "--workload", workload, "--outbound-port", str(outbound)]
    for name, value in labels.items():
        args += ["--label", f"{name}={value}"]
    if address is not None:
        args += ["--address", address]
    if service_account is not None:
        args += ["--service-account", service_account]
    return args + (["--inbound", inbound] if inbound is not None else [])


# the mesh ---------------------------------------------------------------------------------------


@dataclass
class Mesh:
    """catalog v1 and v2 (a backend each on its APP_HOSTS address, all on ``app_port``) and a
    client, each with a sidecar connected to the control plane at ``url``."""

    workdir: Path
    app_port: int
    url: str = ""
    plane: LoomProcess | None = None  # set where the mesh starts the control plane itself
    backends: dict[str, Backend] = field(default_factory=dict)
    sidecars: dict[str, LoomProcess] = field(default_factory=dict)
    inbound: dict[str, int] = field(default_factory=dict)  # version -> its sidecar's inbound port
    client: str = ""  # http://127.0.0.1:PORT/, the client's outbound listener
    processes: list[LoomProcess] = field(default_factory=list)

    @property
    def config(self) -> Path:
        """The folder of YAML of a ``--config-dir`` control plane."""
        return self.workdir / "config"

    @property
    def state_dir(self) -> Path:
        """The control plane's ``--state-dir``: its CA, tokens and trust bundle."""
        return self.workdir / "controlplane-state"

    def process(self, name: str, args: list[str], env: dict[str, str] | None = None) -> LoomProcess:
        """A ``loom`` process (not started yet) that closing the mesh will stop."""
        process = LoomProcess(self.workdir, name, args, env)
        self.processes.append(process)
        return process

    async def close(self) -> None:
        try:
            await stop_all(self.sidecars.values())
        finally:
            for process in self.processes:
                process.kill()
            for backend in self.backends.values():
                await backend.stop()


ControlPlane = Callable[[Mesh], Awaitable[str]]
"""Starts the control plane for a mesh whose backends run; returns its URL."""


def plane_args(mesh: Mesh, *extra: str, port: int = 0) -> list[str]:
    """``controlplane --config-dir mesh.config --state-dir mesh.state_dir --port PORT ...``."""
    return [
        "controlplane",
        "--config-dir",
        str(mesh.config),
        "--state-dir",
        str(mesh.state_dir),
        "--port",
        str(port),
        *extra,
    ]


async def start_plane(process: LoomProcess, state_dir: Path) -> str:
    """Start a control plane process; its HTTPS URL, registered with the harness."""
    url = f"https://127.0.0.1:{(await process.start())['port']}"
    register_plane(url, state_dir)
    return url


def config_dir_plane(catalog_yaml: Callable[[int], str], *extra: str) -> ControlPlane:
    """``loom controlplane --config-dir`` on ``mesh.config``, whose ``catalog.yaml`` is
    ``catalog_yaml(app_port)``, with ``extra`` arguments; the process is ``mesh.plane``."""

    async def start(mesh: Mesh) -> str:
        mesh.config.mkdir()
        (mesh.config / "catalog.yaml").write_text(catalog_yaml(mesh.app_port))
        mesh.plane = mesh.process("controlplane", plane_args(mesh, *extra))
        return await start_plane(mesh.plane, mesh.state_dir)

    return start


@asynccontextmanager
async def running_mesh(workdir: Path, control_plane: ControlPlane) -> AsyncIterator[Mesh]:
    """The backends, the control plane, then the sidecars, each ready; all stopped on exit."""
    mesh = Mesh(workdir, shared_free_port(list(APP_HOSTS.values())))
    try:
        for version, host in APP_HOSTS.items():
            mesh.backends[version] = backend = Backend(version)
            await backend.start(host, mesh.app_port)
        mesh.url = await control_plane(mesh)
        for version, host in APP_HOSTS.items():
            mesh.inbound[version] = free_port(host)
            args = sidecar_args(
                mesh.url,
                f"catalog-{version}",
                {"app": "catalog", "version": version},
                outbound=free_port(),
                address=host,
                service_account="catalog",
                inbound=f"{mesh.app_port}:{mesh.inbound[version]}",
            )
            mesh.sidecars[version] = mesh.process(f"catalog-{version}", args)
        client_port = free_port()
        mesh.client = f"http://127.0.0.1:{client_port}/"
        args = sidecar_args(mesh.url, "client", {"app": "client"}, outbound=client_port)
        mesh.sidecars["client"] = mesh.process("client", args)
        for sidecar in mesh.sidecars.values():
            await sidecar.start()
        yield mesh
    finally:
        await mesh.close()


# what the control plane says --------------------------------------------------------------------


async def proxy_status(url: str) -> list[dict[str, Any]]:
    """The control plane's ``/v1/proxy-status``: a row a connected sidecar."""
    rows: list[dict[str, Any]] = await get_json(f"{url}/v1/proxy-status")
    return rows


async def all_synced(url: str, count: int) -> bool:
    """Whether ``count`` sidecars are connected and every one is SYNCED."""
    rows = await proxy_status(url)
    return len(rows) == count and all(row["status"] == "SYNCED" for row in rows)
