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
from loom.snapshot import snapshot_to_builtins
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
    encoder = PayloadEncoder(found)
    for n, snapshot in enumerate(found):
        payload = encoder.encode(snapshot).payload(f"abc.{n}")
        assert payload.joined() == whole(snapshot, f"abc.{n}")
        assert payload.size == len(payload.joined())
        assert json.loads(payload.joined())["snapshot"]["version"] == f"abc.{n}"


def test_what_proxies_share_is_encoded_once_and_held_once() -> None:
    found = snapshots(resources(), WORKLOADS)
    encoder = PayloadEncoder(found)
    shop = [encoder.encode(s).parts for s in found if s.node.namespace == "shop"]
    shared = [p for p in shop[0] if p is not None and any(p is other for other in shop[1])]
    assert sum(len(p) for p in shared) > sum(len(p) for p in shop[0] if p is not None) / 2
    # backend's proxies see the same services with the same rules: other objects, the same bytes
    backend = [encoder.encode(s).parts for s in found if s.node.namespace == "backend"]
    assert [p for p in backend[0] if p is not None and any(p is other for other in shared)]


def test_the_digest_depends_on_content_only() -> None:
    found = snapshots(resources(), WORKLOADS)
    together = [PayloadEncoder(found).encode(s).digest for s in found]
    alone = [PayloadEncoder([s]).encode(s).digest for s in found]
    assert together == alone
    again = snapshots(resources(), WORKLOADS)  # new objects, same content
    assert [PayloadEncoder(again).encode(s).digest for s in again] == together
    changed = snapshots(resources(weight=80), WORKLOADS)
    assert not set(PayloadEncoder(changed).encode(s).digest for s in changed) & set(together)


def test_unchanged_runs_are_reused_across_recompiles() -> None:
    found = snapshots(resources(), WORKLOADS)
    first = PayloadEncoder(found)
    parts = first.encode(found[0]).parts
    again = snapshots(resources(), WORKLOADS)  # new objects, same content
    parts_again = PayloadEncoder(again, first.interned).encode(again[0]).parts
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
