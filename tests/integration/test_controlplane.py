"""The control plane end to end: operator YAML in a folder, sidecars connected to it, edits
pushed under load, proxy status, a refused snapshot (NACK), and a restart under traffic."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from tests.support.controlplane import get_json
from tests.support.load import run_load
from tests.support.mesh import (
    Mesh,
    all_synced,
    config_dir_plane,
    destination_rule,
    plane_args,
    proxy_status,
    running_mesh,
    service,
    sidecar_args,
    start_plane,
    virtual_service,
)
from tests.support.proxy import wait_until


def mesh_yaml(app_port: int, v1_weight: int) -> str:
    docs = [service(app_port), destination_rule(), virtual_service(v1_weight)]
    return yaml.safe_dump_all(docs, sort_keys=False)


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[Mesh]:
    async with running_mesh(tmp_path, config_dir_plane(lambda app_port: mesh_yaml(app_port, 90))) as running:
        yield running


async def test_every_sidecar_syncs_and_the_split_follows_the_yaml(mesh) -> None:
    await wait_until(lambda: all_synced(mesh.url, 3), 15, "every sidecar to be SYNCED")
    headers = {"Host": "catalog"}
    result = await run_load(mesh.client, 2000, concurrency=16, headers=headers)
    assert result.ok == 2000, (result.statuses, result.errors[:3])
    assert abs(result.share("v2") - 0.10) <= 0.03, result.bodies

    # Shift to 0/100 by editing the file while load runs: no request may fail.
    before = {row["workload"]: row["version"] for row in await proxy_status(mesh.url)}
    load = asyncio.create_task(run_load(mesh.client, 3000, concurrency=16, headers=headers))
    await wait_until(lambda: sum(b.requests for b in mesh.backends.values()) >= 2500, 30, "load under way")
    (mesh.config / "catalog.yaml").write_text(mesh_yaml(mesh.app_port, 0))
    during = await load
    assert during.ok == 3000, (during.statuses, during.errors[:3])

    async def client_on_new_version() -> bool:
        rows = {row["workload"]: row for row in await proxy_status(mesh.url)}
        client = rows["client"]
        return client["version"] != before["client"] and client["status"] == "SYNCED"

    await wait_until(client_on_new_version, 15, "the client's sidecar to apply the edit")
    after = await run_load(mesh.client, 2000, concurrency=16, headers=headers)
    assert after.bodies == {"v2": 2000}
    await wait_until(lambda: all_synced(mesh.url, 3), 15, "every sidecar SYNCED on the new version")


async def test_a_bad_edit_is_refused_and_the_last_good_config_stays(mesh) -> None:
    await wait_until(lambda: all_synced(mesh.url, 3), 15, "every sidecar to be SYNCED")
    versions = {row["workload"]: row["version"] for row in await proxy_status(mesh.url)}
    (mesh.config / "catalog.yaml").write_text(mesh_yaml(mesh.app_port, 90).replace("weight", "wieght"))

    async def refused() -> bool:
        body = await get_json(f"{mesh.url}/v1/resources")
        return bool(body["last_error"]) and "wieght" in body["last_error"]

    await wait_until(refused, 10, "the control plane to refuse the edit")
    assert {row["workload"]: row["version"] for row in await proxy_status(mesh.url)} == versions
    result = await run_load(mesh.client, 200, concurrency=8, headers={"Host": "catalog"})
    assert result.ok == 200


async def test_control_plane_restart_under_traffic_fails_no_request(mesh) -> None:
    await wait_until(lambda: all_synced(mesh.url, 3), 15, "every sidecar to be SYNCED")
    port = int(mesh.url.rsplit(":", 1)[1])
    load = asyncio.create_task(run_load(mesh.client, 6000, concurrency=8, headers={"Host": "catalog"}))
    await wait_until(lambda: sum(b.requests for b in mesh.backends.values()) >= 1000, 30, "load under way")
    mesh.plane.kill()
    await wait_until(
        lambda: sum(b.requests for b in mesh.backends.values()) >= 2500, 30, "traffic while down"
    )
    plane = mesh.process("controlplane-2", plane_args(mesh, port=port))
    assert await start_plane(plane, mesh.state_dir) == mesh.url  # the same CA: the sidecars trust it
    mesh.plane = plane
    result = await load
    assert result.ok == 6000, (result.statuses, result.errors[:3])
    # The sidecars find the new control plane and register again; they keep the snapshots they
    # have through its warm-up (so none is compiled from a half-filled registry), then sync.
    await wait_until(
        lambda: all_synced(mesh.url, 3), 30, "every sidecar SYNCED with the restarted control plane"
    )


async def test_a_snapshot_the_sidecar_cannot_use_is_nacked_and_the_old_one_keeps_serving(mesh) -> None:
    await wait_until(lambda: all_synced(mesh.url, 3), 15, "every sidecar to be SYNCED")
    # The client's sidecar fronts app port 7070 on a port something else already holds; that
    # only matters once a Service selects the client and its snapshot gains the listener.
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    try:
        outbound = int(mesh.client.rsplit(":", 1)[1].strip("/"))
        restarted = mesh.process(
            "client-2",
            sidecar_args(mesh.url, "client", {"app": "client"}, outbound=outbound, inbound=f"7070:{taken}"),
        )
        await mesh.sidecars["client"].stop()
        mesh.sidecars["client"] = restarted
        await restarted.start()
        await wait_until(lambda: all_synced(mesh.url, 3), 15, "the client to sync again")
        (mesh.config / "client.yaml").write_text(yaml.safe_dump(service(7070, name="client")))

        async def nacked() -> bool:
            rows = {row["workload"]: row for row in await proxy_status(mesh.url)}
            return rows["client"]["status"] == "NACKED"

        await wait_until(nacked, 15, "the client's sidecar to refuse the snapshot")
        rows = {row["workload"]: row for row in await proxy_status(mesh.url)}
        assert "listen" in rows["client"]["error"], rows["client"]
        # It keeps serving the snapshot it had.
        result = await run_load(mesh.client, 100, concurrency=4, headers={"Host": "catalog"})
        assert result.ok == 100
    finally:
        blocker.close()
