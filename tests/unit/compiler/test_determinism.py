"""Identical inputs give identical snapshots, whatever the order they come in; the memo changes nothing."""

from __future__ import annotations

import random

from loom.controlplane.compiler import MeshInputs, MeshSettings, compile_snapshot
from loom.snapshot import dump_snapshot
from tests.unit.compiler.support import (
    SEED_EXAMPLES,
    SEED_WORKLOADS,
    by_name,
    load_file,
    resources,
    routes,
    seed_mesh,
    weights,
)

EVERYTHING = [*seed_mesh(), *(r for path in sorted(SEED_EXAMPLES.glob("*.yaml")) for r in load_file(path))]


def test_compiling_twice_gives_the_same_snapshot() -> None:
    for proxy in SEED_WORKLOADS:
        first = compile_snapshot(MeshInputs.build(EVERYTHING, list(SEED_WORKLOADS)), proxy, version="3")
        second = compile_snapshot(MeshInputs.build(EVERYTHING, list(SEED_WORKLOADS)), proxy, version="3")
        assert first == second
        assert dump_snapshot(first.snapshot) == dump_snapshot(second.snapshot)


def test_the_order_of_resources_and_workloads_does_not_matter() -> None:
    expected = compile_snapshot(
        MeshInputs.build(EVERYTHING, list(SEED_WORKLOADS)), by_name("sleep"), version="1"
    )
    rng = random.Random(7)
    for _ in range(5):
        found, workloads = list(EVERYTHING), list(SEED_WORKLOADS)
        rng.shuffle(found)
        rng.shuffle(workloads)
        assert compile_snapshot(MeshInputs.build(found, workloads), by_name("sleep"), version="1") == expected


def test_the_outbound_memo_is_invisible() -> None:
    inputs = MeshInputs.build(EVERYTHING, list(SEED_WORKLOADS))
    v1 = compile_snapshot(inputs, by_name("orders-api-v1"), version="1")
    v2 = compile_snapshot(inputs, by_name("orders-api-v2"), version="1")  # other labels: compiled afresh
    again = compile_snapshot(inputs, by_name("orders-api-v1"), version="2")
    fresh = compile_snapshot(
        MeshInputs.build(EVERYTHING, list(SEED_WORKLOADS)), by_name("orders-api-v1"), version="2"
    )
    assert again == fresh
    assert again.snapshot.route_configs[0] == v1.snapshot.route_configs[0]
    assert v2.snapshot.node.labels["version"] == "v2"


def test_mesh_settings_given_explicitly_win() -> None:
    mesh = MeshSettings(
        trust_domain="example.org", cluster_domain="corp.local", access_log_file="/tmp/access.log"
    )
    snapshot = compile_snapshot(
        MeshInputs.build(EVERYTHING, list(SEED_WORKLOADS), mesh), by_name("sleep"), version="1"
    ).snapshot
    assert (snapshot.node.trust_domain, snapshot.node.cluster_domain) == ("example.org", "corp.local")
    assert snapshot.telemetry.access_log is not None and snapshot.telemetry.access_log.encoding == "TEXT"
    assert "reviews.default.svc.corp.local:9080" in {
        vh.name for vh in snapshot.route_configs[0].virtual_hosts
    }


def test_the_memo_tells_apart_proxies_that_source_labels_tell_apart() -> None:
    text = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{sourceLabels: {app: my-app}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
"""
    inputs = MeshInputs.build([*seed_mesh(), *resources(text)], list(SEED_WORKLOADS))
    assert inputs.label_keys == {"app"}
    reviews = "reviews.default.svc.cluster.local"
    for proxy, subset in (
        (by_name("my-app-v1"), "v2"),
        (by_name("sleep"), "v1"),
        (by_name("my-app-v2"), "v2"),
    ):
        snapshot = compile_snapshot(inputs, proxy, version="1").snapshot
        assert weights(routes(snapshot, reviews, 9080)[0]) == {f"outbound|9080|{subset}|{reviews}": 100}


def test_warnings_start_with_the_mesh_wide_ones() -> None:
    inputs = MeshInputs.build(EVERYTHING, list(SEED_WORKLOADS))
    compiled = compile_snapshot(inputs, by_name("sleep"), version="1")
    assert inputs.warnings
    assert compiled.warnings[: len(inputs.warnings)] == inputs.warnings
    assert len(set(compiled.warnings)) == len(compiled.warnings)
