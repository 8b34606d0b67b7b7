"""``loom explain`` offline (``--config-dir``) on the seed examples: the header rule, the 90/10 canary,
an SMI TrafficSplit, a workload given on the command line, and a request no route takes (404 NR).
The command runs as a real process, as an operator runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SEED_EXAMPLES = FIXTURES / "api" / "seed_examples"
SEED_SUPPORT = FIXTURES / "analyze" / "seed_support"
ORDERS_PROD = "orders-api.production.svc.cluster.local"
ORDERS_DEFAULT = "orders-api.default.svc.cluster.local"


def loom(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loom.cli.main", *args], capture_output=True, text=True, timeout=60
    )


def explain_json(config: Path, *args: str) -> tuple[int, dict]:
    done = loom("explain", "--config-dir", str(config), "-o", "json", *args)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def line_of(path: Path, text: str, after: int = 0) -> int:
    """The 1-based number of the first line after line ``after`` that contains ``text``."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if number > after and text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


@pytest.fixture
def mesh(tmp_path: Path) -> Path:
    """Every seed example with the Services and WorkloadEntries they refer to."""
    config = tmp_path / "mesh"
    config.mkdir()
    for source in (SEED_EXAMPLES, SEED_SUPPORT):
        for path in source.glob("*.yaml"):
            shutil.copy(path, config / path.name)
    return config


def test_the_header_rule_sends_canary_requests_to_subset_v2(mesh: Path) -> None:
    code, result = explain_json(
        mesh, "--from", "client", "--label", "app=client", "http://orders-api:8080/api/orders",
        "-H", "x-version: canary",
    )  # fmt: skip
    assert code == 0 and result["result"] == "route"
    assert result["virtual_host"]["name"] == f"{ORDERS_DEFAULT}:8080"
    source = result["route"]["source"]
    routing = mesh / "002-orders-header-routing.yaml"
    assert (source["kind"], source["namespace"], source["name"], source["rule"]) == (
        "VirtualService", "default", "orders-api", 0,
    )  # fmt: skip
    assert (source["file"], source["line"]) == (str(routing), line_of(routing, "- match:"))
    assert result["route"]["matched"] == "header x-version = 'canary'"
    [destination] = result["destinations"]
    assert destination["cluster"] == f"outbound|8080|v2|{ORDERS_DEFAULT}"
    assert (destination["subset"], destination["percent"]) == ("v2", 100.0)
    assert [(e["address"], e["port"], e["workload"]) for e in destination["endpoints"]] == [
        ("10.3.0.2", 8080, "orders-api-v2")
    ]


def test_a_plain_request_takes_the_next_rule(mesh: Path) -> None:
    code, result = explain_json(mesh, "--from", "client", "-l", "app=client", "http://orders-api:8080/")
    assert code == 0
    routing = mesh / "002-orders-header-routing.yaml"
    assert result["route"]["source"]["rule"] == 1
    assert result["route"]["source"]["line"] == line_of(routing, "- route:", line_of(routing, "- match:"))
    [destination] = result["destinations"]
    assert destination["subset"] == "v1"
    assert [e["workload"] for e in destination["endpoints"]] == ["orders-api-v1"]


def test_the_canary_splits_90_10_with_the_destination_rule_policy(mesh: Path) -> None:
    # api-service is a WorkloadEntry of namespace production: explained as if it had a sidecar.
    code, result = explain_json(mesh, "--from", "production/api-service", "http://orders-api:8080/api/orders")
    assert code == 0 and result["from"]["labels"] == {"app": "api-service"}
    canary = mesh / "002-orders-canary.yaml"
    source = result["route"]["source"]
    assert (source["kind"], source["namespace"], source["name"]) == (
        "VirtualService",
        "production",
        "orders-api",
    )
    assert (source["file"], source["line"]) == (str(canary), line_of(canary, "- route:"))
    assert result["route"]["matched"] == "every request"
    assert result["timeout"] is None and result["retry"] is None
    by_subset = {d["subset"]: d for d in result["destinations"]}
    assert {s: (d["weight"], d["percent"]) for s, d in by_subset.items()} == {
        "v1": (90, 90.0),
        "v2": (10, 10.0),
    }
    assert [(e["address"], e["workload"]) for e in by_subset["v1"]["endpoints"]] == [
        ("10.2.0.1", "orders-api-v1")
    ]
    assert [(e["address"], e["workload"]) for e in by_subset["v2"]["endpoints"]] == [
        ("10.2.0.2", "orders-api-v2")
    ]
    v2 = by_subset["v2"]
    # The DestinationRule's retryPolicy is the cluster's default (the route sets none).
    assert v2["retry_from"] == "cluster default"
    assert v2["retry"]["attempts"] == 3 and v2["retry"]["per_try_timeout"] == "5s"
    assert v2["retry"]["retry_on"] == ["5xx", "reset", "connect-failure"]
    assert v2["limits"]["max_connections"] == 100 and v2["limits"]["max_pending_requests"] == 100
    assert v2["outlier_detection"]["consecutive_gateway_errors"] == 5
    assert v2["outlier_detection"]["max_ejection_percent"] == 50
    assert v2["retry_budget"] == {"percent": 20.0, "min_retries_per_second": 10.0, "window": "10s"}
    assert v2["lb_policy"] == "PEAK_EWMA"
    assert "002-orders-destinationrule.yaml" in v2["policy"]["outlier_detection"]


