"""`loom up --detach`, `loom status`, `loom run` and `loom down` on a small mesh written here:
two versions of an echo app behind a Service with a weighted split, and an orders app behind an
AuthorizationPolicy. Every process is real; every request crosses two sidecars."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.proxy import wait_until

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runtime"
ECHO = FIXTURES / "echo_app.py"
CLIENT = FIXTURES / "count_client.py"
LOOM = [sys.executable, "-m", "loom.cli.main"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _workload(name: str, app: str, version: str, port: int, sa: str) -> str:
    return f"""
apiVersion: runtime.loom.dev/v1alpha1
kind: Workload
metadata: {{name: {name}, namespace: shop}}
spec:
  labels: {{app: {app}, version: {version}}}
  serviceAccount: {sa}
  port: {port}
  command: [{json.dumps(sys.executable)}, {json.dumps(str(ECHO))}]
  env: {{VERSION: {version}}}
  readiness: {{path: /healthz}}
"""


def _split(v1: int, v2: int) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: catalog, namespace: shop}}
spec:
  hosts: [catalog]
  http:
  - route:
    - {{destination: {{host: catalog, subset: v1}}, weight: {v1}}}
    - {{destination: {{host: catalog, subset: v2}}, weight: {v2}}}
"""


def write_mesh(directory: Path) -> None:
    port = _free_port()
    services = f"""
apiVersion: v1
kind: Service
metadata: {{name: catalog, namespace: shop}}
spec:
  selector: {{app: catalog}}
  ports: [{{name: http, port: 80, targetPort: {port}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: orders, namespace: shop}}
spec:
  selector: {{app: orders}}
  ports: [{{name: http, port: 80, targetPort: {port}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: catalog, namespace: shop}}
spec:
  host: catalog
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: orders, namespace: shop}}
spec:
  selector: {{matchLabels: {{app: orders}}}}
  action: ALLOW
  rules:
  - to: [{{operation: {{methods: [GET]}}}}]
  - from: [{{source: {{principals: [cluster.local/ns/shop/sa/frontend]}}}}]
    to: [{{operation: {{methods: [POST]}}}}]
"""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "services.yaml").write_text(services)
    (directory / "catalog-split.yaml").write_text(_split(90, 10))
    workloads = "---".join(
        [
            _workload("catalog-v1", "catalog", "v1", port, "catalog"),
            _workload("catalog-v2", "catalog", "v2", port, "catalog"),
            _workload("orders", "orders", "v1", port, "orders"),
        ]
    )
    (directory / "workloads.yaml").write_text(workloads)


