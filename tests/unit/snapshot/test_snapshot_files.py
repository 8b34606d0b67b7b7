"""Loading from files, dumping back, and the example snapshots shipped in examples/snapshots/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from loom.cli.main import app
from loom.proxy.router import compile_route_config
from loom.snapshot import SnapshotError, dump_snapshot, load_snapshot, parse_snapshot, snapshot_to_builtins
from tests.unit.snapshot.builders import http_sidecar, minimal

EXAMPLES = sorted((Path(__file__).parents[3] / "examples" / "snapshots").glob("*.yaml"))

# A snapshot that sets (nearly) every field away from its default.
EVERYTHING = """
schema_version: 1
version: "2024-06-01T12:00:00Z"
node:
  workload: web-v2
  namespace: shop
  service_account: web
  labels: {app: web, version: v2}
  trust_domain: example.org
  cluster_domain: corp.local
admin: {address: "::1", port: 15999}
listeners:
- name: outbound
  direction: outbound
  address: 0.0.0.0
  port: 15001
  route_config: outbound
  original_dst: true
  limits:
    max_connections: 5
    max_request_header_bytes: 2048
    max_headers: 20
    max_url_bytes: 512
    max_request_body_bytes: 0
    request_header_timeout: 1500ms
    idle_timeout: 90s
    drain_timeout: 1m
- name: tcp
  direction: inbound
  protocol: tcp
  port: 15432
  tcp: {destinations: [{cluster: db, weight: 3}, {cluster: db-2, weight: 0}], idle_timeout: 2h}
route_configs:
- name: outbound
  virtual_hosts:
  - name: catalog
    domains: [catalog.shop.svc.corp.local, "catalog.example.org:8080"]
    port: 8080
    routes:
    - name: everything
      matches:
      - path: {regex: "/v[0-9]+/.*"}
        ignore_uri_case: true
        method: {exact: GET}
        authority: {prefix: catalog}
        headers: {x-user: {exact: alice}, x-debug: {}}
        without_headers: {x-skip: {prefix: "1"}}
        query_params: {v: {exact: "2"}}
        source_labels: {app: web}
        port: 8080
      - path: {prefix: /api}
      route:
        destinations: [{cluster: catalog-v1, weight: 70}, {cluster: catalog-v2, weight: 30}]
        timeout: 2.5s
        retry:
          attempts: 4
          per_try_timeout: 300ms
          retry_on: [5xx, retriable-status-codes, "409"]
          retriable_status_codes: [429]
          backoff_base: 10ms
          backoff_max: 1s
        rewrite: {uri_prefix: /, authority: "catalog-internal:9090"}
        mirror: {cluster: shadow, percentage: 12.5}
      fault:
        delay: {fixed: 50ms, percentage: 1}
        abort: {http_status: 503, percentage: 0.5}
      request_headers: {set: {x-a: "1"}, add: {x-b: "2"}, remove: [x-c]}
      response_headers: {set: {x-d: "3"}}
    - name: moved
      matches: [{path: {exact: /old}}]
      redirect: {uri: /new, authority: new.example.org, scheme: https, port: 8443, code: 308}
    - name: teapot
      direct_response: {status: 418, body: "short and stout\\n"}
clusters:
- name: catalog-v1
  service: catalog.shop.svc.corp.local
  lb_policy: CONSISTENT_HASH
  consistent_hash: {cookie: {name: session, path: /shop, ttl: 1h}, ring_size: 4096}
  limits:
    max_connections: 10
    max_pending_requests: 20
    max_requests: 30
    max_requests_per_connection: 100
    connect_timeout: 250ms
    idle_timeout: 30s
  outlier_detection:
    consecutive_5xx: 3
    consecutive_gateway_errors: 2
    interval: 5s
    base_ejection_time: 15s
    max_ejection_percent: 50
  retry_budget: {percent: 10, min_retries_per_second: 2.5, window: 30s}
  default_retry: {attempts: 1, retry_on: [gateway-error]}
  endpoints:
  - {address: 10.0.0.1, port: 8080, weight: 3, labels: {version: v1}, workload: catalog-v1-abc,
     namespace: shop, service_account: catalog}
- {name: catalog-v2, lb_policy: ROUND_ROBIN, endpoints: [{address: 10.0.0.2, port: 8080}]}
- {name: shadow, lb_policy: RANDOM}
- {name: db, protocol: tcp, lb_policy: LEAST_REQUEST, endpoints: [{address: 10.0.0.3, port: 5432}]}
- {name: db-2, protocol: tcp, endpoints: [{address: 10.0.0.4, port: 5432}]}
telemetry:
  metrics: false
  access_log: {path: /var/log/loom/access.log, encoding: TEXT}
