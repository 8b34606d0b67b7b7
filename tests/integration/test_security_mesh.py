"""The seed examples for security, as written, on a real mesh: a control plane with its CA, and
sidecars that get their certificates from it. ``PeerAuthentication`` STRICT in ``production``
refuses plaintext; the ``orders-authz`` AuthorizationPolicy lets ``api-service`` GET/POST
``/api/orders*``, answers ``worker-service`` 403, and a caller outside the mesh gets nowhere."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml

from tests.support.backend import Backend
from tests.support.load import run_load
from tests.support.mesh import (
    Mesh,
    all_synced,
    config_dir_plane,
    free_port,
    plane_args,
    running_mesh,
    service,
    sidecar_args,
    start_plane,
)
from tests.support.proxy import wait_until

SEEDS = Path(__file__).parents[1] / "fixtures" / "api" / "seed_examples"
ORDERS_HOST = "127.0.0.4"
CALLERS = ("api-service", "worker-service")


def orders_service(app_port: int) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "orders-api", "namespace": "production"},
            "spec": {
                "selector": {"app": "orders-api"},
                "ports": [{"name": "http", "port": 80, "targetPort": app_port}],
            },
        }
    )


class SecureMesh:
    def __init__(self, mesh: Mesh, orders: Backend, orders_inbound: int, callers: dict[str, str]) -> None:
        self.mesh = mesh
        self.orders = orders
        self.orders_inbound = orders_inbound
        self.callers = callers
        """caller name → its outbound listener's URL"""


@pytest.fixture
async def secure_mesh(tmp_path: Path) -> AsyncIterator[SecureMesh]:
    app_port = free_port(ORDERS_HOST)
    mesh = Mesh(tmp_path, app_port)
    try:
        orders = mesh.backends["orders"] = await Backend("orders").start(ORDERS_HOST, app_port)
        mesh.config.mkdir()
        for seed in ("002-strict-mtls.yaml", "002-orders-authz.yaml"):
            shutil.copy(SEEDS / seed, mesh.config / seed)  # as written
        (mesh.config / "orders-service.yaml").write_text(orders_service(app_port))
        mesh.plane = mesh.process("controlplane", plane_args(mesh))
        mesh.url = await start_plane(mesh.plane, mesh.state_dir)

        inbound = free_port(ORDERS_HOST)
        args = sidecar_args(
            mesh.url,
            "orders-api",
            {"app": "orders-api"},
            outbound=free_port(),
            address=ORDERS_HOST,
            service_account="orders-api",
            inbound=f"{app_port}:{inbound}",
        )
        mesh.sidecars["orders-api"] = mesh.process("orders-api", [*args, "--namespace", "production"])
        callers = {}
        for name in CALLERS:
            port = free_port()
            args = sidecar_args(mesh.url, name, {"app": name}, outbound=port, service_account=name)
            mesh.sidecars[name] = mesh.process(name, [*args, "--namespace", "production"])
            callers[name] = f"http://127.0.0.1:{port}"
        for sidecar in mesh.sidecars.values():
            await sidecar.start()
        await wait_until(lambda: all_synced(mesh.url, 3), 20, "every sidecar to be SYNCED")
        yield SecureMesh(mesh, orders, inbound, callers)
    finally:
        await mesh.close()


async def call(base: str, method: str, path: str) -> tuple[int, str]:
    headers = {"Host": "orders-api"}  # the short name, resolved in the caller's namespace
    async with aiohttp.ClientSession() as session, session.request(method, base + path, headers=headers) as r:
        return r.status, await r.text()


async def test_api_service_may_get_and_post_orders_and_nothing_else(secure_mesh: SecureMesh) -> None:
    api = secure_mesh.callers["api-service"]

    assert await call(api, "GET", "/api/orders/42") == (200, "orders")
    assert await call(api, "POST", "/api/orders") == (200, "orders")
    assert await call(api, "DELETE", "/api/orders/42") == (403, "RBAC: access denied")
    assert await call(api, "GET", "/admin") == (403, "RBAC: access denied")
    assert secure_mesh.orders.requests == 2


