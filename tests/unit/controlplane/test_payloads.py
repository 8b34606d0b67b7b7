"""Payloads encoded with what proxies share held once: the same bytes as encoding each snapshot
whole, digests that depend on content only, and shared runs kept once."""

from __future__ import annotations

import json

import msgspec
import pytest

from loom.api import load_text
from loom.controlplane.compiler import MeshInputs, compile_snapshot
from loom.controlplane.payloads import PayloadEncoder
from loom.controlplane.push import PushEngine
from loom.controlplane.registry import WorkloadRegistry
from loom.snapshot import parse_snapshot, snapshot_to_builtins
from tests.unit.compiler.support import SEED_WORKLOADS, seed_mesh, workload

MESH = """
apiVersion: v1
kind: Service
metadata: {name: catalog, namespace: shop}
spec:
  selector: {app: catalog}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: backend}
spec:
  selector: {app: ratings}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: catalog, namespace: shop}
spec:
  host: catalog
  trafficPolicy: {connectionPool: {tcp: {connectTimeout: 250ms}}, outlierDetection: {interval: 5s}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: catalog, namespace: shop}
spec:
  hosts: [catalog]
  http:
  - timeout: 3s
    retries: {attempts: 2, perTryTimeout: 500ms}
    route:
    - {destination: {host: catalog, subset: v1}, weight: WEIGHT}
    - {destination: {host: catalog, subset: v2}, weight: REST}
"""

WORKLOADS = [
    workload(f"{app}-{i}", namespace, {"app": app, "version": f"v{1 + i % 2}"}, f"10.0.{n}.{i + 1}")
    for n, (app, namespace) in enumerate((("catalog", "shop"), ("reviews", "shop"), ("ratings", "backend")))
    for i in range(3)
]


def resources(weight: int = 90):
    result = load_text(MESH.replace("WEIGHT", str(weight)).replace("REST", str(100 - weight)), "mesh.yaml")
    assert not result.problems
    return result.resources


def snapshots(resources_, workloads):
    inputs = MeshInputs.build(resources_, workloads)
    return [compile_snapshot(inputs, w, version="").snapshot for w in workloads if w.sidecar is not None]


def whole(snapshot, version: str) -> bytes:
    """What each proxy was sent before payloads were shared: the snapshot encoded whole."""
    body = snapshot_to_builtins(snapshot)
    body["version"] = version
    return msgspec.json.encode({"version": version, "snapshot": body})


@pytest.mark.parametrize("case", ["mesh", "seeds"])
def test_joined_chunks_are_the_snapshot_encoded_whole(case: str) -> None:
    found = snapshots(resources(), WORKLOADS) if case == "mesh" else snapshots(seed_mesh(), SEED_WORKLOADS)
    encoder = PayloadEncoder()
    for n, snapshot in enumerate(found):
        payload = encoder.encode(snapshot).payload(f"abc.{n}")
        assert payload.joined() == whole(snapshot, f"abc.{n}")
        assert payload.size == len(payload.joined())
        assert json.loads(payload.joined())["snapshot"]["version"] == f"abc.{n}"


def test_what_proxies_share_is_encoded_once_and_held_once() -> None:
    found = snapshots(resources(), WORKLOADS)
    encoder = PayloadEncoder()
    encoded = {(s.node.namespace, s.node.workload): encoder.encode(s).parts for s in found}
    # The first proxy of a namespace meets its outbound clusters first; the next ones share them.
    second, third = encoded[("shop", "catalog-1")], encoded[("shop", "reviews-0")]
    shared = [p for p in second if p is not None and any(p is other for other in third)]
    assert sum(len(p) for p in shared) > sum(len(p) for p in second if p is not None) / 2
    # backend's proxies see the same services with the same rules: other objects, the same bytes
    backend = encoded[("backend", "ratings-1")]
    assert [p for p in backend if p is not None and any(p is other for other in shared)]


def test_the_digest_depends_on_content_only() -> None:
    found = snapshots(resources(), WORKLOADS)
    together = [PayloadEncoder().encode(s).digest for s in found]
    alone = [PayloadEncoder().encode(s).digest for s in found]
    assert together == alone
    again = snapshots(resources(), WORKLOADS)  # new objects, same content
    assert [PayloadEncoder().encode(s).digest for s in again] == together
    changed = snapshots(resources(weight=80), WORKLOADS)
    assert not set(PayloadEncoder().encode(s).digest for s in changed) & set(together)


def test_unchanged_runs_are_reused_across_recompiles() -> None:
    first = PayloadEncoder()
    parts = [first.encode(s).parts for s in snapshots(resources(), WORKLOADS)][-1]
    second = PayloadEncoder(first.interned)
    parts_again = [second.encode(s).parts for s in snapshots(resources(), WORKLOADS)][-1]
    shared = [p for p in parts if p is not None and any(p is d for d in first.interned.values())]
    assert shared
    assert all(any(p is q for q in parts_again) for p in shared)


async def test_versions_move_only_when_a_proxy_s_snapshot_changes() -> None:
    registry = WorkloadRegistry()
    for w in WORKLOADS:
        registry.register(w)
    push = PushEngine(registry)
    push.resources = list(resources())
    assert push.recompile() == len(WORKLOADS)
    versions = {key: state.version for key, state in push.proxies.items()}
    assert push.recompile() == 0
    assert {key: state.version for key, state in push.proxies.items()} == versions
    push.resources = list(resources(weight=80))
    assert push.recompile() == len(WORKLOADS)  # every proxy routes to catalog
    for key, state in push.proxies.items():
        assert state.version != versions[key]
        sent = json.loads(state.payload.joined())
        assert sent["version"] == sent["snapshot"]["version"] == state.version


def test_equal_copies_of_shared_elements_encode_the_same() -> None:
    found = snapshots(resources(), WORKLOADS)
    encoder = PayloadEncoder()
    for snapshot in found:
        encoder.encode(snapshot)
    copy = parse_snapshot(snapshot_to_builtins(found[-1]))  # equal objects, none of them the same
    encoded = encoder.encode(copy)
    assert encoded.payload("c.1").joined() == whole(copy, "c.1")
    assert encoded.digest == PayloadEncoder().encode(found[-1]).digest
