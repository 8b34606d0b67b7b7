"""Which resources apply to which Service (the dashboard's configuration view)."""

from __future__ import annotations

from typing import Any

from loom.dashboard.config_view import Service, config_view, host_matches


def row(kind: str, name: str, yaml_text: str, namespace: str = "shop", line: int = 1) -> dict[str, Any]:
    return {
        "kind": kind,
        "namespace": namespace,
        "name": name,
        "file": f"{name}.yaml",
        "line": line,
        "yaml": yaml_text,
    }


SERVICE = row("Service", "catalog", "kind: Service\nspec:\n  selector: {app: catalog}\n")
OTHER = row("Service", "orders", "kind: Service\nspec:\n  selector: {app: orders}\n")
WORKLOADS = [
    {"namespace": "shop", "name": "catalog-v1-0", "labels": {"app": "catalog", "version": "v1"}},
    {"namespace": "shop", "name": "orders-0", "labels": {"app": "orders"}},
]


def view(*rows: dict[str, Any]) -> dict[str, Any]:
    return config_view({"resources": [SERVICE, OTHER, *rows], "last_error": None}, WORKLOADS)


def applied(result: dict[str, Any], name: str) -> list[tuple[str, str]]:
    [service] = [s for s in result["services"] if s["name"] == name]
    return [(r["kind"], r["name"]) for r in service["resources"]]


def test_host_forms() -> None:
    catalog = Service("shop", "catalog", {})
    assert host_matches("catalog", catalog, "shop")
    assert not host_matches("catalog", catalog, "other")  # a short name is of the resource's namespace
    for host in (
        "catalog.shop",
        "catalog.shop.svc",
        "catalog.shop.svc.cluster.local",
        "*",
        "*.shop.svc.cluster.local",
    ):
        assert host_matches(host, catalog, "other"), host
    assert not host_matches("orders.shop", catalog, "shop")


def test_host_kinds_match_by_host() -> None:
    result = view(
        row("VirtualService", "vs", "spec:\n  hosts: [catalog]\n"),
        row(
            "DestinationRule",
            "dr",
            "spec:\n  host: catalog.shop.svc.cluster.local\n  subsets: [{name: v1, labels: {version: v1}}]\n",
        ),
        row("TrafficSplit", "ts", "spec:\n  service: orders\n  backends: [{service: orders, weight: 100}]\n"),
        row("HTTPRoute", "route", "spec:\n  parentRefs: [{kind: Service, name: orders}]\n"),
    )
    assert applied(result, "catalog") == [("VirtualService", "vs"), ("DestinationRule", "dr")]
    assert applied(result, "orders") == [("TrafficSplit", "ts"), ("HTTPRoute", "route")]
    [catalog] = [s for s in result["services"] if s["name"] == "catalog"]
    assert catalog["resources"][1]["subsets"] == [{"name": "v1", "labels": {"version": "v1"}}]
    assert catalog["workloads"] == ["catalog-v1-0"]


def test_policies_match_by_namespace_and_selector() -> None:
    result = view(
        row("PeerAuthentication", "default", "spec:\n  mtls: {mode: STRICT}\n"),
        row("PeerAuthentication", "mesh", "spec:\n  mtls: {mode: PERMISSIVE}\n", namespace="istio-system"),
        row("AuthorizationPolicy", "orders", "spec:\n  selector: {matchLabels: {app: orders}}\n"),
        row("AuthorizationPolicy", "v1-only", "spec:\n  selector: {matchLabels: {version: v1}}\n"),
        row("AuthorizationPolicy", "elsewhere", "spec: {}\n", namespace="other"),
    )
    assert applied(result, "catalog") == [
        ("PeerAuthentication", "default"),
        ("PeerAuthentication", "mesh"),
        ("AuthorizationPolicy", "v1-only"),
    ]
    assert applied(result, "orders") == [
        ("PeerAuthentication", "default"),
        ("PeerAuthentication", "mesh"),
        ("AuthorizationPolicy", "orders"),
    ]
    assert [(r["kind"], r["name"]) for r in result["unmatched"]] == [("AuthorizationPolicy", "elsewhere")]
