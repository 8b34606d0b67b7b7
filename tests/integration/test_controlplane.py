"""The control plane end to end: operator YAML in a folder, sidecars connected to it, edits
pushed under load, proxy status, a refused snapshot (NACK), and a restart under traffic."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml

from tests.support.backend import Backend
from tests.support.load import run_load
from tests.support.proxy import STARTUP_TIMEOUT, wait_until

APP_HOSTS = {"v1": "127.0.0.2", "v2": "127.0.0.3"}


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


def mesh_yaml(app_port: int, v1_weight: int) -> str:
    docs = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "catalog", "namespace": "default"},
            "spec": {
                "selector": {"app": "catalog"},
                "ports": [{"name": "http", "port": 80, "targetPort": app_port}],
            },
        },
        {
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
        },
        {
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
        },
    ]
    return yaml.safe_dump_all(docs, sort_keys=False)


class Process:
    def __init__(self, workdir: Path, name: str, args: list[str]) -> None:
        self.name = name
        self.ready = workdir / f"{name}.ready.json"
        self.log = workdir / f"{name}.log"
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> dict:
        self.ready.unlink(missing_ok=True)
        argv = [sys.executable, "-m", "loom.cli.main", *self.args, "--ready-file", str(self.ready)]
        self.process = subprocess.Popen(argv, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        process = self.process
        await wait_until(
            lambda: self.ready.exists() or process.poll() is not None, STARTUP_TIMEOUT, self.name
        )
        assert process.poll() is None, self.log.read_text()
        return json.loads(self.ready.read_text())

    async def stop(self) -> int:
        process, self.process = self.process, None
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        await wait_until(lambda: process.poll() is not None, 20, f"{self.name} to exit")
        return process.returncode

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


@pytest.fixture
async def mesh(tmp_path: Path):
    app_port = shared_free_port(list(APP_HOSTS.values()))
    backends = {}
    for version, host in APP_HOSTS.items():
        backend = Backend(version)
        await backend.start(host, app_port)
        backends[version] = backend
    config = tmp_path / "config"
    config.mkdir()
    (config / "catalog.yaml").write_text(mesh_yaml(app_port, 90))
    plane = Process(tmp_path, "controlplane", ["controlplane", "--config-dir", str(config), "--port", "0"])
    url = f"http://127.0.0.1:{(await plane.start())['port']}"
    sidecars = {}
    for version, host in APP_HOSTS.items():
        sidecar_port = free_port(host)
        sidecars[version] = Process(
            tmp_path,
            f"catalog-{version}",
            ["proxy", "--control-plane", url, "--workload", f"catalog-{version}", "--address", host,
             "--label", "app=catalog", "--label", f"version={version}", "--service-account", "catalog",
             "--outbound-port", str(free_port()), "--inbound", f"{app_port}:{sidecar_port}"],
        )  # fmt: skip
    client_port = free_port()
    sidecars["client"] = Process(
        tmp_path,
        "client",
        ["proxy", "--control-plane", url, "--workload", "client", "--label", "app=client",
         "--outbound-port", str(client_port)],
    )  # fmt: skip
    for sidecar in sidecars.values():
        await sidecar.start()
    state = {
        "url": url,
        "plane": plane,
        "config": config,
        "app_port": app_port,
        "client": f"http://127.0.0.1:{client_port}/",
        "backends": backends,
        "sidecars": sidecars,
    }
    yield state
    for sidecar in sidecars.values():
        assert await sidecar.stop() == 0, sidecar.log.read_text()
    state["plane"].kill()  # the restart test replaces it
    for backend in backends.values():
        await backend.stop()


async def proxy_status(url: str) -> list[dict]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/v1/proxy-status") as response:
        return await response.json()


async def all_synced(url: str, count: int) -> bool:
    rows = await proxy_status(url)
    return len(rows) == count and all(row["status"] == "SYNCED" for row in rows)


async def test_every_sidecar_syncs_and_the_split_follows_the_yaml(mesh) -> None:
    await wait_until(lambda: all_synced(mesh["url"], 3), 15, "every sidecar to be SYNCED")
    headers = {"Host": "catalog"}
    result = await run_load(mesh["client"], 2000, concurrency=16, headers=headers)
    assert result.ok == 2000, (result.statuses, result.errors[:3])
    assert abs(result.share("v2") - 0.10) <= 0.03, result.bodies

    # Shift to 0/100 by editing the file while load runs: no request may fail.
    before = {row["workload"]: row["version"] for row in await proxy_status(mesh["url"])}
    load = asyncio.create_task(run_load(mesh["client"], 3000, concurrency=16, headers=headers))
    await wait_until(lambda: sum(b.requests for b in mesh["backends"].values()) >= 2500, 30, "load under way")
    (mesh["config"] / "catalog.yaml").write_text(mesh_yaml(mesh["app_port"], 0))
    during = await load
    assert during.ok == 3000, (during.statuses, during.errors[:3])

    async def client_on_new_version() -> bool:
        rows = {row["workload"]: row for row in await proxy_status(mesh["url"])}
        client = rows["client"]
        return client["version"] != before["client"] and client["status"] == "SYNCED"

    await wait_until(client_on_new_version, 15, "the client's sidecar to apply the edit")
    after = await run_load(mesh["client"], 2000, concurrency=16, headers=headers)
    assert after.bodies == {"v2": 2000}
    await wait_until(lambda: all_synced(mesh["url"], 3), 15, "every sidecar SYNCED on the new version")


async def test_a_bad_edit_is_refused_and_the_last_good_config_stays(mesh) -> None:
    await wait_until(lambda: all_synced(mesh["url"], 3), 15, "every sidecar to be SYNCED")
    versions = {row["workload"]: row["version"] for row in await proxy_status(mesh["url"])}
    (mesh["config"] / "catalog.yaml").write_text(mesh_yaml(mesh["app_port"], 90).replace("weight", "wieght"))

    async def refused() -> bool:
        async with aiohttp.ClientSession() as session, session.get(f"{mesh['url']}/v1/resources") as response:
            body = await response.json()
        return bool(body["last_error"]) and "wieght" in body["last_error"]

    await wait_until(refused, 10, "the control plane to refuse the edit")
    assert {row["workload"]: row["version"] for row in await proxy_status(mesh["url"])} == versions
    result = await run_load(mesh["client"], 200, concurrency=8, headers={"Host": "catalog"})
    assert result.ok == 200


async def test_control_plane_restart_under_traffic_fails_no_request(mesh, tmp_path: Path) -> None:
    await wait_until(lambda: all_synced(mesh["url"], 3), 15, "every sidecar to be SYNCED")
    port = int(mesh["url"].rsplit(":", 1)[1])
    load = asyncio.create_task(run_load(mesh["client"], 6000, concurrency=8, headers={"Host": "catalog"}))
    await wait_until(lambda: sum(b.requests for b in mesh["backends"].values()) >= 1000, 30, "load under way")
    mesh["plane"].kill()
    await wait_until(
        lambda: sum(b.requests for b in mesh["backends"].values()) >= 2500, 30, "traffic while down"
    )
    plane = Process(
        tmp_path, "controlplane-2", ["controlplane", "--config-dir", str(mesh["config"]), "--port", str(port)]
    )
    await plane.start()
    mesh["plane"] = plane
    result = await load
    assert result.ok == 6000, (result.statuses, result.errors[:3])
    # The sidecars find the new control plane and register again; they keep the snapshots they
    # have through its warm-up (so none is compiled from a half-filled registry), then sync.
    await wait_until(
        lambda: all_synced(mesh["url"], 3), 30, "every sidecar SYNCED with the restarted control plane"
    )


async def test_a_snapshot_the_sidecar_cannot_use_is_nacked_and_the_old_one_keeps_serving(
    mesh, tmp_path: Path
) -> None:
    await wait_until(lambda: all_synced(mesh["url"], 3), 15, "every sidecar to be SYNCED")
    # The client's sidecar fronts app port 7070 on a port something else already holds; that
    # only matters once a Service selects the client and its snapshot gains the listener.
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    try:
        restarted = Process(
            tmp_path,
            "client-2",
            ["proxy", "--control-plane", mesh["url"], "--workload", "client", "--label", "app=client",
             "--outbound-port", mesh["client"].rsplit(":", 1)[1].strip("/"), "--inbound", f"7070:{taken}"],
        )  # fmt: skip
        await mesh["sidecars"]["client"].stop()
        mesh["sidecars"]["client"] = restarted
        await restarted.start()
        await wait_until(lambda: all_synced(mesh["url"], 3), 15, "the client to sync again")
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "client", "namespace": "default"},
            "spec": {
                "selector": {"app": "client"},
                "ports": [{"name": "http", "port": 80, "targetPort": 7070}],
            },
        }
        (mesh["config"] / "client.yaml").write_text(yaml.safe_dump(service))

        async def nacked() -> bool:
            rows = {row["workload"]: row for row in await proxy_status(mesh["url"])}
            return rows["client"]["status"] == "NACKED"

        await wait_until(nacked, 15, "the client's sidecar to refuse the snapshot")
        rows = {row["workload"]: row for row in await proxy_status(mesh["url"])}
        assert "listen" in rows["client"]["error"], rows["client"]
        # It keeps serving the snapshot it had.
        result = await run_load(mesh["client"], 100, concurrency=4, headers={"Host": "catalog"})
        assert result.ok == 100
    finally:
        blocker.close()
