"""The etcd store end to end: a real etcd, ``loom controlplane --store etcd://...`` processes, and
resources written into etcd from outside (as another replica or ``etcdctl`` would) — served,
refused when they do not load, seen by every replica, and pushed to a connected sidecar."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from loom.api import Resource
from loom.controlplane.etcd_client import EtcdClient, prefix_end
from loom.controlplane.etcd_store import BadStoreURL, EtcdLocation, EtcdStore, parse_store_url
from loom.controlplane.store import ApplyRefused
from tests.support.controlplane import get_json, plane_at
from tests.support.etcd import EtcdServer, etcd_server
from tests.support.load import run_load
from tests.support.mesh import (
    LoomProcess,
    Mesh,
    destination_rule,
    free_port,
    running_mesh,
    service,
    start_plane,
    stop_all,
    virtual_service,
)
from tests.support.proxy import wait_until

__all__ = ["etcd_server"]  # the fixture, used by name

PREFIX = "/loom/resources/"


# resources --------------------------------------------------------------------------------


def key_of(doc: dict[str, Any]) -> str:
    meta = doc["metadata"]
    return f"{PREFIX}{doc['kind']}/{meta.get('namespace', 'default')}/{meta['name']}"


async def put(client: EtcdClient, doc: dict[str, Any]) -> int:
    """Write one resource the way another replica (or etcdctl) would: straight into etcd."""
    return await client.put(key_of(doc), yaml.safe_dump(doc, sort_keys=False))


# processes --------------------------------------------------------------------------------


@pytest.fixture
async def etcd_client(etcd_server: EtcdServer) -> AsyncIterator[EtcdClient]:
    client = EtcdClient([etcd_server.url])
    yield client
    await client.close()


@pytest.fixture
async def control_planes(tmp_path: Path, etcd_server: EtcdServer) -> AsyncIterator[Any]:
    """``start()`` → the URL of a new ``loom controlplane --store etcd://...``; all stopped after.
    The replicas share one state directory: one CA, one operator token."""
    started: list[LoomProcess] = []
    state_dir = tmp_path / "controlplane-state"

    async def start() -> str:
        plane = LoomProcess(
            tmp_path,
            f"controlplane-{len(started) + 1}",
            ["controlplane", "--store", etcd_server.store_url, "--state-dir", str(state_dir), "--port", "0"],
        )
        started.append(plane)
        return await start_plane(plane, state_dir)

    yield start
    await stop_all(started)


async def names(url: str) -> set[tuple[str, str, str]]:
    body = await get_json(f"{url}/v1/resources")
    return {(r["kind"], r["namespace"], r["name"]) for r in body["resources"]}


def has(url: str, *expected: tuple[str, str, str], absent: tuple[tuple[str, str, str], ...] = ()) -> Any:
    async def check() -> bool:
        now = await names(url)
        return set(expected) <= now and not set(absent) & now

    return check


CATALOG_SERVICE = ("Service", "default", "catalog")
CATALOG_DR = ("DestinationRule", "default", "catalog")
CATALOG_VS = ("VirtualService", "default", "catalog")


# the control plane on etcd ----------------------------------------------------------------


async def test_the_control_plane_serves_what_etcd_holds_and_follows_its_changes(
    etcd_client: EtcdClient, control_planes: Any
) -> None:
    await put(etcd_client, service())
    await put(etcd_client, destination_rule())
    url = await control_planes()
    body = await get_json(f"{url}/v1/resources")
    assert {(r["kind"], r["namespace"], r["name"]) for r in body["resources"]} == {
        CATALOG_SERVICE,
        CATALOG_DR,
    }
    assert body["last_error"] is None
    files = {r["file"] for r in body["resources"]}
    assert files == {f"{PREFIX}Service/default/catalog", f"{PREFIX}DestinationRule/default/catalog"}

    # Written by another replica (or etcdctl) after the start: the watch brings it in.
    await put(etcd_client, virtual_service(100))
    await wait_until(has(url, CATALOG_VS), 10, "the VirtualService put into etcd to be served")

    assert await etcd_client.delete(key_of(destination_rule()))
    await wait_until(has(url, CATALOG_VS, absent=(CATALOG_DR,)), 10, "the deleted DestinationRule to go")


async def test_a_bad_document_is_refused_and_the_last_good_set_stays(
    etcd_client: EtcdClient, control_planes: Any
) -> None:
    await put(etcd_client, service())
    url = await control_planes()
    bad = virtual_service(90)
    bad_text = yaml.safe_dump(bad, sort_keys=False).replace("weight", "wieght")
    await etcd_client.put(key_of(bad), bad_text)

    async def refused() -> bool:
        body = await get_json(f"{url}/v1/resources")
        return bool(body["last_error"]) and "wieght" in body["last_error"]

    await wait_until(refused, 10, "the control plane to refuse the bad document")
    body = await get_json(f"{url}/v1/resources")
    assert f"{PREFIX}VirtualService/default/catalog:" in body["last_error"], body["last_error"]
    assert {(r["kind"], r["namespace"], r["name"]) for r in body["resources"]} == {CATALOG_SERVICE}

    # A good change meanwhile is refused too (the set does not load as a whole) ...
    await put(etcd_client, destination_rule())
    await asyncio.sleep(0.5)
    assert await names(url) == {CATALOG_SERVICE}
    # ... until the bad document is fixed: then everything is in force and the error is gone.
    await put(etcd_client, virtual_service(90))
    await wait_until(has(url, CATALOG_SERVICE, CATALOG_DR, CATALOG_VS), 10, "the fixed set to load")
    assert (await get_json(f"{url}/v1/resources"))["last_error"] is None

    # A document under a key that names another resource is refused, saying where it belongs.
    await etcd_client.put(f"{PREFIX}Service/default/orders", yaml.safe_dump(service(name="payments")))

    async def mismatch_refused() -> bool:
        error = (await get_json(f"{url}/v1/resources"))["last_error"] or ""
        return f"put it under {PREFIX}Service/default/payments" in error

    await wait_until(mismatch_refused, 10, "the mismatched key to be refused")


async def test_the_control_plane_does_not_start_without_a_good_set(
    tmp_path: Path, etcd_server: EtcdServer, etcd_client: EtcdClient
) -> None:
    await put(etcd_client, service())
    await etcd_client.put(f"{PREFIX}VirtualService/default/catalog", "kind: VirtualService\nspec: [\n")
    state = ["--state-dir", str(tmp_path / "controlplane-state")]
    plane = LoomProcess(
        tmp_path, "refused", ["controlplane", "--store", etcd_server.store_url, *state, "--port", "0"]
    )
    assert await plane.run_to_exit() == 2
    out = " ".join(plane.log().split())
    assert "does not load" in out and f"{PREFIX}VirtualService/default/catalog:" in out, out

    unreachable = f"etcd://127.0.0.1:{free_port()}"
    plane = LoomProcess(
        tmp_path, "unreachable", ["controlplane", "--store", unreachable, *state, "--port", "0"]
    )
    assert await plane.run_to_exit() == 2
    out = " ".join(plane.log().split())
    assert "cannot read the store" in out and "cannot reach etcd" in out, out


async def test_two_replicas_on_one_etcd_see_the_same_change(
    etcd_server: EtcdServer, etcd_client: EtcdClient, control_planes: Any
) -> None:
    await put(etcd_client, service())
    first, second = await control_planes(), await control_planes()
    for url in (first, second):
        assert await names(url) == {CATALOG_SERVICE}

    # Written through the store's own API (what `loom apply` will use), from a third party.
    writer = EtcdStore(etcd_server.store_url, lambda resources: None)
    try:
        text = yaml.safe_dump_all([destination_rule(), virtual_service(50)], sort_keys=False)
        applied = await writer.apply(text)
        assert [(r.kind, r.name) for r in applied] == [
            ("DestinationRule", "catalog"),
            ("VirtualService", "catalog"),
        ]
        for url in (first, second):
            await wait_until(has(url, CATALOG_SERVICE, CATALOG_DR, CATALOG_VS), 10, f"{url} to see the apply")

        assert await writer.delete("VirtualService", "default", "catalog")
        assert not await writer.delete("VirtualService", "default", "catalog")
        for url in (first, second):
            await wait_until(has(url, CATALOG_DR, absent=(CATALOG_VS,)), 10, f"{url} to see the delete")
    finally:
        await writer.close()


async def test_loom_apply_get_delete_through_one_replica_reach_the_other(
    tmp_path: Path, etcd_client: EtcdClient, control_planes: Any
) -> None:
    await put(etcd_client, service())
    first, second = await control_planes(), await control_planes()

    def loom(*args: str) -> tuple[int, str]:
        argv = [sys.executable, "-m", "loom.cli.main", *args]
        env = {**os.environ, **plane_at(first).env()}  # the replicas share the state directory
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env=env)
        return done.returncode, done.stdout + done.stderr

    manifest = tmp_path / "catalog.yaml"
    manifest.write_text(yaml.safe_dump_all([destination_rule(), virtual_service(70)], sort_keys=False))
    code, out = loom("apply", "-f", str(manifest), "--control-plane", first)
    assert code == 0 and "VirtualService default/catalog applied" in out, out
    assert "not analyzed" not in out, out  # the etcd store gives its YAML: the apply was analyzed
    await wait_until(has(second, CATALOG_DR, CATALOG_VS), 10, "the other replica to serve the apply")
    stored = await etcd_client.get(key_of(virtual_service(70)))
    assert stored is not None and yaml.safe_load(stored.value) == virtual_service(70)

    code, out = loom("get", "vs", "catalog", "-o", "yaml", "--control-plane", second)
    assert code == 0 and yaml.safe_load(out)["spec"] == virtual_service(70)["spec"], out
    code, out = loom("delete", "vs", "catalog", "--control-plane", second)
    assert code == 0, out
    await wait_until(has(first, CATALOG_DR, absent=(CATALOG_VS,)), 10, "the first replica to see the delete")
    assert await etcd_client.get(key_of(virtual_service(70))) is None


async def test_the_watch_survives_an_etcd_restart(
    etcd_server: EtcdServer, etcd_client: EtcdClient, control_planes: Any
) -> None:
    await put(etcd_client, service())
    url = await control_planes()
    await etcd_server.restart()
    await put(etcd_client, destination_rule())
    await wait_until(
        has(url, CATALOG_SERVICE, CATALOG_DR), 20, "the change after etcd's restart to be served"
    )


# a sidecar on a control plane on etcd -----------------------------------------------------


async def test_a_sidecar_gets_a_new_snapshot_when_a_virtualservice_is_put(
    tmp_path: Path, etcd_client: EtcdClient, control_planes: Any
) -> None:
    async def control_plane(mesh: Mesh) -> str:
        await put(etcd_client, service(mesh.app_port))
        await put(etcd_client, destination_rule())
        await put(etcd_client, virtual_service(100))
        return await control_planes()

    async with running_mesh(tmp_path, control_plane) as mesh:
        url = mesh.url

        async def client_row() -> dict[str, Any] | None:
            rows = await get_json(f"{url}/v1/proxy-status")
            return next((row for row in rows if row["workload"] == "client"), None)

        async def client_synced(other_than: str = "") -> bool:
            row = await client_row()
            return row is not None and row["status"] == "SYNCED" and row["version"] != other_than

        await wait_until(client_synced, 15, "the client's sidecar to be SYNCED")
        headers = {"Host": "catalog"}
        before = await run_load(mesh.client, 200, concurrency=8, headers=headers)
        assert before.bodies == {"v1": 200}, (before.bodies, before.errors[:3])
        version = (await client_row())["version"]  # type: ignore[index]

        await put(etcd_client, virtual_service(0))
        await wait_until(
            lambda: client_synced(other_than=version), 15, "the client's sidecar to apply the put"
        )
        after = await run_load(mesh.client, 200, concurrency=8, headers=headers)
        assert after.bodies == {"v2": 200}, (after.bodies, after.errors[:3])


# the store in process ---------------------------------------------------------------------


class Changes:
    def __init__(self) -> None:
        self.sets: list[list[Resource]] = []

    def __call__(self, resources: list[Resource]) -> None:
        self.sets.append(list(resources))

    def last(self) -> set[tuple[str, str, str]]:
        return {(r.kind, r.namespace, r.name) for r in self.sets[-1]} if self.sets else set()


async def test_apply_writes_all_documents_in_one_revision_or_nothing(
    etcd_server: EtcdServer, etcd_client: EtcdClient
) -> None:
    changes = Changes()
    store = EtcdStore(etcd_server.store_url, changes)
    try:
        assert await store.open()
        assert changes.last() == set()
        watch = asyncio.create_task(store.watch())
        text = "# the catalog\n" + yaml.safe_dump_all(
            [service(), destination_rule(), virtual_service(80)], sort_keys=False
        )
        await store.apply(text)
        await wait_until(lambda: changes.last() == {CATALOG_SERVICE, CATALOG_DR, CATALOG_VS}, 10, "the apply")
        found = await etcd_client.get_prefix(PREFIX)
        assert len({kv.mod_revision for kv in found.kvs}) == 1, found  # one transaction
        stored = {kv.key: kv.value.decode() for kv in found.kvs}
        assert yaml.safe_load(stored[key_of(virtual_service(80))]) == virtual_service(80)
        assert all(not text.startswith("---") for text in stored.values())
        assert stored[key_of(service())].startswith("# the catalog\n")  # the text as written
        assert store.sources == stored  # what GET /v1/resources?sources=1 gives

        # One bad document: nothing is written, and the problem says which line.
        bad = yaml.safe_dump_all([service(name="orders"), virtual_service(80)], sort_keys=False)
        bad = bad.replace("weight: 20", "weight: twenty")
        with pytest.raises(ApplyRefused) as refused:
            await store.apply(bad)
        line = next(n for n, text in enumerate(bad.splitlines(), 1) if "twenty" in text)
        assert f"<apply>:{line}" in str(refused.value), str(refused.value)
        assert len((await etcd_client.get_prefix(PREFIX)).kvs) == 3

        with pytest.raises(ApplyRefused, match="also on line"):
            await store.apply(yaml.safe_dump_all([service(), service()]))
        with pytest.raises(ApplyRefused, match="no resource"):
            await store.apply("# nothing\n")
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
    finally:
        await store.close()


async def test_a_watch_behind_a_compaction_reads_everything_again(
    etcd_server: EtcdServer, etcd_client: EtcdClient
) -> None:
    changes = Changes()
    store = EtcdStore(etcd_server.store_url, changes)
    try:
        await put(etcd_client, service())
        assert await store.open()
        # Changes the store has not seen, then compacted away before its watch starts.
        await put(etcd_client, destination_rule())
        revision = await put(etcd_client, virtual_service(100))
        async with aiohttp.ClientSession() as session:
            compact = session.post(f"{etcd_server.url}/v3/kv/compaction", json={"revision": str(revision)})
            async with compact as response:
                assert response.status == 200, await response.text()
        watch = asyncio.create_task(store.watch())
        await wait_until(lambda: changes.last() == {CATALOG_SERVICE, CATALOG_DR, CATALOG_VS}, 10, "a re-read")
        await etcd_client.delete(key_of(destination_rule()))
        await wait_until(lambda: changes.last() == {CATALOG_SERVICE, CATALOG_VS}, 10, "the watch afterwards")
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
    finally:
        await store.close()


# without etcd -----------------------------------------------------------------------------


def test_store_urls() -> None:
    assert parse_store_url("etcd://127.0.0.1:2379") == EtcdLocation(("http://127.0.0.1:2379",))
    both = parse_store_url("etcd://10.0.0.1,10.0.0.2:2380/staging/")
    assert both.endpoints == ("http://10.0.0.1:2379", "http://10.0.0.2:2380")
    assert both.key("Service", "default", "catalog") == "/staging/resources/Service/default/catalog"
    assert parse_store_url("etcd://[::1]:2379").endpoints == ("http://[::1]:2379",)
    assert str(both) == "etcd://10.0.0.1:2379,10.0.0.2:2380/staging"
    for bad in ("http://127.0.0.1:2379", "etcd://", "etcd://host:port", "etcd://host:99999"):
        with pytest.raises(BadStoreURL):
            parse_store_url(bad)
    assert prefix_end(b"/loom/resources/") == b"/loom/resources0"
    assert prefix_end(b"a\xff") == b"b"


def test_the_command_takes_a_folder_or_a_store_not_both(tmp_path: Path) -> None:
    def run(*args: str) -> tuple[int, str]:
        argv = [sys.executable, "-m", "loom.cli.main", "controlplane", *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        return done.returncode, " ".join(done.stderr.split())

    code, out = run("--config-dir", str(tmp_path), "--store", "etcd://127.0.0.1:2379")
    assert code == 2 and "either --config-dir DIR or --store" in out, out
    code, out = run()
    assert code == 2 and "either --config-dir DIR or --store" in out, out
    code, out = run("--store", "http://127.0.0.1:2379")
    assert code == 2 and "starts with etcd://" in out, out


async def test_the_client_fails_over_and_reopens_an_idle_watch(
    etcd_server: EtcdServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "loom.controlplane.etcd")
    dead = f"http://127.0.0.1:{free_port()}"
    client = EtcdClient([dead, etcd_server.url], timeout=2.0, watch_idle=0.3)
    try:
        revision = await client.put(f"{PREFIX}a", "1")  # the dead member is skipped
        assert (await client.get(f"{PREFIX}a")) is not None
        seen: list[tuple[str, str]] = []

        async def follow() -> None:
            async for events in client.watch_prefix(PREFIX, revision + 1):
                seen.extend((event.type, event.key) for event in events)

        watch = asyncio.create_task(follow())
        await asyncio.sleep(1.0)  # idle longer than watch_idle: the watch is opened again, quietly
        await client.put(f"{PREFIX}b", "2")
        assert await client.delete(f"{PREFIX}a")
        await wait_until(lambda: seen == [("PUT", f"{PREFIX}b"), ("DELETE", f"{PREFIX}a")], 10, "the events")
        assert "opening it again" in caplog.text
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
    finally:
        await client.close()
