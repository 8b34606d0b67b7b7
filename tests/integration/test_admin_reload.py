"""The admin endpoint, telemetry output and snapshot reloads of a real ``loom proxy``."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import signal
from pathlib import Path

import aiohttp

from tests.support.load import run_load
from tests.support.prom import samples, total
from tests.support.proxy import ProxyProcess, wait_until
from tests.support.snapshots import Doc, cluster, route_to, sidecar


def two_versions(v1: int, v2: int, target: str = "catalog-v1", version: str = "1") -> Doc:
    return sidecar(
        [route_to((target, 1))],
        [cluster("catalog-v1", [v1]), cluster("catalog-v2", [v2], "v2")],
        version=version,
    )


async def bodies(sidecar_proxy: ProxyProcess, n: int = 20, listener: str = "outbound") -> set[str]:
    result = await run_load(sidecar_proxy.url("/", listener), n, concurrency=4)
    assert result.ok == n, result
    return set(result.bodies)


async def refuses(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    writer.close()
    return False


# --- admin endpoints --------------------------------------------------------------------------


async def test_ready_config_dump_clusters_and_listeners(backend, proxy) -> None:
    v1, v2 = await backend("v1"), await backend("v2")
    sidecar_proxy = await proxy(two_versions(v1.port, v2.port, version="2024-06-01.7"))

    status, body = await sidecar_proxy.admin("/ready")
    assert (status, body) == (200, b"LIVE\n")

    dump = await sidecar_proxy.admin_json("/config_dump")
    assert dump["version"] == "2024-06-01.7"
    assert dump["last_reload_error"] is None
    assert [c["name"] for c in dump["snapshot"]["clusters"]] == ["catalog-v1", "catalog-v2"]

    clusters = {c["name"]: c for c in await sidecar_proxy.admin_json("/clusters")}
    assert set(clusters) == {"catalog-v1", "catalog-v2"}
    assert [(e["address"], e["port"]) for e in clusters["catalog-v2"]["endpoints"]] == [
        ("127.0.0.1", v2.port)
    ]
    assert clusters["catalog-v1"]["ejected"] == []

    listeners = await sidecar_proxy.admin_json("/listeners")
    assert [(item["name"], item["protocol"], item["port"]) for item in listeners] == [
        ("outbound", "http", sidecar_proxy.port())
    ]

    status, _ = await sidecar_proxy.admin("/no-such-page")
    assert status == 404


async def test_outlier_detection_ejects_a_failing_endpoint(backend, proxy) -> None:
    good, bad = await backend("good"), await backend("bad")
    bad.force_status = 500
    outlier = {
        "consecutive_5xx": 3,
        "interval": "1s",
        "base_ejection_time": "60s",
        "max_ejection_percent": 50,
    }
    doc = sidecar(
        [route_to(("catalog", 1))],
        [cluster("catalog", [good.port, bad.port], lb_policy="ROUND_ROBIN", outlier_detection=outlier)],
    )
    sidecar_proxy = await proxy(doc)

    before = await run_load(sidecar_proxy.url("/"), 12, concurrency=1)
    clusters = await sidecar_proxy.admin_json("/clusters")

    assert before.statuses[500] == 3, "the endpoint should be ejected at its third consecutive 5xx"
    (catalog,) = clusters
    assert catalog["ejected"] == [f"127.0.0.1:{bad.port}"]
    by_port = {e["port"]: e for e in catalog["endpoints"]}
    assert by_port[bad.port]["healthy"] is False
    assert by_port[bad.port]["ejection_reason"] == "consecutive_5xx"
    assert by_port[good.port]["healthy"] is True

    after = await run_load(sidecar_proxy.url("/"), 20, concurrency=4)
    assert after.bodies == {"good": 20}
    assert bad.requests == 3


# --- telemetry --------------------------------------------------------------------------------


async def test_request_metrics_carry_istio_labels(backend, proxy) -> None:
    server = await backend("v1")
    sidecar_proxy = await proxy(sidecar([route_to(("catalog", 1))], [cluster("catalog", [server.port])]))

    await run_load(sidecar_proxy.url("/books"), 7, concurrency=2)
    await run_load(sidecar_proxy.url("/status/503"), 2, concurrency=1)

    metrics = await sidecar_proxy.metrics()
    common = {
        "reporter": "source",
        "source_workload": "client",
        "destination_workload": "catalog-v1",
        "destination_service_name": "catalog",
    }
    ok = samples(metrics, "istio_requests_total", **common, response_code="200")
    failed = samples(metrics, "istio_requests_total", **common, response_code="503")
    assert [value for _, value in ok] == [7]
    assert [value for _, value in failed] == [2]
    labels = ok[0][0]
    assert labels["destination_service"] == "catalog.default.svc.cluster.local"
    assert labels["destination_service_namespace"] == "default"
    assert labels["response_flags"] == "-"
    assert total(metrics, "istio_request_duration_milliseconds_count", **common) == 9


async def test_json_access_log_has_one_line_per_request(backend, proxy, tmp_path: Path) -> None:
    server = await backend("v1")
    log_path = tmp_path / "access.log"
    routes = [
        {"matches": [{"path": {"prefix": "/api"}}], **route_to(("catalog", 1))},
        {"matches": [{"path": {"prefix": "/status"}}], **route_to(("catalog", 1))},
    ]
    doc = sidecar(
        routes,
        [cluster("catalog", [server.port])],
        telemetry={"access_log": {"path": str(log_path), "encoding": "JSON"}},
    )
    sidecar_proxy = await proxy(doc)

    async with aiohttp.ClientSession() as session:
        for method, path in (("GET", "/api/books?page=1"), ("POST", "/status/503"), ("GET", "/elsewhere")):
            async with session.request(method, sidecar_proxy.url(path)) as response:
                await response.read()

    def lines() -> list[str]:
        return log_path.read_text().splitlines() if log_path.exists() else []

    await wait_until(lambda: len(lines()) >= 3, 5.0, "three access log lines")
    entries = [json.loads(line) for line in lines()]
    assert len(entries) == 3
    picked = [
        (e["method"], e["path"], e["response_code"], e["response_flags"], e["upstream_cluster"])
        for e in entries
    ]
    assert picked == [
        ("GET", "/api/books?page=1", 200, "-", "catalog"),
        ("POST", "/status/503", 503, "-", "catalog"),
        ("GET", "/elsewhere", 404, "NR", None),
    ]
    assert entries[0]["upstream_host"] == f"127.0.0.1:{server.port}"
    assert entries[0]["protocol"] == "HTTP/1.1"


# --- reloads ----------------------------------------------------------------------------------


async def test_reload_on_sighup(backend, proxy) -> None:
    v1, v2 = await backend("v1"), await backend("v2")
    sidecar_proxy = await proxy(two_versions(v1.port, v2.port))
    assert await bodies(sidecar_proxy) == {"v1"}

    await sidecar_proxy.reload(two_versions(v1.port, v2.port, "catalog-v2", version="2"))

    assert await bodies(sidecar_proxy) == {"v2"}
    dump = await sidecar_proxy.admin_json("/config_dump")
    assert dump["reloads_applied"] == 1 and dump["reloads_rejected"] == 0


async def test_reload_on_file_change(backend, proxy) -> None:
    v1, v2 = await backend("v1"), await backend("v2")
    sidecar_proxy = await proxy(two_versions(v1.port, v2.port))
    assert await bodies(sidecar_proxy) == {"v1"}

    await sidecar_proxy.reload(two_versions(v1.port, v2.port, "catalog-v2", version="2"), signal_hup=False)

    assert await bodies(sidecar_proxy) == {"v2"}


async def test_invalid_snapshot_is_refused_and_the_old_one_keeps_serving(backend, proxy) -> None:
    v1, v2 = await backend("v1"), await backend("v2")
    good = two_versions(v1.port, v2.port)
    sidecar_proxy = await proxy(good)

    def refused(field: str) -> object:
        async def check() -> bool:
            dump = await sidecar_proxy.admin_json("/config_dump")
            return field in (dump["last_reload_error"] or "")

        return check

    # A schema error ...
    bad_schema = two_versions(v1.port, v2.port, "catalog-v2", version="2")
    bad_schema["clusters"][1]["lb_policy"] = "FASTEST"
    sidecar_proxy.write(bad_schema)
    os.kill(sidecar_proxy.pid, signal.SIGHUP)
    await wait_until(refused("clusters[1].lb_policy"), 10.0, "the bad snapshot to be refused")
    assert await sidecar_proxy.version() == "1"
    assert await bodies(sidecar_proxy) == {"v1"}

    # ... and one the schema accepts but the router cannot compile, noticed by the file watcher.
    bad_regex = copy.deepcopy(good)
    bad_regex["version"] = "3"
    bad_regex["route_configs"][0]["virtual_hosts"][0]["routes"][0]["matches"] = [
        {"path": {"regex": "/books/("}}
    ]
    sidecar_proxy.write(bad_regex)
    await wait_until(
        refused("routes[0].matches[0].path.regex"), 10.0, "the uncompilable snapshot to be refused"
    )
    dump = await sidecar_proxy.admin_json("/config_dump")
    assert dump["version"] == "1" and dump["reloads_applied"] == 0
    assert dump["reloads_rejected"] >= 2
    assert await bodies(sidecar_proxy) == {"v1"}
    metrics = await sidecar_proxy.metrics()
    assert total(metrics, "loom_snapshot_reloads_rejected") == dump["reloads_rejected"]

    # A good snapshot after the bad ones is taken, and clears the error.
    await sidecar_proxy.reload(two_versions(v1.port, v2.port, "catalog-v2", version="4"))
    assert await bodies(sidecar_proxy) == {"v2"}
    assert (await sidecar_proxy.admin_json("/config_dump"))["last_reload_error"] is None


async def test_reload_adds_and_removes_listeners(backend, proxy) -> None:
    v1, v2 = await backend("v1"), await backend("v2")
    legacy = {"name": "legacy", "direction": "outbound", "port": 0, "route_config": "routes"}
    first = two_versions(v1.port, v2.port)
    first["listeners"].append(legacy)
    sidecar_proxy = await proxy(first)
    legacy_port = sidecar_proxy.port("legacy")
    assert await bodies(sidecar_proxy, listener="legacy") == {"v1"}

    second = two_versions(v1.port, v2.port, version="2")
    second["listeners"].append({"name": "fresh", "direction": "outbound", "port": 0, "route_config": "fresh"})
    second["route_configs"].append(
        {
            "name": "fresh",
            "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [route_to(("catalog-v2", 1))]}],
        }
    )
    await sidecar_proxy.reload(second)

    listeners = {item["name"]: item["port"] for item in await sidecar_proxy.admin_json("/listeners")}
    assert set(listeners) == {"outbound", "fresh"}
    assert listeners["outbound"] == sidecar_proxy.port()
    await wait_until(lambda: refuses(legacy_port), 5.0, "the removed listener to stop accepting")
    sidecar_proxy.ports["fresh"] = listeners["fresh"]
    assert await bodies(sidecar_proxy, listener="fresh") == {"v2"}
    assert await bodies(sidecar_proxy) == {"v1"}
