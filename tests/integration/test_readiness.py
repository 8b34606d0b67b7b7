"""Endpoint readiness end to end: a sidecar whose app does not answer yet registers not ready and
peers have no endpoint for it (503 ``no healthy upstream``, not a connect error); once the app
listens the endpoint appears and requests reach it; when the app stops, after the failure
threshold, the endpoint goes again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.support.backend import Backend
from tests.support.controlplane import get_json
from tests.support.mesh import (
    Mesh,
    all_synced,
    config_dir_plane,
    free_port,
    proxy_status,
    service,
    sidecar_args,
)
from tests.support.proxy import wait_until

APP_HOST = "127.0.0.2"
CATALOG_CLUSTER = "outbound|80||catalog.default.svc.cluster.local"


@dataclass
class ReadinessMesh:
    mesh: Mesh
    client_admin: int

    async def through_client(self) -> tuple[int, str]:
        """``GET /`` for the catalog through the client's sidecar: (status, body)."""
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.mesh.client, headers={"Host": "catalog"}) as response,
        ):
            return response.status, await response.text()

    async def catalog_endpoints(self) -> list[dict[str, Any]]:
        """The catalog cluster's endpoints in the snapshot the client's sidecar runs."""
        url = f"http://127.0.0.1:{self.client_admin}/config_dump"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            dump = await response.json()
        clusters = {c["name"]: c for c in dump["snapshot"]["clusters"]}
        return list(clusters[CATALOG_CLUSTER].get("endpoints") or [])

    async def catalog_ready(self) -> bool | None:
        rows = {w["name"]: w for w in await get_json(f"{self.mesh.url}/v1/workloads")}
        return rows["catalog-v1"]["ready"] if "catalog-v1" in rows else None


async def start_mesh(tmp_path: Path, *catalog_extra: str, app_first: bool = False) -> ReadinessMesh:
    """A control plane with the catalog Service, the catalog's sidecar and a client's sidecar; the
    catalog's app is started first with ``app_first``, else not at all."""
    mesh = Mesh(tmp_path, free_port(APP_HOST))
    if app_first:
        mesh.backends["v1"] = await Backend("v1").start(APP_HOST, mesh.app_port)
    mesh.url = await config_dir_plane(lambda app_port: yaml.safe_dump(service(app_port)))(mesh)
    mesh.inbound["v1"] = free_port(APP_HOST)
    args = sidecar_args(
        mesh.url,
        "catalog-v1",
        {"app": "catalog", "version": "v1"},
        outbound=free_port(),
        address=APP_HOST,
        service_account="catalog",
        inbound=f"{mesh.app_port}:{mesh.inbound['v1']}",
    )
    mesh.sidecars["v1"] = mesh.process("catalog-v1", [*args, *catalog_extra])
    client_port = free_port()
    mesh.client = f"http://127.0.0.1:{client_port}/"
    mesh.sidecars["client"] = mesh.process(
        "client", sidecar_args(mesh.url, "client", {"app": "client"}, outbound=client_port)
    )
    await mesh.sidecars["v1"].start()
    ready = await mesh.sidecars["client"].start()
    return ReadinessMesh(mesh, ready["admin_port"])


@pytest.fixture
async def readiness_mesh(tmp_path: Path) -> AsyncIterator[ReadinessMesh]:
    running = await start_mesh(tmp_path)
    try:
        yield running
    finally:
        await running.mesh.close()


async def test_peers_route_to_a_sidecar_only_while_its_app_answers(readiness_mesh: ReadinessMesh) -> None:
    mesh = readiness_mesh.mesh
    await wait_until(lambda: all_synced(mesh.url, 2), 15, "both sidecars to be SYNCED")
    assert await readiness_mesh.catalog_ready() is False
    rows = {row["workload"]: row for row in await proxy_status(mesh.url)}
    assert rows["catalog-v1"]["ready"] is False and rows["client"]["ready"] is True

    # Not ready: the client has no endpoint for it, and says so (not a connection failure).
    assert await readiness_mesh.catalog_endpoints() == []
    status, body = await readiness_mesh.through_client()
    assert (status, body) == (503, "no healthy upstream\n")

    # The app starts listening: the endpoint appears and requests reach it.
    backend = mesh.backends["v1"] = await Backend("v1").start(APP_HOST, mesh.app_port)

    async def served() -> bool:
        return await readiness_mesh.through_client() == (200, "v1")

    await wait_until(served, 15, "requests through the client to reach the catalog's app")
    assert await readiness_mesh.catalog_ready() is True
    endpoints = await readiness_mesh.catalog_endpoints()
    assert [(e["address"], e["port"]) for e in endpoints] == [(APP_HOST, mesh.inbound["v1"])]

    # The app stops: after the failure threshold the endpoint is gone again.
    await backend.stop()

    async def removed() -> bool:
        return await readiness_mesh.catalog_endpoints() == []

    await wait_until(removed, 20, "the client's snapshot to drop the catalog's endpoint")
    assert await readiness_mesh.catalog_ready() is False
    assert await readiness_mesh.through_client() == (503, "no healthy upstream\n")
    await wait_until(lambda: all_synced(mesh.url, 2), 15, "both sidecars SYNCED again")


async def test_with_a_readiness_path_the_app_must_answer_it_with_2xx(tmp_path: Path) -> None:
    running = await start_mesh(tmp_path, "--readiness-path", "/status/503", app_first=True)
    mesh = running.mesh
    try:
        # The app listens, but its readiness path answers 503: the sidecar says why, stays not ready.
        await wait_until(lambda: all_synced(mesh.url, 2), 15, "both sidecars to be SYNCED")
        assert "/status/503: 503" in mesh.sidecars["v1"].log()
        assert await running.catalog_ready() is False
        assert await running.catalog_endpoints() == []
        assert await running.through_client() == (503, "no healthy upstream\n")
    finally:
        await mesh.close()
