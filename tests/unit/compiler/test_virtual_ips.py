"""Virtual IPs from a service CIDR: a stable hash of ``namespace/name``, linear probing on collision,
never the network, broadcast or a taken address; compiled into the outbound virtual hosts of Services
without a ``clusterIP`` when the control plane has a ``--service-cidr``."""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import json
import random

import pytest

from loom.controlplane.compiler import MeshInputs, compile_snapshot
from loom.controlplane.compiler.virtual_ips import (
    allocate_virtual_ips,
    parse_service_cidr,
    service_virtual_ips,
)
from loom.controlplane.push import PushEngine
from loom.controlplane.registry import WorkloadRegistry
from tests.unit.compiler.support import by_name, resources, svc, vhost, workload

SLEEP = by_name("sleep")
CIDR = "10.96.0.0/16"


def slot(namespace: str, name: str, usable: int) -> int:
    """The offset (from the first usable address) a service's hash points at."""
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return int.from_bytes(digest[:16], "big") % usable


def test_the_address_is_a_stable_hash_of_namespace_and_name() -> None:
    # Pinned: another program (the runtime's hosts files) must find the same address.
    assert allocate_virtual_ips([("default", "orders")], CIDR) == {("default", "orders"): "10.96.178.110"}
    assert allocate_virtual_ips([("shop", "catalog")], CIDR) == {("shop", "catalog"): "10.96.109.251"}


def test_the_order_given_does_not_matter() -> None:
    services = [(f"ns{i % 3}", f"svc-{i}") for i in range(40)]
    expected = allocate_virtual_ips(services, "10.0.0.0/26")
    for seed in range(5):
        shuffled = list(services)
        random.Random(seed).shuffle(shuffled)
        assert allocate_virtual_ips([*shuffled, shuffled[0]], "10.0.0.0/26") == expected
    assert len(set(expected.values())) == len(services)


def test_a_collision_takes_the_next_free_address() -> None:
    usable = 14  # a /28: 16 addresses, less the network and broadcast
    names = (f"svc-{i}" for i in itertools.count())
    first = next(names)
    second = next(n for n in names if slot("default", n, usable) == slot("default", first, usable))
    found = allocate_virtual_ips([("default", second), ("default", first)], "10.0.0.0/28")
    earlier, later = sorted([first, second])
    base = int(ipaddress.IPv4Address("10.0.0.1"))
    at = slot("default", first, usable)
    assert found[("default", earlier)] == str(ipaddress.IPv4Address(base + at))
    assert found[("default", later)] == str(ipaddress.IPv4Address(base + (at + 1) % usable))


def test_every_usable_address_but_never_network_broadcast_or_taken() -> None:
    services = [("default", f"svc-{i}") for i in range(12)]
    found = allocate_virtual_ips(
        services, "10.0.0.0/28", taken=["10.0.0.5", "10.0.0.9", "not-an-ip", "10.9.9.9"]
    )
    addresses = set(found.values())
    assert len(addresses) == 12
    usable = {f"10.0.0.{i}" for i in range(1, 15)}
    assert addresses == usable - {"10.0.0.5", "10.0.0.9"}


def test_a_cidr_too_small_is_a_clear_error() -> None:
    services = [("default", f"svc-{i}") for i in range(7)]
    assert len(allocate_virtual_ips(services[:6], "10.0.0.0/29")) == 6
    with pytest.raises(ValueError, match=r"10.0.0.0/29 is too small: 7 services .* 6 free addresses"):
        allocate_virtual_ips(services, "10.0.0.0/29")
    with pytest.raises(ValueError, match="5 free addresses"):
        allocate_virtual_ips(services[:6], "10.0.0.0/29", taken=["10.0.0.3"])
    for tiny in ("10.0.0.0/31", "10.0.0.1/32"):
        with pytest.raises(ValueError, match="no address to give"):
            allocate_virtual_ips(services[:1], tiny)
    assert allocate_virtual_ips([], "10.0.0.0/30") == {}


