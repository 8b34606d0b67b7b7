"""Response flags and peer descriptions."""

from __future__ import annotations

import pytest

from loom.proxy.telemetry import PeerInfo, flags, service_name_and_namespace, spiffe_id
from loom.snapshot.model import Endpoint, Node


def test_short_names():
    assert flags.NO_HEALTHY_UPSTREAM == "UH"
    assert flags.UPSTREAM_CONNECTION_FAILURE == "UF"
    assert flags.UPSTREAM_OVERFLOW == "UO"
    assert flags.NO_ROUTE_FOUND == "NR"
    assert flags.UPSTREAM_RETRY_LIMIT_EXCEEDED == "URX"
    assert flags.UPSTREAM_REQUEST_TIMEOUT == "UT"
    assert flags.DOWNSTREAM_CONNECTION_TERMINATION == "DC"
    assert flags.UPSTREAM_REMOTE_RESET == "UR"
    assert flags.FAULT_INJECTED == "FI"
    assert flags.DELAY_INJECTED == "DI"
    assert flags.DOWNSTREAM_PROTOCOL_ERROR == "DPE"
    assert flags.UPSTREAM_PROTOCOL_ERROR == "UPE"
    assert flags.OVERLOAD_MANAGER == "OM"
    assert flags.NONE == "-"
    assert len(set(flags.ORDER)) == len(flags.ORDER) == len(flags.LONG_NAMES)


@pytest.mark.parametrize(
    ("given", "joined"),
    [
        ([], "-"),
        (["-"], "-"),
        (["UH"], "UH"),
        (["URX", "UF"], "UF,URX"),
        (["DI", "FI", "DI"], "DI,FI"),
        (["XX", "UT"], "UT,XX"),
    ],
)
def test_join_in_envoys_order(given: list[str], joined: str):
    assert flags.join(given) == joined


def test_split():
    assert flags.split("-") == ()
    assert flags.split("") == ()
    assert flags.split("UF,URX") == ("UF", "URX")


def test_peer_from_node_with_and_without_mtls():
    node = Node(workload="ratings-v1", namespace="shop", service_account="ratings", labels={"app": "ratings"})
    plain = PeerInfo.from_node(node)
    assert plain.principal == "unknown"
    assert (plain.app, plain.version, plain.canonical_service, plain.canonical_revision) == (
        "ratings",
        "unknown",
        "ratings",
        "latest",
    )
    assert PeerInfo.from_node(node, mtls=True).principal == "spiffe://cluster.local/ns/shop/sa/ratings"


def test_canonical_labels_win():
    peer = PeerInfo.from_labels(
        "w",
        "ns",
        {
            "app": "a",
            "service.istio.io/canonical-name": "canon",
            "service.istio.io/canonical-revision": "r7",
            "app.kubernetes.io/version": "1.2",
        },
    )
    assert (peer.canonical_service, peer.canonical_revision, peer.version) == ("canon", "r7", "1.2")


def test_peer_from_endpoint():
    endpoint = Endpoint(
        address="10.0.0.7",
        port=8080,
        workload="catalog-v2",
        namespace="shop",
        service_account="catalog",
        labels={"app": "catalog", "version": "v2"},
    )
    peer = PeerInfo.from_endpoint(endpoint, trust_domain="example.org", mtls=True)
    assert peer.workload == "catalog-v2"
    assert (
        peer.principal
        == spiffe_id("example.org", "shop", "catalog")
        == "spiffe://example.org/ns/shop/sa/catalog"
    )
    anonymous = PeerInfo.from_endpoint(
        Endpoint(address="10.0.0.8", port=80), trust_domain="cluster.local", mtls=True
    )
    assert (anonymous.workload, anonymous.namespace, anonymous.principal) == ("unknown", "unknown", "unknown")


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ("catalog.shop.svc.cluster.local", ("catalog", "shop")),
        ("catalog.shop.svc", ("catalog", "shop")),
        ("catalog.shop.svc.corp.example", ("catalog", "shop")),
        ("api.example.com", ("api.example.com", "ns-of-peer")),
        ("unknown", ("unknown", "unknown")),
        ("", ("unknown", "unknown")),
    ],
)
def test_service_name_and_namespace(service: str, expected: tuple[str, str]):
    assert service_name_and_namespace(service, "ns-of-peer") == expected
