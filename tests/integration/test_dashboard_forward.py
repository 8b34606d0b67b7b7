"""The dashboard's server with a real control plane (``loom controlplane --dashboard-port 0``):
it binds 127.0.0.1 only, forwards GETs to the HTTPS API (the operator token added for tap),
streams the answer rather than buffering it, and refuses anything but GET."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.controlplane import PlaneAccess
from tests.support.mesh import LoomProcess, start_plane

SERVICE_YAML = """\
apiVersion: v1
kind: Service
metadata: {name: catalog, namespace: default}
spec:
  selector: {app: catalog}
  ports: [{name: http, port: 80, targetPort: 9080}]
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: catalog, namespace: default}
spec:
  host: catalog
  subsets: [{name: v1, labels: {version: v1}}]
"""


@dataclass
class Running:
    plane: PlaneAccess
    dashboard: str
    port: int


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    config = tmp_path / "config"
    config.mkdir()
    (config / "catalog.yaml").write_text(SERVICE_YAML)
    state_dir = tmp_path / "state"
    args = ["controlplane", "--config-dir", str(config), "--state-dir", str(state_dir), "--port", "0"]
    process = LoomProcess(tmp_path, "controlplane", [*args, "--dashboard-port", "0"])
    try:
        url = await start_plane(process, state_dir)
        ready: dict[str, Any] = json.loads(process.ready.read_text())
        port = int(ready["dashboard_port"])
        yield Running(PlaneAccess(url, state_dir), f"http://127.0.0.1:{port}", port)
    finally:
        process.kill()


async def _get(url: str, **kwargs: Any) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(kwargs.pop("method", "GET"), url, **kwargs) as r,
    ):
        text = await r.text()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text


async def test_it_binds_127_0_0_1_only(running: Running) -> None:
    status, _ = await _get(f"{running.dashboard}/")
    assert status == 200
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.2", running.port)


async def test_gets_are_forwarded_to_the_api(running: Running) -> None:
    status, direct = await running.plane.request("GET", "/v1/resources?kind=Service")
    assert status == 200
    status, forwarded = await _get(f"{running.dashboard}/api/v1/resources?kind=Service")
    assert status == 200 and forwarded == direct
    status, body = await _get(f"{running.dashboard}/api/v1/no-such-route")
    assert status == 404, body


async def test_anything_but_get_is_refused(running: Running) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        status, body = await _get(f"{running.dashboard}/api/v1/resources", method=method, data=b"x")
        assert status == 405, (method, body)
    status, body = await running.plane.request("GET", "/v1/resources")
    assert status == 200 and len(body["resources"]) == 2  # nothing was written


async def test_a_foreign_host_name_is_refused(running: Running) -> None:
    status, _ = await _get(f"{running.dashboard}/api/v1/resources", headers={"Host": "evil.example"})
    assert status == 403


async def test_tap_gets_the_operator_token_and_streams(running: Running) -> None:
    status, _ = await running.plane.request("GET", "/v1/tap?seconds=1")
    assert status == 401  # the API wants the token; the dashboard adds it
    started = time.monotonic()
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{running.dashboard}/api/v1/tap?seconds=4") as response,
    ):
        # a forwarder that buffered would answer only when the 4-second session ends
        assert response.status == 200
        assert time.monotonic() - started < 3.0
        assert response.headers["Content-Type"].startswith("application/x-ndjson")
        assert await response.read() == b""
    assert time.monotonic() - started >= 3.5


async def test_the_config_view_matches_resources_to_services(running: Running) -> None:
    status, view = await _get(f"{running.dashboard}/api/config")
    assert status == 200
    [catalog] = view["services"]
    assert (catalog["namespace"], catalog["name"]) == ("default", "catalog")
    [rule] = catalog["resources"]
    assert rule["kind"] == "DestinationRule" and rule["line"] >= 1 and rule["file"].endswith("catalog.yaml")
    assert rule["subsets"] == [{"name": "v1", "labels": {"version": "v1"}}]