def test_the_text_output_points_at_the_rule(mesh: Path) -> None:
    done = loom(
        "explain", "--config-dir", str(mesh), "--from", "production/api-service",
        "http://orders-api.production:8080/", "-X", "POST",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    canary = mesh / "002-orders-canary.yaml"
    text = done.stdout
    assert f"VirtualService production/orders-api, rule 0 at {canary}:{line_of(canary, '- route:')}" in text
    assert f"90% outbound|8080|v1|{ORDERS_PROD}" in text and f"10% outbound|8080|v2|{ORDERS_PROD}" in text
    assert "10.2.0.2:8080  production/orders-api-v2" in text
    assert "3 attempts (up to 4 tries), per try timeout 5s, retry on 5xx,reset,connect-failure" in text
    assert "connections 100, pending 100, requests 1000" in text


def test_an_unknown_host_is_404_nr(mesh: Path) -> None:
    code, result = explain_json(mesh, "--from", "production/api-service", "http://nowhere.example/")
    assert code == 1
    assert (result["result"], result["status"], result["flag"]) == ("NR", 404, "NR")
    assert f"{ORDERS_PROD}:8080" in result["virtual_hosts"]
    done = loom(
        "explain", "--config-dir", str(mesh), "--from", "production/api-service", "http://nowhere.example/"
    )
    assert done.returncode == 1 and "404 NR" in done.stdout and "nowhere.example" in done.stdout


def test_no_route_of_the_host_matches(tmp_path: Path, mesh: Path) -> None:
    # Only the header rule is left: a request without the header matches no route of the host.
    routing = mesh / "002-orders-header-routing.yaml"
    text = routing.read_text()
    routing.write_text(text[: text.index("  # Everyone else")])
    code, result = explain_json(mesh, "--from", "client", "-l", "app=client", "http://orders-api:8080/")
    assert code == 1 and result["result"] == "NR"
    assert result["reason"] == f"no route of virtual host {ORDERS_DEFAULT}:8080 matches the request"
    [rule] = result["rules"]
    assert rule["source"]["name"] == "orders-api" and rule["matches"] == ["header x-version = 'canary'"]


def test_an_smi_traffic_split(tmp_path: Path) -> None:
    config = tmp_path / "split"
    config.mkdir()
    for path in (SEED_EXAMPLES / "000-smi-trafficsplit.yaml", SEED_SUPPORT / "my-app.yaml",
                 SEED_SUPPORT / "my-app-versions.yaml"):  # fmt: skip
        shutil.copy(path, config / path.name)
    code, result = explain_json(config, "--from", "sleep", "-l", "app=sleep", "http://my-app/")
    assert code == 0
    source = result["route"]["source"]
    assert (source["kind"], source["name"], source["rule"]) == ("TrafficSplit", "my-app-split", None)
    assert source["file"] == str(config / "000-smi-trafficsplit.yaml")
    assert {d["cluster"]: d["percent"] for d in result["destinations"]} == {
        "outbound|80||my-app-v1.default.svc.cluster.local": 90.0,
        "outbound|80||my-app-v2.default.svc.cluster.local": 10.0,
    }


def test_workloads_given_on_the_command_line_are_endpoints(mesh: Path) -> None:
    code, result = explain_json(
        mesh, "--from", "client", "-l", "app=client", "http://reviews:9080/",
        "--workload", "reviews-v2-b=app=reviews,version=v2@10.4.0.9",
    )  # fmt: skip
    assert code == 0
    by_subset = {d["subset"]: d for d in result["destinations"]}
    assert [e["workload"] for e in by_subset["v2"]["endpoints"]] == ["reviews-v2", "reviews-v2-b"]
    assert by_subset["v2"]["endpoints"][1]["address"] == "10.4.0.9"


def test_an_unknown_caller_needs_its_labels(mesh: Path) -> None:
    done = loom("explain", "--config-dir", str(mesh), "--from", "ghost", "http://orders-api:8080/")
    assert done.returncode == 1
    assert "no workload default/ghost is known" in done.stderr and "--label" in done.stderr


HTTP_ROUTE = """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: my-app
  namespace: default
spec:
  parentRefs:
  - {group: "", kind: Service, name: my-app, port: 80}
  rules:
  - matches:
    - path: {type: PathPrefix, value: /v2}
    backendRefs:
    - {name: my-app-v2, port: 80}
    timeouts: {request: 3s}
  - name: everything-else
    backendRefs:
    - {name: my-app-v1, port: 80}
"""


def test_http_route_rules_named_and_unnamed(tmp_path: Path) -> None:
    config = tmp_path / "gamma"
    config.mkdir()
    for path in (SEED_SUPPORT / "my-app.yaml", SEED_SUPPORT / "my-app-versions.yaml"):
        shutil.copy(path, config / path.name)
    route = config / "route.yaml"
    route.write_text(HTTP_ROUTE)
    code, result = explain_json(
        config, "--from", "sleep", "-l", "app=sleep", "http://my-app/v2/items", "-X", "PUT"
    )
    assert code == 0
    source = result["route"]["source"]
    assert (source["kind"], source["rule"], source["line"]) == ("HTTPRoute", 0, line_of(route, "- matches:"))
    assert result["route"]["matched"] == "path starts with '/v2/'"
    assert result["timeout"] == "3s"
    assert [d["cluster"] for d in result["destinations"]] == [
        "outbound|80||my-app-v2.default.svc.cluster.local"
    ]
    code, result = explain_json(config, "--from", "sleep", "-l", "app=sleep", "http://my-app/")
    source = result["route"]["source"]
    assert (source["rule"], source["rule_name"]) == (1, "everything-else")
    assert source["line"] == line_of(route, "- name: everything-else")
