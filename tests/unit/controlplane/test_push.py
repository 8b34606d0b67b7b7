"""The registry and the push engine, without sockets: heartbeats and expiry, versions that move
only for proxies whose snapshot changed, the watch, ACK/NACK, and the restart warm-up."""

from __future__ import annotations

import asyncio
import dataclasses
from types import MappingProxyType

from loom.api import load_text
from loom.controlplane.push import PushEngine
from loom.controlplane.registry import WorkloadRegistry
from loom.controlplane.workloads import SidecarPorts, Workload

MESH = """
apiVersion: v1
kind: Service
metadata: {name: catalog, namespace: default}
spec:
  selector: {app: catalog}
  ports: [{name: http, port: 80, targetPort: 9080}]
"""

ONLY_FOR_CLIENT_B = """
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: catalog-for-b, namespace: default}
spec:
  host: catalog
  workloadSelector: {matchLabels: {app: client-b}}
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def workload(name: str, app: str, address: str, outbound: int) -> Workload:
    return Workload(
        name=name,
        namespace="default",
        service_account=app,
        labels=MappingProxyType({"app": app}),
        address=address,
        app_ports=(9080,),
        sidecar=SidecarPorts(outbound=outbound, inbound=MappingProxyType({9080: outbound + 1})),
    )


def resources(*texts: str) -> list:
    loaded = [load_text(text, f"doc{i}.yaml") for i, text in enumerate(texts)]
    assert all(not result.problems for result in loaded), [r.problems for r in loaded]
    return [resource for result in loaded for resource in result.resources]


def test_registry_heartbeats_and_expiry() -> None:
    clock = Clock()
    registry = WorkloadRegistry(grace=30, clock=clock)
    a = workload("a", "client-a", "127.0.0.2", 15001)
    assert registry.register(a) and registry.generation == 1
    assert not registry.register(a), "re-registering the same workload changes nothing"
    clock.now += 20
    assert registry.seen(a.key)
    clock.now += 20
    assert registry.expire() == [], "seen 20 s ago: still within the grace period"
    clock.now += 31
    assert registry.expire() == [a]
    assert registry.workloads() == [] and registry.generation == 2
    assert not registry.seen(a.key)


async def test_only_proxies_whose_snapshot_changed_get_a_new_version() -> None:
    registry = WorkloadRegistry(clock=Clock())
    for w in (
        workload("a", "client-a", "127.0.0.2", 15001),
        workload("b", "client-b", "127.0.0.3", 15011),
        workload("catalog", "catalog", "127.0.0.4", 15021),
    ):
        registry.register(w)
    push = PushEngine(registry, warmup=0)
    push.resources = resources(MESH)
    assert push.recompile() == 3
    first = {key: state.version for key, state in push.proxies.items()}
    assert len(set(first.values())) == 3, "every version is a new number"

    assert push.recompile() == 0, "nothing changed: nobody is woken"
    push.resources = resources(MESH, ONLY_FOR_CLIENT_B)
    assert push.recompile() == 1
    moved = {key for key, state in push.proxies.items() if state.version != first[key]}
    assert moved == {("default", "b")}


async def test_the_watch_answers_at_once_waits_for_a_change_or_times_out() -> None:
    registry = WorkloadRegistry(clock=Clock())
    registry.register(workload("a", "client-a", "127.0.0.2", 15001))
    push = PushEngine(registry, warmup=0)
    push.resources = resources(MESH)
    push.recompile()
    key = ("default", "a")
    state = await push.wait_for_change(key, "", wait=1)
    assert state is not None and b'"snapshot"' in state.payload.joined()
    assert await push.wait_for_change(key, state.version, wait=0.05) is None

    first_version = state.version
    waiting = asyncio.create_task(push.wait_for_change(key, first_version, wait=5))
    await asyncio.sleep(0)
    assert not waiting.done()
    # A new catalog endpoint changes a's outbound cluster: its watch returns the new version.
    registry.register(workload("catalog-1", "catalog", "127.0.0.5", 15031))
    assert push.recompile() >= 1
    newer = await asyncio.wait_for(waiting, 5)
    assert newer is not None and newer.version == push.proxies[key].version != first_version


async def test_ack_nack_and_status() -> None:
    registry = WorkloadRegistry(clock=Clock())
    registry.register(workload("a", "client-a", "127.0.0.2", 15001))
    push = PushEngine(registry, warmup=0)
    push.resources = resources(MESH)
    push.recompile()
    key = ("default", "a")
    version = push.proxies[key].version
    assert push.status()[0]["status"] == "STALE"
    assert push.acknowledge(key, version, "cannot listen: address in use")
    row = push.status()[0]
    assert row["status"] == "NACKED" and "address in use" in row["error"]
    assert push.acknowledge(key, version, None)
    assert push.status()[0]["status"] == "SYNCED" and push.status()[0]["error"] is None
    assert not push.acknowledge(("default", "nobody"), version, None)


async def test_a_restarted_control_plane_keeps_earlier_snapshots_during_warm_up() -> None:
    registry = WorkloadRegistry()
    registry.register(workload("a", "client-a", "127.0.0.2", 15001))
    push = PushEngine(registry, warmup=0.2)
    push.resources = resources(MESH)
    push.recompile()
    key = ("default", "a")
    # A sidecar that holds a version from before the restart waits out the warm-up...
    assert await push.wait_for_change(key, "0.7", wait=0.05) is None
    # ...then gets the new snapshot; a sidecar with nothing is served at once.
    state = await push.wait_for_change(key, "0.7", wait=1)
    assert state is not None and state.version.startswith(push.epoch + ".")
    assert await push.wait_for_change(key, "", wait=0.01) is not None


async def test_a_readiness_flip_moves_the_proxies_that_route_to_it_and_a_repeat_moves_none() -> None:
    registry = WorkloadRegistry(clock=Clock())
    client = workload("a", "client-a", "127.0.0.2", 15001)
    catalog = workload("catalog", "catalog", "127.0.0.4", 15021)
    registry.register(client)
    registry.register(dataclasses.replace(catalog, ready=False))
    push = PushEngine(registry, warmup=0)
    push.resources = resources(MESH)
    push.recompile()
    first = {key: state.version for key, state in push.proxies.items()}

    # Registering again as it was (a sidecar reconnecting) changes nothing and wakes nobody.
    assert not registry.register(dataclasses.replace(catalog, ready=False))
    assert push.recompile() == 0

    assert registry.register(catalog)  # the app answers now
    assert push.recompile() == 2  # the client and catalog itself both route to catalog
    assert all(state.version != first[key] for key, state in push.proxies.items())
    assert {row["workload"]: row["ready"] for row in push.status()} == {"a": True, "catalog": True}
