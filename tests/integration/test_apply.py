"""``loom apply``, ``loom get``, ``loom delete`` and ``loom explain --control-plane`` against a real
control plane with connected sidecars: an applied VirtualService reaches the sidecars (their
versions move, the traffic follows it), is shown, explained and deleted; YAML that does not load
and configuration with an analysis Error are refused; a resource of the operator's own files is
left to those files."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from tests.support.controlplane import plane_at
from tests.support.load import run_load
from tests.support.mesh import (
    APP_HOSTS,
    Mesh,
    config_dir_plane,
    destination_rule,
    proxy_status,
    running_mesh,
    service,
)
from tests.support.proxy import wait_until

CATALOG = "catalog.default.svc.cluster.local"


def base_yaml(app_port: int) -> str:
    """The operator's own file: the catalog Service and its subsets (no routing yet)."""
    return yaml.safe_dump_all([service(app_port), destination_rule()], sort_keys=False)


def virtual_service(v1: int, v2: int, subset2: str = "v2") -> str:
    return f"""# The catalog canary: shift it by editing the weights and applying the file again.
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: catalog
  namespace: default
spec:
  hosts:
  - catalog
  http:
  - route:
    - destination:
        host: catalog
        subset: v1
      weight: {v1}
    - destination:
        host: catalog
        subset: {subset2}
      weight: {v2}
"""


async def loom(*args: str) -> tuple[int, str, str]:
    """``loom ARGS``; with ``--control-plane URL``, with that control plane's state directory (its
    trust bundle and operator token) in the environment."""
    env = dict(os.environ)
    if "--control-plane" in args:
        env.update(plane_at(args[args.index("--control-plane") + 1]).env())
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loom.cli.main", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[Mesh]:
    async with running_mesh(tmp_path, config_dir_plane(base_yaml)) as running:
        yield running


async def client_version(url: str) -> str | None:
    for row in await proxy_status(url):
        if row["workload"] == "client" and row["status"] == "SYNCED":
            return str(row["version"])
    return None


async def synced_version_other_than(url: str, old: str | None) -> str:
    found: list[str] = []

    async def moved() -> bool:
        version = await client_version(url)
        if version is not None and version != old:
            found.append(version)
            return True
        return False

    await wait_until(moved, 15, f"the client sidecar to sync a version other than {old}")
    return found[-1]


async def test_apply_get_explain_and_delete_reach_the_sidecars(mesh) -> None:
    url = mesh.url
    await wait_until(lambda: client_version(url), 15, "the client sidecar to sync")
    before = await client_version(url)
    headers = {"Host": "catalog"}
    assert (await run_load(mesh.client, 200, concurrency=8, headers=headers)).bodies.keys() == {"v1", "v2"}

    # apply: everything to v2
    vs = mesh.workdir / "catalog-vs.yaml"
    vs.write_text(virtual_service(0, 100))
    code, out, err = await loom("apply", "-f", str(vs), "--control-plane", url)
    assert code == 0, err
    assert "VirtualService default/catalog applied" in out
    applied_file = mesh.config / "applied" / "virtualservice.default.catalog.yaml"
    assert applied_file.exists()
    first = await synced_version_other_than(url, before)
    result = await run_load(mesh.client, 300, concurrency=8, headers=headers)
    assert result.bodies == {"v2": 300}, result.bodies

    # get: the table, the YAML as written (comment included), JSON
    code, out, err = await loom("get", "vs", "--control-plane", url)
    assert code == 0, err
    assert "default" in out and "VirtualService" in out and "catalog" in out and str(applied_file) in out
    code, out, _ = await loom(
        "get", "virtualservice", "catalog", "-n", "default", "-o", "yaml", "--control-plane", url
    )
    assert (
        code == 0
        and "shift it by editing the weights" in out
        and yaml.safe_load(out)["spec"]["hosts"] == ["catalog"]
    )
    code, out, _ = await loom("get", "vs", "catalog", "-o", "json", "--control-plane", url)
    assert code == 0 and json.loads(out)["metadata"] == {"name": "catalog", "namespace": "default"}

    # the 75/25 shift: edit the file, apply it again
    vs.write_text(virtual_service(75, 25))
    code, out, err = await loom("apply", "-f", str(vs), "--control-plane", url)
    assert code == 0, err
    second = await synced_version_other_than(url, first)

    # explain, with the control plane's resources and registered workloads
    code, out, err = await loom(
        "explain", "--control-plane", url, "--from", "client", "http://catalog/", "-o", "json"
    )
    assert code == 0, err
    explained = json.loads(out)
    assert explained["from"]["known_as"] == "registered workload"
    source = explained["route"]["source"]
    assert (source["kind"], source["name"], source["rule"]) == ("VirtualService", "catalog", 0)
    assert source["file"] == str(applied_file)
    assert applied_file.read_text().splitlines()[source["line"] - 1].strip() == "- route:"
    by_subset = {d["subset"]: d for d in explained["destinations"]}
    assert {s: d["percent"] for s, d in by_subset.items()} == {"v1": 75.0, "v2": 25.0}
    assert [(e["address"], e["port"], e["workload"]) for e in by_subset["v2"]["endpoints"]] == [
        (APP_HOSTS["v2"], mesh.inbound["v2"], "catalog-v2")
    ]

    # delete: gone from the store, from get, and from the sidecars' routes
    code, out, err = await loom("delete", "-f", str(vs), "--control-plane", url)
    assert code == 0, err
    assert "VirtualService default/catalog deleted" in out
    assert not applied_file.exists()
    await synced_version_other_than(url, second)
    code, out, err = await loom("get", "vs", "catalog", "--control-plane", url)
    assert code == 1 and "no VirtualService 'catalog'" in err
    code, _, err = await loom("delete", "vs", "catalog", "--control-plane", url)
    assert code == 1 and "no VirtualService default/catalog" in err
    assert (await run_load(mesh.client, 200, concurrency=8, headers=headers)).bodies.keys() == {"v1", "v2"}