async def test_worker_service_gets_403(secure_mesh: SecureMesh) -> None:
    worker = secure_mesh.callers["worker-service"]

    assert await call(worker, "GET", "/api/orders/42") == (403, "RBAC: access denied")
    assert await call(worker, "POST", "/api/orders") == (403, "RBAC: access denied")
    assert secure_mesh.orders.requests == 0


async def test_a_caller_outside_the_mesh_is_refused_before_the_app(secure_mesh: SecureMesh) -> None:
    """STRICT: plaintext into the orders sidecar is closed unanswered; the app never hears of it."""
    reader, writer = await asyncio.open_connection(ORDERS_HOST, secure_mesh.orders_inbound)
    writer.write(b"GET /api/orders/42 HTTP/1.1\r\nHost: orders-api\r\n\r\n")
    await writer.drain()
    try:
        answer = await asyncio.wait_for(reader.read(), 10)
    except ConnectionResetError:
        answer = b""
    writer.close()
    assert answer == b""
    assert secure_mesh.orders.requests == 0


async def test_without_strict_plaintext_gets_in_but_the_policy_still_refuses_it(
    secure_mesh: SecureMesh,
) -> None:
    """Remove the STRICT PeerAuthentication (the default is PERMISSIVE): plaintext now reaches the
    sidecar, but a caller without a certificate has no principal, so the ALLOW policy answers 403."""
    (secure_mesh.mesh.config / "002-strict-mtls.yaml").unlink()
    direct = f"http://{ORDERS_HOST}:{secure_mesh.orders_inbound}"

    async def plaintext_answered() -> bool:
        try:
            return (await call(direct, "GET", "/api/orders/42"))[0] == 403
        except aiohttp.ClientError:
            return False

    await wait_until(plaintext_answered, 20, "the orders sidecar to take plaintext")
    assert await call(secure_mesh.callers["api-service"], "GET", "/api/orders/42") == (200, "orders")
    assert secure_mesh.orders.requests == 1


async def test_certificates_rotate_under_steady_load_with_no_request_lost(tmp_path: Path) -> None:
    """Workload certificates of 20 s renew every ~10 s; a client keeps opening new connections
    (10 requests each) to both catalog versions all along: not one request fails."""
    recycle = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "DestinationRule",
        "metadata": {"name": "catalog", "namespace": "default"},
        "spec": {
            "host": "catalog",
            "trafficPolicy": {"connectionPool": {"http": {"maxRequestsPerConnection": 10}}},
        },
    }

    def catalog_yaml(app_port: int) -> str:
        return yaml.safe_dump_all([service(app_port), recycle])

    plane = config_dir_plane(catalog_yaml, "--cert-ttl", "20s")
    async with running_mesh(tmp_path, plane) as mesh:
        await wait_until(lambda: all_synced(mesh.url, 3), 15, "every sidecar to be SYNCED")

        def renewals() -> int:
            return min(sidecar.log().count("workload identity") for sidecar in mesh.sidecars.values()) - 1

        stop = asyncio.Event()
        load = asyncio.create_task(
            run_load(mesh.client, 1_000_000, concurrency=8, headers={"Host": "catalog"}, stop=stop)
        )
        try:
            await wait_until(
                lambda: renewals() >= 1, 30, "every sidecar to renew its certificate", interval=0.5
            )
            served = sum(backend.requests for backend in mesh.backends.values())
            await wait_until(
                lambda: sum(b.requests for b in mesh.backends.values()) >= served + 500,
                20,
                "traffic after renewal",
            )
        finally:
            stop.set()
        result = await load

        assert result.total > 1000 and result.ok == result.total, (result.statuses, result.errors[:5])