def loom(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("HTTP_PROXY", None)
    env.pop("http_proxy", None)
    return subprocess.run([*LOOM, *args], capture_output=True, text=True, timeout=timeout, env=env)


def mesh_state(directory: Path) -> dict[str, Any]:
    return dict(json.loads((directory / ".loom" / "mesh.json").read_text()))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True


def _pids(state: dict[str, Any]) -> list[int]:
    pids = [state["supervisor_pid"], state["control_plane_pid"]]
    for replica in state["replicas"]:
        pids += [replica["app_pid"], replica["sidecar_pid"]]
    return [pid for pid in pids if pid]


def _down(directory: Path) -> None:
    loom("down", str(directory))
    state = mesh_state(directory)
    for pid in _pids(state):  # never leave a process behind, even when a test failed
        if _alive(pid):
            os.kill(pid, 9)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("up") / "shop"
    write_mesh(directory)
    done = loom("up", "--detach", str(directory), timeout=90)
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        yield directory
    finally:
        _down(directory)


def test_up_detach_reaches_ready_and_status_lists_it(mesh: Path) -> None:
    state = mesh_state(mesh)
    assert state["status"] == "ready"
    assert sorted(r["name"] for r in state["replicas"]) == ["catalog-v1-0", "catalog-v2-0", "orders-0"]
    assert all(r["phase"] == "ready" for r in state["replicas"])
    addresses = [r["address"] for r in state["replicas"]]
    assert len(set(addresses)) == 3 and all(a.startswith("127.0.0.") for a in addresses)
    done = loom("status", str(mesh))
    assert done.returncode == 0, done.stderr
    for replica in state["replicas"]:
        line = next(line for line in done.stdout.splitlines() if replica["name"] in line)
        assert str(replica["app_pid"]) in line and "SYNCED" in line and "ready" in line, done.stdout


def test_run_reaches_a_service_through_both_sidecars(mesh: Path) -> None:
    script = (
        "import json, urllib.request\n"
        "answer = json.loads(urllib.request.urlopen('http://orders/books', timeout=10).read())\n"
        "print(json.dumps(answer))\n"
    )
    done = loom(
        "run", "--mesh", str(mesh), "--name", "shell", "-n", "shop", "--", sys.executable, "-c", script
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["workload"] == "orders-0"
    # The inbound sidecar delivered it (it adds x-forwarded-for), the outbound one a request id.
    assert "x-forwarded-for" in answer["headers"] and "x-request-id" in answer["headers"]
    # ... over mutual TLS: the callee's sidecar counts the request with the caller's identity.
    metrics = _metrics(mesh, "orders-0")
    assert 'source_principal="spiffe://cluster.local/ns/shop/sa/default"' in metrics
    assert 'connection_security_policy="mutual_tls"' in metrics


def _metrics(mesh: Path, replica: str) -> str:
    import urllib.request

    state = mesh_state(mesh)
    admin = next(r["admin_port"] for r in state["replicas"] if r["name"] == replica)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{admin}/metrics", timeout=5) as answer:
        return str(answer.read().decode())


def test_run_exits_with_the_command_exit_code(mesh: Path) -> None:
    done = loom(
        "run", "--mesh", str(mesh), "--name", "job", "--", sys.executable, "-c", "raise SystemExit(7)"
    )
    assert done.returncode == 7, done.stderr


def test_weighted_split_within_three_points(mesh: Path) -> None:
    done = loom(
        "run", "--mesh", str(mesh), "--name", "load", "-n", "shop", "--",
        sys.executable, str(CLIENT), "http://catalog/", "2000",
        timeout=110,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout.splitlines()[-1])
    assert counts["failures"] == 0, counts
    share = 100 * counts["versions"].get("v2", 0) / 2000
    assert abs(share - 10) <= 3, counts


def test_non_frontend_post_to_orders_is_denied(mesh: Path) -> None:
    script = (
        "import urllib.request, urllib.error\n"
        "def call(method):\n"
        "    try:\n"
        "        return urllib.request.urlopen(urllib.request.Request('http://orders/orders', data=b'{}' "
        "if method == 'POST' else None, method=method), timeout=10).status\n"
        "    except urllib.error.HTTPError as exc:\n"
        "        return exc.code\n"
        "print(call('GET'), call('POST'))\n"
    )
    shell = loom(
        "run", "--mesh", str(mesh), "--name", "shell", "-n", "shop", "--", sys.executable, "-c", script
    )
    assert shell.stdout.split() == ["200", "403"], shell.stdout + shell.stderr
    frontend = loom(
        "run", "--mesh", str(mesh), "--name", "frontend", "-n", "shop", "--service-account", "frontend",
        "--", sys.executable, "-c", script,
    )  # fmt: skip
    assert frontend.stdout.split() == ["200", "200"], frontend.stdout + frontend.stderr


async def test_editing_the_split_to_0_100_shifts_traffic_with_no_failure(mesh: Path, tmp_path: Path) -> None:
    progress, stop = tmp_path / "progress.json", tmp_path / "stop"
    client = subprocess.Popen(
        [*LOOM, "run", "--mesh", str(mesh), "--name", "canary-watch", "-n", "shop", "--",
         sys.executable, str(CLIENT), "http://catalog/", "0", str(progress), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:

        def seen() -> dict[str, Any]:
            try:
                return dict(json.loads(progress.read_text()))
            except (OSError, ValueError):
                return {"total": 0, "recent": []}

        await wait_until(lambda: seen()["total"] >= 200, 60, "the client to send 200 requests")
        (mesh / "catalog-split.yaml").write_text(_split(0, 100))
        edited_at = seen()["total"]
        await wait_until(
            lambda: seen()["total"] >= edited_at + 100 and set(seen()["recent"]) == {"v2"},
            60,
            "every answer to come from v2",
        )
        stop.touch()
        out, _ = await asyncio.to_thread(client.communicate, timeout=60)
    finally:
        stop.touch()
        if client.poll() is None:
            client.kill()
        (mesh / "catalog-split.yaml").write_text(_split(90, 10))
    counts = json.loads(out.splitlines()[-1])
    assert counts["failures"] == 0, counts
    assert counts["versions"]["v1"] > 0 and counts["versions"]["v2"] > 0, counts


def test_down_stops_apps_before_their_sidecars_and_leaves_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "small"
    write_mesh(directory)
    up = loom("up", "--detach", str(directory), timeout=90)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        state = mesh_state(directory)
        pids = _pids(state)
        assert len(pids) == 2 + 2 * 3 and all(_alive(pid) for pid in pids)
        down = loom("down", str(directory))
        assert down.returncode == 0, down.stderr
        assert "mesh stopped" in down.stdout
        assert not [pid for pid in pids if _alive(pid)]
        assert mesh_state(directory)["status"] == "stopped"
        for replica in state["replicas"]:
            app_exit = _app_exit(Path(replica["app_log"]))
            sidecar_drain = _sidecar_drain(Path(replica["sidecar_log"]))
            assert app_exit <= sidecar_drain, replica["name"]
        status = loom("status", str(directory))
        assert status.returncode == 3 and "not running" in status.stdout
    finally:
        _down(directory)


def _app_exit(log: Path) -> float:
    line = next(line for line in log.read_text().splitlines() if line.startswith("exited "))
    return float(line.split()[1])


def _sidecar_drain(log: Path) -> float:
    line = next(line for line in log.read_text().splitlines() if "loom.proxy: draining" in line)
    stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
    # The log's time is local time, to the millisecond.
    return time.mktime(stamp.timetuple()) + stamp.microsecond / 1e6 + 0.001


def test_up_refuses_an_invalid_folder_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "apiVersion: runtime.loom.dev/v1alpha1\nkind: Workload\nmetadata: {name: x}\nspec:\n  replica: 2\n"
        "  command: [python]\n"
    )
    done = loom("up", str(tmp_path))
    assert done.returncode == 2
    assert "bad.yaml:5" in done.stderr and "did you mean `replicas`" in done.stderr, done.stderr
    assert not (tmp_path / ".loom" / "mesh.json").exists()
