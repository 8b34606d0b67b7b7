"""Golden metrics through the control plane: the sidecars push their istio_* series, the control
plane answers /v1/stats and /v1/edges, and `loom stat` / `loom tap` print them."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.controlplane import get_json, plane_at
from tests.support.load import run_load
from tests.support.mesh import Mesh, all_synced, config_dir_plane, running_mesh, service
from tests.support.proxy import wait_until

DELAY = 0.03


def mesh_yaml(app_port: int) -> str:
    no_retries = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "catalog", "namespace": "default"},
        "spec": {
            "hosts": ["catalog"],
            "http": [{"route": [{"destination": {"host": "catalog"}}], "retries": {"attempts": 0}}],
        },
    }
    return yaml.safe_dump_all([service(app_port), no_retries], sort_keys=False)


@pytest.fixture
async def mesh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Mesh]:
    monkeypatch.setenv("LOOM_TELEMETRY_INTERVAL", "0.2")
    async with running_mesh(tmp_path, config_dir_plane(mesh_yaml)) as running:
        await wait_until(lambda: all_synced(running.url, 3), 15, "every sidecar to be SYNCED")
        yield running


async def loom(url: str, *args: str, timeout: float = 60) -> tuple[int, str, str]:
    env = {**os.environ, **plane_at(url).env(), "COLUMNS": "200"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loom.cli.main", *args, "--control-plane", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def catalog_row(url: str) -> dict[str, Any] | None:
    answer = await get_json(f"{url}/v1/stats?by=svc&namespace=default&window=60")
    rows = [row for row in answer["rows"] if row["name"] == "catalog"]
    return rows[0] if rows else None


async def test_stats_and_edges_from_known_traffic(mesh: Mesh) -> None:
    headers = {"Host": "catalog"}
    ok = await run_load(f"{mesh.client}delay/{DELAY}", 180, concurrency=8, headers=headers)
    failed = await run_load(f"{mesh.client}status/503", 20, concurrency=4, headers=headers)
    assert ok.statuses == {200: 180} and failed.statuses == {503: 20}, (ok.statuses, failed.statuses)

    async def counted() -> bool:
        row = await catalog_row(mesh.url)
        return row is not None and row["requests"] == 200

    await wait_until(counted, 20, "the control plane to count the 200 requests")
    row = await catalog_row(mesh.url)
    assert row is not None
    assert row["success_rate"] == pytest.approx(0.9, abs=0.001)
    assert row["mtls_share"] == 1.0
    assert row["meshed"] == 2  # catalog-v1 and catalog-v2 report their inbound requests
    assert row["rps"] > 0
    # 99% of the requests took at least DELAY (30 ms, in the 25-50 ms bucket): p99 interpolates
    # inside that bucket, or the next one on a slow machine.
    assert 25.0 <= row["p99_ms"] <= 100.0, row
    assert row["p50_ms"] is not None and 25.0 <= row["p50_ms"] <= 100.0, row

    deploy = await get_json(f"{mesh.url}/v1/stats?by=deploy&namespace=default")
    names = {r["name"]: r for r in deploy["rows"]}
    assert names["catalog-v1"]["requests"] + names["catalog-v2"]["requests"] == 200

    edges = (await get_json(f"{mesh.url}/v1/edges?namespace=default"))["edges"]
    to_catalog = [e for e in edges if e["destination"]["service"] == "catalog"]
    assert {e["destination"]["workload"] for e in to_catalog} == {"catalog-v1", "catalog-v2"}, edges
    for edge in to_catalog:
        assert edge["source"]["workload"] == "client"
        assert edge["source"]["principal"].endswith("/ns/default/sa/default")
        assert edge["destination"]["principal"].endswith("/ns/default/sa/catalog")
        assert edge["mtls"] is True

    code, out, err = await loom(mesh.url, "stat", "svc")
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith("catalog"))
    assert "90.00%" in line and "100%" in line, out

    series = await get_json(f"{mesh.url}/v1/series?namespace=default&service=catalog&minutes=1&step=10")
    assert len(series["points"]) == 6
    assert sum(p["rps"] for p in series["points"]) > 0


async def test_tap_prints_requests_while_traffic_flows(mesh: Mesh) -> None:
    stop = asyncio.Event()
    load = asyncio.create_task(
        run_load(f"{mesh.client}tapped", 100000, concurrency=2, headers={"Host": "catalog"}, stop=stop)
    )
    try:
        code, out, err = await loom(mesh.url, "tap", "svc/catalog", "--max", "5", "--seconds", "30")
    finally:
        stop.set()
        await load
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 5, out
    for line in lines:
        assert ":method=GET" in line and ":path=/tapped" in line and ":status=200" in line, line

    top = await get_json(f"{mesh.url}/v1/top?namespace=default&seconds=0")
    assert any(row["path"] == "/tapped" for row in top["rows"]), top