"""


@pytest.mark.parametrize(
    "doc",
    [minimal(), http_sidecar(), yaml.safe_load(EVERYTHING)],
    ids=["minimal", "http-sidecar", "everything"],
)
def test_dump_then_parse_gives_an_equal_snapshot(doc: dict[str, object]) -> None:
    snapshot = parse_snapshot(doc)
    text = dump_snapshot(snapshot)
    assert parse_snapshot(yaml.safe_load(text)) == snapshot
    # The admin endpoint's /config_dump writes the same model as JSON; it loads back too.
    assert parse_snapshot(json.loads(json.dumps(snapshot_to_builtins(snapshot)))) == snapshot


def test_the_builtins_form_is_complete_with_durations_as_strings() -> None:
    # What /config_dump shows: every field, defaults included, ready for json.dumps.
    data = snapshot_to_builtins(parse_snapshot(minimal()))
    assert data["schema_version"] == 1 and data["version"] == "0"
    assert data["node"] == {
        "workload": "web",
        "namespace": "default",
        "service_account": "default",
        "labels": {},
        "trust_domain": "cluster.local",
        "cluster_domain": "cluster.local",
    }
    assert data["admin"] == {"address": "127.0.0.1", "port": 15000}
    assert data["listeners"] == data["route_configs"] == data["clusters"] == []
    assert data["telemetry"] == {"metrics": True, "access_log": None, "tracing": None}
    cluster = snapshot_to_builtins(parse_snapshot(http_sidecar()))["clusters"][0]
    assert cluster["lb_policy"] == "PEAK_EWMA" and cluster["protocol"] == "http"
    assert (cluster["limits"]["connect_timeout"], cluster["limits"]["idle_timeout"]) == ("10s", "3600s")
    assert cluster["retry_budget"]["window"] == "10s"
    assert json.loads(json.dumps(data)) == data


def test_dump_leaves_out_defaults_and_writes_durations_as_strings() -> None:
    assert yaml.safe_load(dump_snapshot(parse_snapshot(minimal()))) == {"node": {"workload": "web"}}
    dumped = yaml.safe_load(dump_snapshot(parse_snapshot(yaml.safe_load(EVERYTHING))))
    assert dumped["listeners"][0]["limits"]["request_header_timeout"] == "1.5s"
    assert dumped["listeners"][1]["tcp"]["idle_timeout"] == "7200s"
    assert dumped["clusters"][0]["limits"]["connect_timeout"] == "250ms"


def test_everything_is_valid_and_compiles() -> None:
    snapshot = parse_snapshot(yaml.safe_load(EVERYTHING))
    for rc in snapshot.route_configs:
        compile_route_config(rc, snapshot.node)


def test_load_reads_yaml_and_json(tmp_path: Path) -> None:
    expected = parse_snapshot(http_sidecar())
    as_yaml = tmp_path / "snap.yaml"
    as_yaml.write_text(yaml.safe_dump(http_sidecar()))
    as_json = tmp_path / "snap.json"
    as_json.write_text(json.dumps(http_sidecar()))
    assert load_snapshot(as_yaml) == expected
    assert load_snapshot(str(as_json)) == expected


def test_unparseable_files_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("node: {workload: web\n")
    with pytest.raises(SnapshotError) as caught:
        load_snapshot(broken)
    assert caught.value.source == str(broken)
    [problem] = caught.value.problems
    assert problem.field == "" and problem.message.startswith("not valid YAML/JSON")

    bad_json = tmp_path / "broken.json"
    bad_json.write_text("{'node': 1}")
    with pytest.raises(SnapshotError, match="not valid YAML/JSON"):
        load_snapshot(bad_json)


def test_a_file_with_problems_names_the_file_and_the_fields(tmp_path: Path) -> None:
    path = tmp_path / "snap.yaml"
    path.write_text("node: {workload: web}\nadmin: {address: 0.0.0.0}\n")
    with pytest.raises(SnapshotError) as caught:
        load_snapshot(path)
    assert str(caught.value).startswith(f"invalid snapshot {path}:\n  - admin.address: ")


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    with pytest.raises(SnapshotError, match="mapping at the top level"):
        load_snapshot(path)


# --- the shipped examples ---------------------------------------------------------------------


def test_the_examples_are_there() -> None:
    assert {p.name for p in EXAMPLES} >= {"outbound-canary.yaml", "inbound.yaml", "tcp.yaml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_loads_compiles_and_round_trips(path: Path) -> None:
    snapshot = load_snapshot(path)
    for rc in snapshot.route_configs:
        compile_route_config(rc, snapshot.node)
    assert parse_snapshot(yaml.safe_load(dump_snapshot(snapshot))) == snapshot


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_passes_loom_proxy_check(path: Path) -> None:
    result = CliRunner().invoke(app, ["proxy", "--config", str(path), "--check"])
    assert result.exit_code == 0, result.output
    assert "is valid" in result.output


def test_loom_proxy_check_refuses_an_invalid_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "node: {workload: web}\nlisteners: [{name: l, direction: outbound, port: 70000, route_config: r}]\n"
    )
    result = CliRunner().invoke(app, ["proxy", "--config", str(path), "--check"])
    assert result.exit_code == 2


def test_the_snapshots_in_the_docs_are_valid() -> None:
    text = (Path(__file__).parents[3] / "docs" / "snapshot.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]]
    snapshots = [b for b in blocks if b.startswith("schema_version:")]
    assert len(snapshots) >= 2
    for block in snapshots:
        snapshot = parse_snapshot(yaml.safe_load(block))
        for rc in snapshot.route_configs:
            compile_route_config(rc, snapshot.node)
