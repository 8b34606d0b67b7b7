"""``loom controlplane --service-cidr``: a Service without a clusterIP gets a virtual IP of the CIDR,
compiled into every sidecar's outbound virtual host for it, so a request for the VIP is routed."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import yaml

from loom.controlplane.compiler.virtual_ips import allocate_virtual_ips
from tests.support.load import run_load
from tests.support.mesh import LoomProcess, all_synced, config_dir_plane, running_mesh, service
from tests.support.proxy import wait_until

CIDR = "10.96.0.0/16"
CATALOG = "catalog.default.svc.cluster.local"


async def test_a_service_without_cluster_ip_gets_a_virtual_ip_of_the_service_cidr(tmp_path: Path) -> None:
    vip = allocate_virtual_ips([("default", "catalog")], CIDR)[("default", "catalog")]

    def catalog_yaml(app_port: int) -> str:
        return yaml.safe_dump(service(app_port))  # no clusterIP

    async with running_mesh(tmp_path, config_dir_plane(catalog_yaml, "--service-cidr", CIDR)) as mesh:
        await wait_until(lambda: all_synced(mesh.url, 3), 15, "every sidecar to be SYNCED")
        admin = json.loads(mesh.sidecars["client"].ready.read_text())["admin_port"]
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{admin}/config_dump") as response,
        ):
            snapshot = (await response.json())["snapshot"]
        [outbound] = [rc for rc in snapshot["route_configs"] if rc["name"] == "outbound"]
        [catalog] = [vh for vh in outbound["virtual_hosts"] if vh["name"] == f"{CATALOG}:80"]
        assert catalog["domains"] == [CATALOG, vip]
        result = await run_load(mesh.client, 20, concurrency=4, headers={"Host": f"{vip}:80"})
        assert result.ok == 20, (result.statuses, result.errors[:3])


async def test_a_malformed_or_ipv6_service_cidr_is_refused_at_start(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "catalog.yaml").write_text(yaml.safe_dump(service()))
    state = ["--state-dir", str(tmp_path / "state"), "--port", "0"]
    for name, cidr, said in (
        ("host-bits", "10.96.0.1/16", "has host bits set"),
        ("not-a-cidr", "services", "is not a network address/prefix"),
        ("ipv6", "fd00:96::/112", "an IPv4 CIDR is needed"),
    ):
        args = ["controlplane", "--config-dir", str(config), *state, "--service-cidr", cidr]
        plane = LoomProcess(tmp_path, name, args)
        assert await plane.run_to_exit() == 2
        out = " ".join(plane.log().split())
        assert "--service-cidr" in out and said in out, out
