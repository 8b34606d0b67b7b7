"""One trace through three hops in a mesh: client → frontend → catalog → reviews, each app with a
sidecar connected to a control plane, the apps forwarding the trace headers as Istio requires. The
control plane keeps the spans every sidecar sends it (``GET /v1/traces/{id}``); ``loom trace`` shows
the waterfall. The tracing configuration is a Telemetry resource."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.support.controlplane import plane_at
from tests.support.mesh import Mesh, all_synced, free_port, plane_args, sidecar_args, start_plane
from tests.support.proxy import wait_until

FORWARDED = ("traceparent", "tracestate", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid",
             "x-b3-sampled", "x-b3-flags", "x-request-id")  # fmt: skip
CHAIN = {"frontend": "catalog", "catalog": "reviews", "reviews": None}


def mesh_yaml(app_ports: dict[str, int]) -> str:
    docs = [
        f"""apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: http, port: 80, targetPort: {port}}}]
"""
        for name, port in app_ports.items()
    ]
    docs.append(
        """apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: tracing, namespace: default}
spec:
  tracing:
  - randomSamplingPercentage: 100
"""
    )
    return "---\n".join(docs)


async def start_app(name: str, port: int, outbound: dict[str, int]) -> web.AppRunner:
    """An app that calls the next one through its own sidecar, forwarding the trace headers."""

    async def handle(request: web.Request) -> web.Response:
        following = CHAIN[name]
        if following is None:
            return web.json_response({name: dict(request.headers)})
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED}
        headers["Host"] = following
        url = f"http://127.0.0.1:{outbound[name]}/"
        async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
            below = await response.json()
        return web.json_response({name: dict(request.headers), **below}, status=response.status)

    app = web.Application()
    app.router.add_get("/", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[tuple[Mesh, dict[str, int]]]:
    mesh = Mesh(tmp_path, app_port=0)
    runners: list[web.AppRunner] = []
    app_ports = {name: free_port() for name in CHAIN}
    outbound = {name: free_port() for name in (*CHAIN, "client")}
    try:
        for name in CHAIN:
            runners.append(await start_app(name, app_ports[name], outbound))
        mesh.config.mkdir()
        (mesh.config / "mesh.yaml").write_text(mesh_yaml(app_ports))
        mesh.plane = mesh.process("controlplane", plane_args(mesh))
        mesh.url = await start_plane(mesh.plane, mesh.state_dir)
        for name in CHAIN:
            args = sidecar_args(
                mesh.url,
                name,
                {"app": name},
                outbound=outbound[name],
                service_account=name,
                inbound=f"{app_ports[name]}:{free_port()}",
            )
            mesh.sidecars[name] = mesh.process(name, args)
        mesh.sidecars["client"] = mesh.process(
            "client", sidecar_args(mesh.url, "client", {"app": "client"}, outbound=outbound["client"])
        )
        for sidecar in mesh.sidecars.values():
            await sidecar.start()
        await wait_until(lambda: all_synced(mesh.url, 4), 20.0, "four synced sidecars")
        yield mesh, outbound
    finally:
        await mesh.close()
        for runner in runners:
            await runner.cleanup()


async def test_three_hops_make_one_trace_in_the_control_plane(mesh: tuple[Mesh, dict[str, int]]) -> None:
    running, outbound = mesh
    answer: dict[str, Any] = {}

    async def through_the_chain() -> bool:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{outbound['client']}/", headers={"Host": "frontend"}) as response,
        ):
            if response.status != 200:
                return False
            answer.update(await response.json())
            return True

    await wait_until(through_the_chain, 20.0, "a request through frontend, catalog and reviews")
    trace_id = answer["reviews"]["traceparent"].split("-")[1]
    assert answer["frontend"]["traceparent"].split("-")[1] == trace_id
    plane = plane_at(running.url)
    found: dict[str, Any] = {}

    async def six_spans() -> bool:
        status, body = await plane.request("GET", f"/v1/traces/{trace_id}")
        if status == 200 and body["spans"] >= 6:
            found.update(body)
            return True
        return False

    await wait_until(six_spans, 15.0, "six spans of the trace in the control plane")
    spans = {(s["service"], s["kind"]): s for s in found["span_list"]}
    assert len(found["span_list"]) == 6
    chain = [
        ("client.default", "CLIENT"),
        ("frontend.default", "SERVER"),
        ("frontend.default", "CLIENT"),
        ("catalog.default", "SERVER"),
        ("catalog.default", "CLIENT"),
        ("reviews.default", "SERVER"),
    ]
    assert spans[chain[0]]["parent_id"] is None
    for parent, child in itertools.pairwise(chain):
        assert spans[child]["parent_id"] == spans[parent]["span_id"], (child, parent)
    assert found["root_service"] == "client.default" and not found["error"]
    server = spans[("reviews.default", "SERVER")]
    assert server["attributes"]["peer.principal"] == "spiffe://cluster.local/ns/default/sa/catalog"
    assert server["name"].startswith("reviews.default.svc.cluster.local:")
    # The listing, and the CLI's waterfall.
    status, rows = await plane.request("GET", "/v1/traces?limit=5&service=reviews")
    assert status == 200 and any(row["trace_id"] == trace_id for row in rows)
    status, _ = await plane.request(
        "POST", "/v1/traces", data=b"{}", headers={"Content-Type": "application/json"}
    )
    assert status == 401  # only workloads send spans
    out = subprocess.run(
        [sys.executable, "-m", "loom.cli.main", "trace", trace_id],
        env={**os.environ, **plane.env()},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"trace {trace_id}: 6 spans")
    assert "client.default CLIENT frontend.default.svc.cluster.local:80/*" in lines[1]
    assert "          reviews.default SERVER" in lines[6]
