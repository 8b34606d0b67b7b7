"""The inbound side: one listener per app port the sidecar fronts."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from loom.controlplane.workloads import SidecarPorts, Workload
from loom.snapshot.model import Protocol
from tests.unit.compiler.support import cluster, compile_for, listener, proxy_config, resources, round_trip

SERVICES = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}, {name: http-metrics, port: 9100, targetPort: 9100}]
---
apiVersion: v1
kind: Service
metadata: {name: alias, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: tcp, port: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: other, namespace: elsewhere}
spec:
  selector: {app: web}
  ports: [{name: http, port: 7000}]
"""


def web(inbound: dict[int, int]) -> Workload:
    return Workload(
        name="web-0",
        namespace="shop",
        service_account="web",
        labels=MappingProxyType({"app": "web", "version": "v1"}),
        address="10.3.0.1",
        app_ports=tuple(inbound),
        sidecar=SidecarPorts(outbound=15001, inbound=MappingProxyType(inbound), admin=15000),
    )


def test_one_listener_per_fronted_target_port() -> None:
    proxy = web({8080: 15006, 5432: 15007, 7000: 15008})
    snapshot = compile_for(resources(SERVICES), proxy, [proxy]).snapshot
    round_trip(snapshot)
    proxy_config(snapshot)
    inbound = [li for li in snapshot.listeners if li.direction == "inbound"]
    # 9100 is not fronted by the sidecar; 7000 is only selected from another namespace.
    assert [(li.name, li.port, li.protocol) for li in inbound] == [
        ("inbound-5432", 15007, Protocol.TCP),
        ("inbound-8080", 15006, Protocol.HTTP),
    ]
    http = listener(snapshot, "inbound-8080")
    assert (http.address, http.route_config) == ("10.3.0.1", "inbound-8080")
    # Two services select port 8080: one listener, named for the first of them.
    local = cluster(snapshot, "inbound|8080||")
    assert local.service == "alias.shop.svc.cluster.local"
    assert [(e.address, e.port, e.labels) for e in local.endpoints] == [
        ("10.3.0.1", 8080, {"app": "web", "version": "v1"})  # the app, on the workload's address
    ]
    tcp = listener(snapshot, "inbound-5432")
    assert tcp.tcp is not None and [d.cluster for d in tcp.tcp.destinations] == ["inbound|5432||"]
    assert cluster(snapshot, "inbound|5432||").protocol is Protocol.TCP


def test_a_proxy_no_service_selects_has_only_its_outbound_side() -> None:
    proxy = Workload(
        "lonely",
        "shop",
        "lonely",
        MappingProxyType({"app": "lonely"}),
        "10.3.0.2",
        (8080,),
        SidecarPorts(outbound=15001),
    )
    snapshot = compile_for(resources(SERVICES), proxy, [proxy]).snapshot
    assert [li.name for li in snapshot.listeners] == ["outbound"]


def test_a_clash_with_the_outbound_listener_is_reported() -> None:
    proxy = Workload(
        "web-0",
        "shop",
        "web",
        MappingProxyType({"app": "web"}),
        "127.0.0.1",
        (8080,),
        SidecarPorts(outbound=15001, inbound=MappingProxyType({8080: 15001})),
    )
    compiled = compile_for(resources(SERVICES), proxy, [proxy])
    assert [li.name for li in compiled.snapshot.listeners] == ["outbound"]
    assert any("already used" in w.message for w in compiled.warnings)


def test_a_workload_without_a_sidecar_has_no_snapshot() -> None:
    bare = Workload("vm", "shop", "vm", MappingProxyType({}), "10.3.0.3")
    with pytest.raises(ValueError, match="no sidecar"):
        compile_for(resources(SERVICES), bare, [bare])