@pytest.mark.parametrize("bad", ["10.96.0.1/16", "10.96.0.0/33", "10.96.0.0/x", "cluster.local", ""])
def test_a_malformed_cidr_is_a_clear_error(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a network address/prefix"):
        parse_service_cidr(bad)


def test_ipv6() -> None:
    services = [("default", f"svc-{i}") for i in range(20)]
    found = allocate_virtual_ips(services, "fd00:96::/112", taken=["fd00:96::1"])
    network = ipaddress.IPv6Network("fd00:96::/112")
    assert len(set(found.values())) == 20
    for address in map(ipaddress.IPv6Address, found.values()):
        assert address in network and address not in (network.network_address, network[1], network[-1])


SERVICES = """
apiVersion: v1
kind: Service
metadata: {name: orders, namespace: default}
spec:
  selector: {app: orders}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: pinned, namespace: default}
spec:
  clusterIP: 10.96.178.110
  selector: {app: orders}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: headless, namespace: default}
spec:
  clusterIP: None
  selector: {app: orders}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: orders, namespace: default}
spec:
  hosts: [orders.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 80, name: http, protocol: HTTP}]
"""

ORDERS = workload("orders-0", "default", {"app": "orders"}, "10.0.9.1")


def test_service_virtual_ips_skips_headless_and_explicit_and_avoids_taken() -> None:
    found = service_virtual_ips(resources(SERVICES), CIDR)
    assert list(found) == [("default", "orders")]  # not pinned, headless nor the ServiceEntry
    # orders' hash points at 10.96.178.110, which pinned holds: it takes the next address
    assert found[("default", "orders")] == "10.96.178.111"


def test_the_outbound_virtual_host_answers_the_allocated_address() -> None:
    found = resources(SERVICES)
    inputs = MeshInputs.build(found, [SLEEP, ORDERS], service_cidr=CIDR)
    snapshot = compile_snapshot(inputs, SLEEP, version="1").snapshot
    assert vhost(snapshot, svc("orders")).domains == [svc("orders"), "10.96.178.111"]
    assert vhost(snapshot, svc("pinned")).domains == [svc("pinned"), "10.96.178.110"]
    assert vhost(snapshot, svc("headless")).domains == [svc("headless")]
    assert vhost(snapshot, "orders.example.com").domains == ["orders.example.com"]


def test_without_a_service_cidr_nothing_is_allocated() -> None:
    inputs = MeshInputs.build(resources(SERVICES), [SLEEP, ORDERS])
    snapshot = compile_snapshot(inputs, SLEEP, version="1").snapshot
    assert vhost(snapshot, svc("orders")).domains == [svc("orders")]
    assert vhost(snapshot, svc("pinned")).domains == [svc("pinned"), "10.96.178.110"]


def test_a_cidr_too_small_for_the_services_is_a_warning_not_a_failure() -> None:
    # a /30 has two addresses to give; three namespaces have an orders Service without clusterIP
    found = resources(*(SERVICES.replace("namespace: default", f"namespace: ns{i}") for i in range(3)))
    inputs = MeshInputs.build(found, [SLEEP, ORDERS], service_cidr="10.0.0.0/30")
    snapshot = compile_snapshot(inputs, SLEEP, version="1").snapshot
    assert vhost(snapshot, svc("orders", "ns0")).domains == [svc("orders", "ns0")]
    [warning] = [w.message for w in inputs.warnings if "too small" in w.message]
    assert "3 services need a virtual IP" in warning and "no Service gets a virtual IP" in warning


async def test_the_push_engine_compiles_its_service_cidr() -> None:
    registry = WorkloadRegistry()
    for w in (SLEEP, ORDERS):
        registry.register(w)
    push = PushEngine(registry, service_cidr=CIDR)
    push.resources = resources(SERVICES)
    push.recompile()
    sent = json.loads(push.proxies[SLEEP.key].payload.joined())["snapshot"]
    [outbound] = [rc for rc in sent["route_configs"] if rc["name"] == "outbound"]
    [orders] = [vh for vh in outbound["virtual_hosts"] if vh["name"] == f"{svc('orders')}:80"]
    assert "10.96.178.111" in orders["domains"]
