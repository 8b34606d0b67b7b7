"""Virtual host resolution: exact names, Kubernetes short names, ports, wildcards, catch-all."""

from __future__ import annotations

import msgspec
import pytest

from loom.proxy.router import RouteCompileError

ROUTE = [{"route": {"destinations": [{"cluster": "c"}]}}]


def vhost(name: str, domains: list[str], port: int | None = None) -> dict:
    return {"name": name, "domains": domains, "port": port, "routes": ROUTE}


CONFIG = {
    "name": "outbound",
    "virtual_hosts": [
        vhost("reviews", ["reviews.default.svc.cluster.local"], 9080),
        vhost("ratings-other", ["ratings.other.svc.cluster.local"]),
        vhost("web-80", ["web.default.svc.cluster.local"], 80),
        vhost("web-8080", ["web.default.svc.cluster.local"], 8080),
        vhost("api-any", ["api.example.com"]),
        vhost("api-443", ["API.example.com:443"]),
        vhost("multi", ["multi.default.svc.cluster.local"], 8080),
        vhost("multi-9090", ["multi.default.svc.cluster.local:9090"]),
        vhost("details-explicit", ["details.default"], 9080),
        vhost("details", ["details.default.svc.cluster.local"], 9080),
        vhost("wild", ["*.example.com"]),
        vhost("wild-eu", ["*.eu.example.com"]),
        vhost("catch-all", ["*"]),
    ],
}


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        # the FQDN and its short forms
        (b"reviews.default.svc.cluster.local", None, "reviews"),
        (b"reviews.default.svc.cluster.local", 9080, "reviews"),
        (b"reviews.default.svc", 9080, "reviews"),
        (b"reviews.default", None, "reviews"),
        (b"reviews", None, "reviews"),  # forward-proxy style http://reviews/ reaches port 9080
        (b"reviews", 9080, "reviews"),
        (b"reviews", 9999, "catch-all"),  # the name has no virtual host on that port
        # another namespace: no bare name
        (b"ratings.other.svc", 1234, "ratings-other"),
        (b"ratings.other", None, "ratings-other"),
        (b"ratings", None, "catch-all"),
        # several ports: no port means 80
        (b"web", None, "web-80"),
        (b"web", 80, "web-80"),
        (b"web", 8080, "web-8080"),
        (b"web.default.svc.cluster.local", 8080, "web-8080"),
        # several ports, none of them 80 or any: a port is required
        (b"multi", 8080, "multi"),
        (b"multi", 9090, "multi-9090"),
        (b"multi", None, "catch-all"),
        # a domain with :port, beside the same name on any port
        (b"api.example.com", None, "api-any"),
        (b"api.example.com", 443, "api-443"),
        (b"api.example.com", 8443, "api-any"),
        # explicit names win over derived short names
        (b"details.default", None, "details-explicit"),
        (b"details", 9080, "details"),
        # wildcards: longest suffix first; the wildcard covers at least one character
        (b"shop.example.com", None, "wild"),
        (b"a.b.example.com", 8080, "wild"),
        (b"shop.eu.example.com", None, "wild-eu"),
        (b"eu.example.com", None, "wild"),
        (b"example.com", None, "catch-all"),
        (b".example.com", None, "catch-all"),
        (b"unknown", None, "catch-all"),
        (b"", None, "catch-all"),
    ],
)
def test_find(compile_config, host: bytes, port: int | None, expected: str) -> None:
    table = compile_config(CONFIG)
    vh = table.find(host, port)
    assert vh is not None
    assert vh.name == expected


def test_no_catch_all_returns_none(compile_config) -> None:
    table = compile_config({"name": "rc", "virtual_hosts": [vhost("a", ["a.example.com"])]})
    assert table.find(b"b.example.com", None) is None
    assert table.find(b"a.example.com", 1).name == "a"


def test_catch_all_with_port(compile_config) -> None:
    table = compile_config(
        {"name": "rc", "virtual_hosts": [vhost("p8080", ["*"], 8080), vhost("any", ["*:9090"])]}
    )
    assert table.find(b"x", 8080).name == "p8080"
    assert table.find(b"x", 9090).name == "any"
    assert table.find(b"x", 1) is None
    assert table.find(b"x", None) is None  # two ports, neither 80 nor any


def test_short_names_follow_node_namespace(compile_config, node) -> None:
    config = {"name": "rc", "virtual_hosts": [vhost("r", ["reviews.bookinfo.svc.cluster.local"])]}
    assert compile_config(config).find(b"reviews", None) is None
    other = msgspec.structs.replace(node, namespace="bookinfo")
    assert compile_config(config, node=other).find(b"reviews", None).name == "r"


def test_custom_cluster_domain(compile_config, node) -> None:
    config = {"name": "rc", "virtual_hosts": [vhost("r", ["reviews.default.svc.corp.example"])]}
    corp = msgspec.structs.replace(node, cluster_domain="corp.example")
    assert compile_config(config, node=corp).find(b"reviews", None).name == "r"
    assert compile_config(config).find(b"reviews", None) is None


@pytest.mark.parametrize(
    ("virtual_hosts", "field_path"),
    [
        ([vhost("a", ["a.com"]), vhost("b", ["x.com", "A.com"])], "virtual_hosts[1].domains[1]"),
        ([vhost("a", ["*"]), vhost("b", ["*"])], "virtual_hosts[1].domains[0]"),
        ([vhost("a", ["a.com:80"], 8080)], "virtual_hosts[0].domains[0]"),
        ([vhost("a", ["a.*.com"])], "virtual_hosts[0].domains[0]"),
        ([vhost("a", ["a.com:70000"])], "virtual_hosts[0].domains[0]"),
        ([vhost("a", ["a.com/path"])], "virtual_hosts[0].domains[0]"),
    ],
)
def test_bad_domains(compile_config, virtual_hosts: list[dict], field_path: str) -> None:
    with pytest.raises(RouteCompileError) as info:
        compile_config({"name": "rc", "virtual_hosts": virtual_hosts})
    assert info.value.field_path == field_path


def test_same_domain_on_different_ports_is_fine(compile_config) -> None:
    table = compile_config(
        {"name": "rc", "virtual_hosts": [vhost("a", ["a.com"], 80), vhost("b", ["a.com"], 81)]}
    )
    assert table.find(b"a.com", 81).name == "b"