async def test_yaml_that_does_not_load_is_refused_with_file_and_line(mesh) -> None:
    url = mesh.url
    await wait_until(lambda: client_version(url), 15, "the client sidecar to sync")
    before = await client_version(url)
    bad = mesh.workdir / "bad.yaml"
    bad.write_text(virtual_service(90, 10).replace("weight: 10", "wieght: 10"))
    code, _, err = await loom("apply", "-f", str(bad), "--control-plane", url)
    assert code == 1
    line = next(n for n, text in enumerate(bad.read_text().splitlines(), 1) if "wieght" in text)
    assert f"{bad}:{line}" in err and "wieght" in err and "nothing was sent" in err
    assert not (mesh.config / "applied").exists()
    code, _, _ = await loom("get", "vs", "catalog", "--control-plane", url)
    assert code == 1
    assert await client_version(url) == before


async def test_an_analysis_error_is_refused_unless_forced(mesh) -> None:
    url = mesh.url
    await wait_until(lambda: client_version(url), 15, "the client sidecar to sync")
    before = await client_version(url)
    vs = mesh.workdir / "v3.yaml"
    vs.write_text(virtual_service(90, 10, subset2="v3"))
    code, out, err = await loom("apply", "-f", str(vs), "--control-plane", url)
    assert code == 1
    assert "Error [LM0101]" in err and 'subset "v3"' in err and "--force" in err
    assert not (mesh.config / "applied").exists()
    assert await client_version(url) == before

    code, out, err = await loom("apply", "-f", str(vs), "--force", "--control-plane", url)
    assert code == 0, err
    assert "Error [LM0101]" in err and "VirtualService default/catalog applied" in out
    await synced_version_other_than(url, before)


async def test_the_operators_own_files_are_not_written(mesh) -> None:
    url = mesh.url
    own = mesh.config / "catalog.yaml"
    text = own.read_text()
    code, _, err = await loom("apply", "-f", str(own), "--control-plane", url)
    assert code == 1
    assert f"is defined in {own}:" in err and "edit that file" in err
    code, _, err = await loom("delete", "dr", "catalog", "-n", "default", "--control-plane", url)
    assert code == 1 and "remove it from that file" in err
    assert own.read_text() == text and not (mesh.config / "applied").exists()


async def test_loom_apply_shifts_90_10_then_0_100_under_load_without_a_failure(mesh) -> None:
    url, headers = mesh.url, {"Host": "catalog"}
    await wait_until(lambda: client_version(url), 15, "the client sidecar to sync")
    vs = mesh.workdir / "canary.yaml"

    vs.write_text(virtual_service(90, 10))
    before = await client_version(url)
    code, _, err = await loom("apply", "-f", str(vs), "--control-plane", url)
    assert code == 0, err
    ninety_ten = await synced_version_other_than(url, before)
    split = await run_load(mesh.client, 2000, concurrency=16, headers=headers)
    assert split.ok == 2000, (split.statuses, split.errors[:3])
    assert abs(split.share("v2") - 0.10) <= 0.03, split.bodies

    load = asyncio.create_task(run_load(mesh.client, 20_000, concurrency=16, headers=headers))
    await wait_until(lambda: sum(b.requests for b in mesh.backends.values()) >= 3000, 30, "load under way")
    vs.write_text(virtual_service(0, 100))
    code, _, err = await loom("apply", "-f", str(vs), "--control-plane", url)
    assert code == 0, err
    await synced_version_other_than(url, ninety_ten)
    assert not load.done(), "the shift must happen while the load runs"
    during = await load
    assert during.ok == 20_000, (during.statuses, during.errors[:3])
    assert during.bodies["v1"] > 0 and during.bodies["v2"] > 0
    after = await run_load(mesh.client, 2000, concurrency=16, headers=headers)
    assert after.bodies == {"v2": 2000}, after.bodies
